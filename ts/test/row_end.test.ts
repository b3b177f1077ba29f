/**
 * Bound.rowEnd (the first row a schedule refuses) against the row at which
 * real torch 2.13 raises, for OneCycleLR alone and inside composites
 * (milestones before/after its end, duplicate and zero milestones, nesting,
 * chains), and against the simulator's own refusal.
 */
import { describe, expect, it } from "vitest";
import type { GroupInit } from "../src/core/api";
import { bind } from "../src/bind";
import { hasTorch, runTorch } from "./torch_oracle";

const SGD: GroupInit[] = [{ lr: 0.1, momentum: 0.9 }];
/** Steps tried in torch before calling a schedule unbounded (every case ends well before). */
const PROBE_STEPS = 300;

const oneCycle = (total: number) => ({ type: "OneCycleLR", max_lr: 0.5, total_steps: total });
const linear = { type: "LinearLR", total_iters: 3 };
const exp = { type: "ExponentialLR", gamma: 0.9 };
const seq = (schedulers: unknown[], milestones: number[]) => ({ type: "SequentialLR", schedulers, milestones });
const chain = (schedulers: unknown[]) => ({ type: "ChainedScheduler", schedulers });

const CASES: { name: string; spec: Record<string, unknown> }[] = [
  { name: "onecycle", spec: oneCycle(20) },
  { name: "onecycle_epochs", spec: { type: "OneCycleLR", max_lr: 0.5, epochs: 3, steps_per_epoch: 7 } },
  { name: "step", spec: { type: "StepLR", step_size: 4 } },
  { name: "seq_onecycle_second", spec: seq([linear, oneCycle(10)], [5]) },
  { name: "seq_onecycle_replaced_in_time", spec: seq([oneCycle(10), exp], [5]) },
  { name: "seq_onecycle_replaced_too_late", spec: seq([oneCycle(10), exp], [20]) },
  { name: "seq_onecycle_replaced_at_its_end", spec: seq([oneCycle(10), exp], [11]) },
  { name: "seq_two_onecycles", spec: seq([oneCycle(6), oneCycle(9)], [4]) },
  { name: "seq_duplicate_milestones", spec: seq([linear, oneCycle(5), oneCycle(6)], [4, 4]) },
  { name: "seq_zero_milestone", spec: seq([oneCycle(5), oneCycle(7)], [0]) },
  { name: "seq_unbounded", spec: seq([linear, { type: "CosineAnnealingLR", T_max: 8 }], [3]) },
  { name: "chain", spec: chain([exp, oneCycle(12)]) },
  { name: "chain_two_onecycles", spec: chain([oneCycle(30), oneCycle(12)]) },
  { name: "seq_of_chain", spec: seq([chain([oneCycle(8), exp]), linear], [30]) },
  { name: "seq_of_seq", spec: seq([seq([linear, oneCycle(10)], [3]), exp], [100]) },
  { name: "seq_of_seq_replaced", spec: seq([seq([linear, oneCycle(10)], [3]), exp], [8]) },
  { name: "chain_of_seq", spec: chain([seq([linear, oneCycle(10)], [6]), exp]) },
];

describe("rowEnd without torch", () => {
  it("OneCycleLR ends at total_steps + 1; unbounded schedules have no end", () => {
    expect(bind(oneCycle(20), SGD).rowEnd).toBe(21);
    expect(bind({ type: "StepLR", step_size: 4 }, SGD).rowEnd).toBeNull();
    expect(bind({ type: "ReduceLROnPlateau" }, SGD).rowEnd).toBeNull();
    expect(bind({ type: "cosine", total_steps: 10 }, SGD).rowEnd).toBeNull();
  });

  it("a OneCycleLR resumed at last_epoch k ends where the fresh one does", () => {
    const resumed = [{ lr: 0.3, initial_lr: 0.02, momentum: 0.9, max_lr: 0.5, min_lr: 2e-6, max_momentum: 0.95, base_momentum: 0.85 }];
    const b = bind(oneCycle(20), resumed, 6);
    expect(b.rowEnd).toBe(21);
    expect(() => b.rows(20, 1)).not.toThrow();
    expect(b.rows(20, 2).stop).toMatchObject({ row: 21 });
  });

  it("agrees with the simulator: the row before the end exists, the end raises torch's error", () => {
    for (const c of CASES) {
      const b = bind(c.spec, SGD);
      if (b.rowEnd === null) continue;
      expect(() => b.rows(b.rowEnd! - 1, 1), c.name).not.toThrow();
      expect(bind(c.spec, SGD).rows(b.rowEnd!, 1).stop, c.name).toMatchObject({ row: b.rowEnd, py: { message: expect.stringMatching(/^Tried to step/) } });
    }
  });
});

describe.skipIf(!hasTorch)("rowEnd against real torch", () => {
  it("is the row at which torch's step() raises", () => {
    const torchEnds = runTorch<number | null>(
      CASES.map((c) => ({ spec: c.spec, groups: SGD })),
      `
end = None
for k in range(1, ${PROBE_STEPS}):
    opt.step()
    try:
        sched.step()
    except ValueError as exc:
        assert "Tried to step" in str(exc), exc
        end = k
        break
out.append(end)
`,
    );
    const ours = CASES.map((c) => bind(c.spec, SGD).rowEnd);
    expect(Object.fromEntries(CASES.map((c, i) => [c.name, ours[i]]))).toEqual(
      Object.fromEntries(CASES.map((c, i) => [c.name, torchEnds[i]])),
    );
    // The cases cover both: composites that end and ones that outlive their OneCycleLR.
    expect(torchEnds.filter((e) => e === null).length).toBeGreaterThanOrEqual(3);
  });
});
