/**
 * The torch simulator beyond the vectors: rebase (hand-edited lrs) checked
 * against real torch, the window memo, errors past OneCycleLR's end,
 * ReduceLROnPlateau as a pure function, and hand-computed values.
 */
import { describe, expect, it } from "vitest";
import { SpecError, type GroupInit, type Rebase } from "../src/core/api";
import { bind } from "../src/bind";
import { hasTorch, runTorch } from "./torch_oracle";
import { PyError, powOfBase, pyFloorDiv, pyMod, pyModIsZero, pyPow } from "../src/core/pymath";

const SGD: GroupInit[] = [{ lr: 0.1, momentum: 0.9 }];
const SGD2: GroupInit[] = [
  { lr: 0.1, momentum: 0.9 },
  { lr: 0.05, momentum: 0.8 },
];

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-15 || Math.abs(a - b) <= 1e-12 * Math.abs(b);
}

describe("hand-computed values from torch's source", () => {
  it("OneCycleLR row 0 is max_lr/div_factor with cos rounding", () => {
    const b = bind({ type: "OneCycleLR", max_lr: 1, total_steps: 100 }, SGD);
    expect(b.rows(0, 1).lr[0]).toBe(0.040000000000000036);
    expect(b.rows(0, 1).momentum![0]).toBe(0.95);
  });
  it("CyclicLR overrides the group lr with base_lr and walks the triangle", () => {
    const b = bind({ type: "CyclicLR", base_lr: 0.01, max_lr: 0.11, step_size_up: 4, cycle_momentum: false }, SGD);
    const lr = Array.from(b.rows(0, 9).lr);
    const want = [0.01, 0.035, 0.06, 0.085, 0.11, 0.085, 0.06, 0.035, 0.01];
    lr.forEach((v, i) => expect(close(v, want[i])).toBe(true));
  });
  it("ConstantLR recursive form divides back by factor at total_iters", () => {
    const lr = Array.from(bind({ type: "ConstantLR", factor: 0.5, total_iters: 2 }, SGD).rows(0, 4).lr);
    expect(lr).toEqual([0.05, 0.05, 0.1, 0.1]);
  });
  it("ChainedScheduler multiplies its children", () => {
    const b = bind(
      { type: "ChainedScheduler", schedulers: [{ type: "ExponentialLR", gamma: 0.5 }, { type: "StepLR", step_size: 2, gamma: 0.1 }] },
      SGD,
    );
    const lr = Array.from(b.rows(0, 4).lr);
    [0.1, 0.05, 0.0025, 0.00125].forEach((w, i) => expect(close(lr[i], w)).toBe(true));
  });
  it("Python float // % ** helpers", () => {
    expect(pyFloorDiv(-0.5, 0.25)).toBe(-2);
    expect(pyFloorDiv(1, 0.1)).toBe(9); // Python: 1 // 0.1 == 9.0
    expect(pyMod(1, 0.1)).toBeCloseTo(0.09999999999999995, 17);
    expect(Object.is(pyMod(-0, 3), 0)).toBe(true);
    expect(pyPow(-1, Infinity)).toBe(1);
  });
  it("powOfBase(c)(b) is pyPow(c, b): same bits, same errors", () => {
    const outcome = (f: () => number): unknown => {
      try {
        return f();
      } catch (err) {
        return (err as Error).message;
      }
    };
    const bases = [0.9999, 0.5, 1, 1.0000001, 2, 10, 1e300, 5e-324, 0, -0, -2, -0.5, Infinity, -Infinity, NaN];
    const exponents = [0, -0, 1, 2, 0.5, -1, -0.5, 3, 1e3, 1e6, -1e6, 2 ** 53, Infinity, -Infinity, NaN];
    let errors = 0;
    for (const c of bases) {
      const pow = powOfBase(c);
      for (const b of exponents) {
        const want = outcome(() => pyPow(c, b));
        if (typeof want === "string") errors++;
        expect(Object.is(outcome(() => pow(b)), want), `${c} ** ${b}`).toBe(true);
      }
    }
    expect(errors).toBeGreaterThan(5);
  });
  it("pyModIsZero decides a % b == 0 exactly as pyMod does (ints, floats, signs, zero divisor)", () => {
    const values = [0, -0, 1, -1, 2, -2, 3, 6, -6, 7, 12, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 40, 0.5, 1.5, -2.5, 0.1, 1e300, Infinity, NaN];
    let zeros = 0;
    for (const a of values) {
      for (const b of values) {
        if (b === 0) {
          expect(() => pyModIsZero(a, b)).toThrow(PyError);
          continue;
        }
        const want = pyMod(a, b) === 0;
        if (want) zeros++;
        expect(pyModIsZero(a, b), `${a} % ${b}`).toBe(want);
      }
    }
    expect(zeros).toBeGreaterThan(30);
  });
});

