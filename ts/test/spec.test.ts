/** Spec validation: torch's rules and defaults, messages with paths, canonical form and hash. */
import { describe, expect, it } from "vitest";
import { SpecError, type GroupInit } from "../src/core/api";
import { bind } from "../src/bind";
import { contentHash } from "../src/core/canonical";
import { validateTorchSpec } from "../src/torch/validate";

const SGD: GroupInit[] = [{ lr: 0.1, momentum: 0.9 }];
const SGD2: GroupInit[] = [
  { lr: 0.1, momentum: 0.9 },
  { lr: 0.01, momentum: 0.9 },
];

function rejection(spec: unknown, groups: GroupInit[] = SGD): string {
  try {
    bind(spec, groups);
  } catch (err) {
    expect(err).toBeInstanceOf(SpecError);
    return (err as SpecError).message;
  }
  throw new Error(`accepted: ${JSON.stringify(spec)}`);
}

describe("canonical form", () => {
  it("fills torch's defaults", () => {
    expect(validateTorchSpec({ type: "OneCycleLR", max_lr: 0.1, total_steps: 1000, three_phase: true }, 1)).toEqual({
      type: "OneCycleLR",
      max_lr: 0.1,
      total_steps: 1000,
      epochs: null,
      steps_per_epoch: null,
      pct_start: 0.3,
      anneal_strategy: "cos",
      cycle_momentum: true,
      base_momentum: 0.85,
      max_momentum: 0.95,
      div_factor: 25.0,
      final_div_factor: 1e4,
      three_phase: true,
    });
    expect(validateTorchSpec({ type: "ConstantLR" }, 1)).toEqual({ type: "ConstantLR", factor: 1 / 3, total_iters: 5 });
  });
  it("hashes the same schedule the same whatever the key order or defaults spelled out", () => {
    const a = bind({ type: "StepLR", step_size: 3 }, SGD);
    const b = bind({ gamma: 0.1, step_size: 3, type: "StepLR" }, SGD2);
    expect(a.specHash).toBe(b.specHash);
    expect(a.specHash).toBe(contentHash(a.canonical));
    expect(bind({ type: "StepLR", step_size: 4 }, SGD).specHash).not.toBe(a.specHash);
  });
  it("canonicalizes children of composites", () => {
    const c = validateTorchSpec(
      { type: "SequentialLR", schedulers: [{ type: "LinearLR" }, { type: "ExponentialLR", gamma: 0.9 }], milestones: [5] },
      1,
    );
    expect(c.schedulers).toEqual([
      { type: "LinearLR", start_factor: 1 / 3, end_factor: 1.0, total_iters: 5 },
      { type: "ExponentialLR", gamma: 0.9 },
    ]);
  });
});

