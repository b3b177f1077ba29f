/** The greedy schedule's binding: its rules, and the client-carried state it accepts. */
import { describe, expect, it } from "vitest";
import { SpecError } from "../src/core/api";
import { bind } from "../src/bind";

const GROUPS = [{ lr: 0.1 }, { lr: 0.05 }];

describe("greedy", () => {
  it("refuses a factor that would not reduce, naming the field", () => {
    expect(() => bind({ type: "greedy", factor: 1 }, GROUPS)).toThrow(/factor: must be a number in \(0, 1\)/);
    expect(() => bind({ type: "greedy", min_lr: [0.1] }, GROUPS)).toThrow(/min_lr: must have one value per param group \(2\)/);
    expect(() => bind({ type: "greedy", smooth: true, window_size: 1e6 }, GROUPS)).toThrow(/greedy_window/);
  });

  it("rebuilds the state from its known fields and bounds its smoothing window", () => {
    const b = bind({ type: "greedy", smooth: true, window_size: 3 }, GROUPS);
    const first = b.initialState!();
    expect(first.lr).toEqual([0.1, 0.05]);
    const next = b.metricStep!({ ...first.state, extra: "x".repeat(1000) }, 0.5);
    expect(next.state).not.toHaveProperty("extra");
    expect(next.state.values).toEqual([0.5]);
    const tooLong = { ...first.state, values: [1, 2, 3, 4], sum: 10 };
    expect(() => b.metricStep!(tooLong, 0.5)).toThrow(SpecError);
    expect(() => b.metricStep!({ ...first.state, lr: [0.1] }, 0.5)).toThrow(/state.lr: must hold 2 numbers/);
  });

  it("divides by factor after more than patience improvements, within max_lr", () => {
    const b = bind({ type: "greedy", patience: 1, factor: 0.5, max_lr: 0.15 }, GROUPS);
    let s = b.initialState!().state;
    const lrs: number[][] = [];
    for (const m of [1, 0.9, 0.8, 0.7]) {
      const r = b.metricStep!(s, m);
      s = r.state;
      lrs.push(r.lr);
    }
    expect(lrs).toEqual([
      [0.1, 0.05],
      [0.15, 0.1],
      [0.15, 0.1],
      [0.15, 0.15],
    ]);
  });
});