describe("windows", () => {
  const spec = {
    type: "SequentialLR",
    schedulers: [
      { type: "LinearLR", start_factor: 0.1, total_iters: 50 },
      { type: "CosineAnnealingWarmRestarts", T_0: 30, T_mult: 2, eta_min: 0.001 },
    ],
    milestones: [50],
  };
  it("sequential, random-order and one-shot windows give the same rows", () => {
    const oneShot = bind(spec, SGD2).rows(0, 3000).lr;
    const b = bind(spec, SGD2);
    const seq: number[] = [];
    for (let s = 0; s < 3000; s += 256) seq.push(...b.rows(s, Math.min(256, 3000 - s)).lr);
    expect(Float64Array.from(seq)).toEqual(oneShot);
    const back = b.rows(700, 10).lr; // behind the memo: recomputed from row 0
    expect(back).toEqual(oneShot.subarray(1400, 1420));
    const ahead = b.rows(2990, 10).lr;
    expect(ahead).toEqual(oneShot.subarray(5980, 6000));
  });
  it("OneCycleLR: row total_steps is fine; windows stop where torch raises, with torch's exception", () => {
    const b = bind({ type: "OneCycleLR", max_lr: 0.1, total_steps: 20 }, SGD);
    expect(b.rows(0, 21).lr.length).toBe(21);
    const py = { type: "ValueError", message: "Tried to step 21 times. The specified number of total steps is 20" };
    const cut = b.rows(15, 7);
    expect(cut.lr.length).toBe(6);
    expect(cut.stop).toEqual({ row: 21, py });
    const past = b.rows(23, 1);
    expect(past.lr.length).toBe(0);
    expect(past.stop).toEqual({ row: 21, py });
    expect(b.rows(19, 2).stop).toBeUndefined(); // still serves rows before the end
  });
  it("epochRows for CosineAnnealingWarmRestarts takes fractional epochs", () => {
    const b = bind({ type: "CosineAnnealingWarmRestarts", T_0: 10, T_mult: 2 }, SGD);
    const lr = b.epochRows!([0.5, 12.25, 35]).lr;
    // 12.25: n = int(log(12.25/10 + 1, 2)) = 1, T_cur = 2.25, T_i = 20
    expect(lr[1]).toBe(0 + (0.1 * (1 + Math.cos((Math.PI * 2.25) / 20))) / 2);
    expect(() => b.epochRows!([-1])).toThrow(/non-negative epoch/);
    const seq = bind({ type: "SequentialLR", schedulers: [{ type: "StepLR", step_size: 2 }, { type: "StepLR", step_size: 3 }], milestones: [4] }, SGD);
    expect(() => seq.epochRows!([1])).toThrow(/TypeError/);
  });
});