describe("rejections name the field", () => {
  it("a torch scheduler inside a library combinator, and says which nesting works", () => {
    expect(rejection({ type: "join", schedules: [{ type: "StepLR", step_size: 2 }, { type: "rex", total_steps: 10 }], boundaries: [5] })).toMatch(
      /^schedules\[0\]\.type: StepLR is a torch scheduler .* inside SequentialLR or ChainedScheduler/,
    );
  });
  it("a library child of a composite is checked by the library's rules", () => {
    expect(rejection({ type: "SequentialLR", schedulers: [{ type: "rex" }, { type: "StepLR", step_size: 2 }], milestones: [3] })).toMatch(
      /^schedulers\[0\]\.total_steps: is required/,
    );
  });
  it("nested paths", () => {
    expect(
      rejection({
        type: "SequentialLR",
        schedulers: [{ type: "LinearLR" }, { type: "OneCycleLR", max_lr: 0.1, total_steps: 100, pct_start: 1.5 }],
        milestones: [5],
      }),
    ).toBe("schedulers[1].pct_start: must be a number in [0, 1], got 1.5");
  });
  it("torch's constructor checks", () => {
    expect(rejection({ type: "ConstantLR", factor: 1.5 })).toMatch(/^factor: must be a number in \[0, 1\]/);
    expect(rejection({ type: "LinearLR", start_factor: 0 })).toMatch(/^start_factor:/);
    expect(rejection({ type: "CosineAnnealingWarmRestarts", T_0: 0 })).toMatch(/^T_0: must be a positive integer/);
    expect(rejection({ type: "CosineAnnealingWarmRestarts", T_0: 5, T_mult: 1.5 })).toMatch(/^T_mult:/);
    expect(rejection({ type: "ReduceLROnPlateau", factor: 1.0 })).toMatch(/^factor: must be a number < 1, got 1$/);
    expect(rejection({ type: "ReduceLROnPlateau", mode: "median" })).toMatch(/^mode: must be one of "min", "max"/);
    expect(rejection({ type: "CyclicLR", base_lr: 0.01, max_lr: 0.1, mode: "sine" })).toMatch(/^mode:/);
    expect(rejection({ type: "OneCycleLR", max_lr: 0.1 })).toMatch(/You must define either total_steps OR/);
    expect(rejection({ type: "OneCycleLR", max_lr: 0.1, total_steps: 0 })).toMatch(/^total_steps: must be a positive integer, got 0/);
    expect(rejection({ type: "ExponentialLR" })).toBe("gamma: is required by ExponentialLR (a number)");
    expect(rejection({ type: "ChainedScheduler", schedulers: [] })).toMatch(/^schedulers: ChainedScheduler expects at least one/);
    expect(rejection({ type: "SequentialLR", schedulers: [{ type: "StepLR", step_size: 2 }], milestones: [3] })).toMatch(
      /^milestones: Sequential Schedulers expects/,
    );
    expect(
      rejection({ type: "ChainedScheduler", schedulers: [{ type: "StepLR", step_size: 2 }, { type: "ReduceLROnPlateau" }] }),
    ).toMatch(/^schedulers\[1\]: ChainedScheduler does not support `ReduceLROnPlateau`/);
  });
  it("what torch accepts and then fails on: rows stop at that step with torch's exception", () => {
    const stop = (spec: Record<string, unknown>, count = 20) => bind(spec, SGD).rows(0, count).stop;
    const zero = (message: string) => ({ type: "ZeroDivisionError", message });
    expect(stop({ type: "StepLR", step_size: 0 })).toEqual({ row: 1, py: zero("integer modulo by zero") });
    expect(stop({ type: "ConstantLR", factor: 0, total_iters: 3 })).toEqual({ row: 3, py: zero("float division by zero") });
    expect(stop({ type: "CosineAnnealingLR", T_max: 0 })).toEqual({ row: 1, py: zero("integer modulo by zero") });
    // pct_start=1.0: the second phase has zero length; torch divides by zero on the last step.
    expect(stop({ type: "OneCycleLR", max_lr: 0.1, total_steps: 10, pct_start: 1.0 })).toEqual({ row: 10, py: zero("float division by zero") });
    const nested = {
      type: "SequentialLR",
      schedulers: [{ type: "StepLR", step_size: 2 }, { type: "ChainedScheduler", schedulers: [{ type: "ExponentialLR", gamma: 0.9 }] }],
      milestones: [4],
    };
    expect(stop(nested)).toEqual({ row: 4, py: { type: "NotImplementedError", message: "" } });
    expect(stop({ type: "PolynomialLR", power: -1 })).toEqual({ row: 5, py: zero("0.0 cannot be raised to a negative power") });
  });
  it("what torch's constructor raises is a spec error carrying torch's exception", () => {
    const py = (spec: Record<string, unknown>) => {
      try {
        bind(spec, SGD);
      } catch (err) {
        return (err as SpecError).py;
      }
      return undefined;
    };
    // pct_start*total_steps - 1 == 0: zero division already at construction (row 0).
    expect(py({ type: "OneCycleLR", max_lr: 0.1, total_steps: 10, pct_start: 0.1 })).toEqual({ type: "ZeroDivisionError", message: "float division by zero" });
    expect(py({ type: "CyclicLR", base_lr: 0.01, max_lr: 0.1, step_size_up: 0 })).toEqual({ type: "ZeroDivisionError", message: "float division by zero" });
    // λ(0) is what the constructor calls: raising there is a spec error ...
    expect(rejection({ type: "LambdaLR", lr_lambda: "1 / epoch" })).toMatch(/^lr_lambda: raises ZeroDivisionError.*epoch=0/);
  });
  it("a lambda torch constructs but cannot step is served up to the step that raises", () => {
    // ... λ(1) is first called by the first step(): torch constructs this one and raises there.
    const rows = bind({ type: "LambdaLR", lr_lambda: "1 / (epoch - 1)" }, SGD).rows(0, 3);
    expect(Array.from(rows.lr)).toEqual([-0.1]);
    expect(rows.stop?.row).toBe(1);
    expect(rows.stop?.py.type).toBe("ZeroDivisionError");
  });
  it("per-group lists must match the group count", () => {
    expect(rejection({ type: "CyclicLR", base_lr: [0.01, 0.02], max_lr: 0.1 })).toBe(
      "base_lr: must have the same length as optimizer.param_groups: base_lr has 2 values, param_groups has 1",
    );
    expect(rejection({ type: "LambdaLR", lr_lambda: ["1", "1"] })).toMatch(/^lr_lambda: expected 1 lr_lambdas/);
    expect(rejection({ type: "ReduceLROnPlateau", min_lr: [0, 0, 0] }, SGD2)).toMatch(/^min_lr:/);
    expect(rejection({ type: "OneCycleLR", max_lr: [0.1, "x"], total_steps: 5 }, SGD2)).toBe('max_lr[1]: must be a number, got "x"');
  });
  it("cycle_momentum needs momentum or betas in the optimizer, as torch says", () => {
    expect(rejection({ type: "CyclicLR", base_lr: 0.01, max_lr: 0.1 }, [{ lr: 0.1 }])).toMatch(
      /optimizer must support momentum or beta1 with `cycle_momentum` option enabled/,
    );
    expect(bind({ type: "CyclicLR", base_lr: 0.01, max_lr: 0.1, cycle_momentum: false }, [{ lr: 0.1 }]).momentumKey).toBeNull();
    expect(bind({ type: "OneCycleLR", max_lr: 0.1, total_steps: 10 }, [{ lr: 0.1, betas: [0.9, 0.999] }]).momentumKey).toBe("betas");
  });
  it("fields that are not the scheduler's, and the ones a spec leaves out", () => {
    expect(rejection({ type: "StepLR", step_size: 3, gama: 0.5 })).toBe("gama: unknown field for StepLR");
    expect(rejection({ type: "StepLR", step_size: 3, last_epoch: 4 })).toMatch(/^last_epoch: resume through state_dict/);
    expect(rejection({ type: "NoSuchLR" })).toBe('type: unknown scheduler type "NoSuchLR"');
    expect(rejection({ type: "LambdaLR", lr_lambda: "0.9 ** epochs" })).toBe("lr_lambda: unknown name 'epochs' at column 8");
    expect(rejection({ type: "StepLR", step_size: 3 }, [])).toMatch(/^groups:/);
  });
  it("names of Object.prototype are unknown types and fields, at every level", () => {
    for (const name of ["toString", "constructor", "__proto__", "hasOwnProperty"]) {
      expect(rejection({ type: name })).toBe(`type: unknown scheduler type "${name}"`);
      expect(rejection({ type: "join", schedules: [{ type: name }, { type: "constant" }], boundaries: [3] })).toMatch(
        /^schedules\[0\]\.type: must be one of constant, /,
      );
      expect(rejection({ type: "SequentialLR", schedulers: [{ type: name }, { type: "StepLR", step_size: 1 }], milestones: [2] })).toBe(
        `schedulers[0].type: unknown scheduler type "${name}"`,
      );
      expect(rejection(JSON.parse(`{"type": "StepLR", "step_size": 3, "${name}": 1}`))).toBe(`${name}: unknown field for StepLR`);
    }
  });
});

describe("bound properties", () => {
  it("kind, chainable and momentum key", () => {
    expect(bind({ type: "ReduceLROnPlateau" }, SGD).kind).toBe("metric");
    expect(bind({ type: "CosineAnnealingLR", T_max: 10 }, SGD).chainable).toBe(true);
    expect(bind({ type: "LambdaLR", lr_lambda: "1" }, SGD).chainable).toBe(false);
    expect(bind({ type: "CyclicLR", base_lr: 0.01, max_lr: 0.1 }, SGD).momentumKey).toBe("momentum");
    const seq = bind(
      { type: "SequentialLR", schedulers: [{ type: "LambdaLR", lr_lambda: "1" }, { type: "ExponentialLR", gamma: 0.9 }], milestones: [3] },
      SGD,
    );
    expect(seq.chainable).toBe(true);
    expect(seq.groups).toBe(1);
  });
});
