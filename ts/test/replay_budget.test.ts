/**
 * Replays in slices: a window far past what the handle has simulated is
 * answered REPLAY_PENDING until the replay gets there, and the values that
 * finally come are those of one uninterrupted replay.
 */
import { describe, expect, it } from "vitest";
import { binToFloat64 } from "../src/protocol";
import { Handler } from "../src/server/handler";
import { bind } from "../src/bind";

const SPECS = [
  { type: "SequentialLR", schedulers: [{ type: "LinearLR", start_factor: 0.2, total_iters: 7 }, { type: "CosineAnnealingLR", T_max: 33 }], milestones: [7] },
  { type: "ChainedScheduler", schedulers: [{ type: "StepLR", step_size: 5, gamma: 0.9 }, { type: "ExponentialLR", gamma: 0.999 }] },
  { type: "LambdaLR", lr_lambda: "1 / (1 + epoch) if epoch < 1e9 else 0" },
  { type: "CyclicLR", base_lr: 0.01, max_lr: 0.1, step_size_up: 11, mode: "triangular" },
];
const GROUPS = [{ lr: 0.1, momentum: 0.9 }, { lr: 0.05, momentum: 0.8 }];

describe("replay slices", () => {
  it.each(SPECS.map((s) => [s.type, s] as const))("%s: pending until there, then the uninterrupted values", (_type, spec) => {
    const handler = new Handler({ bind, replaySliceMs: 0 });
    const opened = handler.handle({ v: 2, id: 1, type: "open", spec, groups: GROUPS });
    if (opened.type !== "opened") throw new Error(JSON.stringify(opened));
    const start = 200_000;
    let pending = 0;
    for (;;) {
      const reply = handler.handle({ v: 2, id: 2, type: "window", hash: opened.hash, start, count: 5 });
      if (reply.type === "error") {
        expect(reply.code).toBe("REPLAY_PENDING");
        expect(reply.path).toBe("start");
        pending++;
        expect(pending).toBeLessThan(1000); // each slice moves at least one check interval
        continue;
      }
      if (reply.type !== "window") throw new Error(JSON.stringify(reply));
      expect(pending).toBeGreaterThan(0);
      expect(Array.from(binToFloat64(reply.lr))).toEqual(Array.from(bind(spec, GROUPS).rows(start, 5).lr));
      break;
    }
  });

  it("refuses a start past replay_rows at once, and serves a lone OneCycleLR there directly", () => {
    const handler = new Handler({ bind });
    const step = handler.handle({ v: 2, id: 1, type: "open", spec: { type: "StepLR", step_size: 3 }, groups: GROUPS });
    if (step.type !== "opened") throw new Error(JSON.stringify(step));
    const far = handler.handle({ v: 2, id: 2, type: "window", hash: step.hash, start: 1e13, count: 1 });
    expect(far).toMatchObject({ type: "error", code: "BAD_REQUEST", path: "start" });
    const spec = { type: "OneCycleLR", max_lr: 0.5, total_steps: 2 ** 50 };
    const one = handler.handle({ v: 2, id: 3, type: "open", spec, groups: GROUPS });
    if (one.type !== "opened") throw new Error(JSON.stringify(one));
    const reply = handler.handle({ v: 2, id: 4, type: "window", hash: one.hash, start: 1e13, count: 3 });
    expect(reply.type).toBe("window");
  });
});
