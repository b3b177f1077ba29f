import { describe, expect, it } from "vitest";
import { bind } from "../src/bind";

/** Steps where the lr is back at its cycle start value, read off the rows themselves. */
function restartsIn(lr: Float64Array, atStart: number): number[] {
  const out: number[] = [];
  lr.forEach((v, t) => {
    if (Math.abs(v - atStart) <= 1e-15) out.push(t);
  });
  return out;
}

describe("torch cyclic schedules report their cycle starts", () => {
  it("CosineAnnealingWarmRestarts: 0, T_0, T_0 + T_0·T_mult, ...", () => {
    const b = bind({ type: "CosineAnnealingWarmRestarts", T_0: 3, T_mult: 2 }, [{ lr: 0.1 }]);
    expect(b.cycles!(0, 50)).toEqual([0, 3, 9, 21, 45]);
    expect(b.cycles!(10, 30)).toEqual([21]);
    expect(b.cycles!(0, 50)).toEqual(restartsIn(b.rows(0, 50).lr, 0.1));
  });

  it("CyclicLR with asymmetric up/down: every up+down steps, where the lr is back at base_lr", () => {
    const spec = { type: "CyclicLR", base_lr: 0.01, max_lr: 0.1, step_size_up: 4, step_size_down: 2 };
    const b = bind(spec, [{ lr: 0.1, momentum: 0.9 }]);
    expect(b.cycles!(0, 20)).toEqual([0, 6, 12, 18]);
    expect(b.cycles!(0, 20)).toEqual(restartsIn(b.rows(0, 20).lr, 0.01));
  });

  it("non-cyclic torch schedules have none", () => {
    expect(bind({ type: "StepLR", step_size: 3 }, [{ lr: 0.1 }]).cycles).toBeUndefined();
  });
});