describe("ReduceLROnPlateau as a pure function", () => {
  it("reduces after patience bad epochs, honours cooldown and per-group min_lr", () => {
    const b = bind({ type: "ReduceLROnPlateau", patience: 1, factor: 0.5, cooldown: 1, min_lr: [0.03, 0] }, SGD2);
    let r = b.initialState!();
    expect(r.lr).toEqual([0.1, 0.05]);
    const seen: number[][] = [];
    for (const m of [1, 1, 1, 1, 1, 1, 1]) {
      r = b.metricStep!(r.state, m);
      seen.push(r.lr);
    }
    // bad: 0,1,2→reduce(cooldown 1),cooldown,1,2→reduce,...
    expect(seen).toEqual([
      [0.1, 0.05],
      [0.1, 0.05],
      [0.05, 0.025],
      [0.05, 0.025],
      [0.05, 0.025],
      [0.03, 0.0125],
      [0.03, 0.0125],
    ]);
  });
  it("is replayable: the same state and metric give the same answer", () => {
    const b = bind({ type: "ReduceLROnPlateau", mode: "max", threshold_mode: "abs", threshold: 0.1 }, SGD);
    const s = b.metricStep!(b.initialState!().state, 0.5).state;
    expect(b.metricStep!(s, 0.55)).toEqual(b.metricStep!(s, 0.55));
    expect((b.metricStep!(s, 0.55).state as { num_bad_epochs: number }).num_bad_epochs).toBe(1);
    expect(() => b.metricStep!({ lr: [1, 2] }, 0.5)).toThrow(SpecError);
  });
});

/** Hand-edited lrs, as torch continues from them. */
const REBASE_CASES: { name: string; spec: unknown; groups: GroupInit[]; steps: number; origin: Rebase }[] = [
  { name: "exponential", spec: { type: "ExponentialLR", gamma: 0.9 }, groups: SGD, steps: 12, origin: { step: 5, lr: [0.5] } },
  { name: "cosine", spec: { type: "CosineAnnealingLR", T_max: 10, eta_min: 0.001 }, groups: SGD2, steps: 25, origin: { step: 3, lr: [0.02, 0.3] } },
  {
    name: "sequential",
    spec: { type: "SequentialLR", schedulers: [{ type: "LinearLR", total_iters: 4 }, { type: "CosineAnnealingLR", T_max: 8 }], milestones: [4] },
    groups: SGD,
    steps: 20,
    origin: { step: 6, lr: [0.07] },
  },
  { name: "multiplicative_at_0", spec: { type: "MultiplicativeLR", lr_lambda: "0.95" }, groups: SGD, steps: 6, origin: { step: 0, lr: [1.0] } },
  { name: "lambda_not_chainable", spec: { type: "LambdaLR", lr_lambda: "0.9 ** epoch" }, groups: SGD, steps: 6, origin: { step: 3, lr: [9.0] } },
];

describe.skipIf(!hasTorch)("rebase against real torch", () => {
  it("continues from hand-edited lrs exactly as torch does", () => {
    const torchRows = runTorch<number[][]>(
      REBASE_CASES,
      `
o = c["origin"]
def edit():
    for g, v in zip(opt.param_groups, o["lr"]):
        g["lr"] = v
if o["step"] == 0:
    edit()
rows = [[g["lr"] for g in opt.param_groups]]
for k in range(1, c["steps"] + 1):
    opt.step()
    sched.step()
    if k == o["step"]:
        edit()
    rows.append([g["lr"] for g in opt.param_groups])
out.append(rows)
`,
    );
    REBASE_CASES.forEach((c, i) => {
      const b = bind(c.spec, c.groups);
      const n = c.groups.length;
      const before = b.rows(0, c.origin.step + 1).lr; // untouched rows up to the edit
      const after = b.rows(c.origin.step + 1, c.steps - c.origin.step, c.origin).lr;
      torchRows[i].forEach((row, k) => {
        row.forEach((want, g) => {
          const got = k <= c.origin.step ? (k === c.origin.step ? c.origin.lr[g] : before[k * n + g]) : after[(k - c.origin.step - 1) * n + g];
          expect(close(got, want), `${c.name} row ${k} group ${g}: ${got} vs torch ${want}`).toBe(true);
        });
      });
    });
  });
});
