/** The generic spec grammar: validation, canonical form, scale, momentum, cycles, range test. */
import { describe, expect, it } from "vitest";
import { SpecError } from "../src/core/api";
import { contentHash } from "../src/core/canonical";
import { bindGeneric, isGenericType } from "../src/library/bind";

function specError(fn: () => unknown): SpecError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SpecError) return e;
    throw e;
  }
  throw new Error("no SpecError");
}

const near = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(Math.max(1e-12 * Math.abs(b), 1e-15));
const G1 = [{ lr: 0.1 }];

describe("types", () => {
  it("claims its own types and not torch's", () => {
    for (const t of ["rex", "warmup", "join", "hf", "timm_cosine", "one_cycle", "range_test", "fractal", "cycles", "sample"]) {
      expect(isGenericType(t)).toBe(true);
    }
    for (const t of ["StepLR", "OneCycleLR", "CosineAnnealingLR", "nope"]) expect(isGenericType(t)).toBe(false);
  });
});

describe("validation", () => {
  it("names the nested field and the rule", () => {
    const e = specError(() =>
      bindGeneric({ type: "warmup", steps: 5, then: { type: "rex", w: 1.2, total_steps: 10 } }, G1),
    );
    expect(e.path).toBe("then.w");
    expect(e.message).toBe("then.w: must be a number in [0, 1), got 1.2");
  });
  it("rejects unknown fields, unknown types and bad arrays", () => {
    expect(specError(() => bindGeneric({ type: "linear", total_steps: 5, colour: 1 }, G1)).path).toBe("colour");
    expect(specError(() => bindGeneric({ type: "join", schedules: [{ type: "bogus" }], boundaries: [] }, G1)).path).toBe("schedules[0].type");
    expect(
      specError(() => bindGeneric({ type: "join", schedules: [{ type: "constant" }, { type: "constant" }], boundaries: [] }, G1)).rule,
    ).toMatch(/one entry fewer than schedules/);
    expect(specError(() => bindGeneric({ type: "fractal", horizon: 12, lambda_min: 0.1, lambda_max: 1 }, G1)).rule).toMatch(/power of 2/);
    expect(specError(() => bindGeneric({ type: "linear" }, G1)).path).toBe("total_steps");
    expect(specError(() => bindGeneric({ type: "sample", every: 2, times: 3, schedule: { type: "constant" } }, G1)).path).toBe("every");
  });
  it("top-level-only fields are refused inside", () => {
    const e = specError(() => bindGeneric({ type: "warmup", steps: 2, then: { type: "constant", scale: "absolute" } }, G1));
    expect(e.path).toBe("then.scale");
  });
  it("hf polynomial needs lr_init (optimizer.defaults['lr'])", () => {
    const e = specError(() => bindGeneric({ type: "hf", name: "polynomial", num_warmup_steps: 1, num_training_steps: 10 }, G1));
    expect(e.path).toBe("lr_init");
  });
});

describe("hf: the argument sets transformers.get_scheduler accepts", () => {
  const same = (a: object, b: object) => expect(bindGeneric({ type: "hf", ...a }, G1).specHash).toBe(bindGeneric({ type: "hf", ...b }, G1).specHash);
  it("step counts a schedule does not use are accepted and hash as if absent", () => {
    same({ name: "constant", num_warmup_steps: 5, num_training_steps: 50 }, { name: "constant" });
    same({ name: "constant_with_warmup", num_warmup_steps: 5, num_training_steps: 50 }, { name: "constant_with_warmup", num_warmup_steps: 5 });
    same({ name: "inverse_sqrt", num_warmup_steps: 5, num_training_steps: 50 }, { name: "inverse_sqrt", num_warmup_steps: 5 });
  });
  it("lr_init is read where transformers divides by the optimizer's lr, ignored elsewhere", () => {
    same({ name: "linear", num_warmup_steps: 5, num_training_steps: 50, lr_init: 0.3 }, { name: "linear", num_warmup_steps: 5, num_training_steps: 50 });
    expect(specError(() => bindGeneric({ type: "hf", name: "cosine_with_min_lr", num_warmup_steps: 0, num_training_steps: 10, min_lr: 0.01 }, G1)).path).toBe("lr_init");
  });
  it("warmup_stable_decay with both step counts takes num_stable_steps", () => {
    same(
      { name: "warmup_stable_decay", num_warmup_steps: 2, num_decay_steps: 3, num_stable_steps: 4, num_training_steps: 100 },
      { name: "warmup_stable_decay", num_warmup_steps: 2, num_decay_steps: 3, num_stable_steps: 4 },
    );
  });
});

describe("canonical form and hash", () => {
  it("fills defaults; equal specs hash equally regardless of key order or spelled-out defaults", () => {
    const a = bindGeneric({ type: "rex", total_steps: 100 }, G1);
    const b = bindGeneric({ w: 0.5, total_steps: 100, start: 1, end: 0, type: "rex", scale: "multiplier" }, G1);
    expect(a.canonical).toEqual({ type: "rex", total_steps: 100, start: 1, end: 0, w: 0.5, scale: "multiplier" });
    expect(a.specHash).toBe(b.specHash);
    expect(a.specHash).toBe(contentHash(a.canonical));
    expect(bindGeneric({ type: "rex", total_steps: 100, w: 0.9 }, G1).specHash).not.toBe(a.specHash);
  });
  it("nested canonical forms are filled too", () => {
    const b = bindGeneric({ type: "warmup", steps: 10, then: { type: "cosine", total_steps: 90 } }, G1);
    expect(b.canonical).toEqual({
      type: "warmup", steps: 10, shape: "linear", from: 0, mode: "prepend", scale: "multiplier",
      then: { type: "cosine", total_steps: 90, start: 1, end: 0 },
    });
  });
});

describe("rows", () => {
  it("multiplier of each group's base lr; row k = step k", () => {
    const b = bindGeneric({ type: "linear", total_steps: 10 }, [{ lr: 0.1 }, { lr: 0.4 }]);
    const r = b.rows(0, 11);
    expect(r.lr.length).toBe(22);
    expect(r.lr[0]).toBe(0.1);
    expect(r.lr[1]).toBe(0.4);
    near(r.lr[5 * 2 + 1], 0.2);
    expect(r.momentum).toBeNull();
    expect(b.kind).toBe("deterministic");
    expect(b.chainable).toBe(false);
  });
  it("absolute scale uses the spec's lr for every group (or one per group)", () => {
    const b = bindGeneric({ type: "cosine", total_steps: 10, scale: "absolute", lr: [0.5, 2] }, [{ lr: 0.1 }, { lr: 0.4 }]);
    const r = b.rows(5, 1);
    near(r.lr[0], 0.25);
    near(r.lr[1], 1);
    expect(specError(() => bindGeneric({ type: "constant", scale: "absolute" }, G1)).path).toBe("lr");
    expect(specError(() => bindGeneric({ type: "constant", lr: 1 }, G1)).path).toBe("lr");
  });
  it("REX sampled 4 times is a staircase", () => {
    const b = bindGeneric({ type: "sample", times: 4, total_steps: 100, schedule: { type: "rex", total_steps: 100 } }, [{ lr: 1 }]);
    const r = b.rows(0, 100).lr;
    expect(new Set(Array.from(r)).size).toBe(4);
    near(r[60], 2 / 3);
  });
});

describe("momentum", () => {
  it("inverse momentum goes to betas[0] on Adam-like groups", () => {
    const b = bindGeneric(
      { type: "cosine", total_steps: 100, momentum: { type: "inverse", max: 0.95, min: 0.85 } },
      [{ lr: 0.01, betas: [0.9, 0.999] }],
    );
    expect(b.momentumKey).toBe("betas");
    const r = b.rows(0, 101);
    near(r.momentum![0], 0.85);
    near(r.momentum![50], 0.9);
    near(r.momentum![100], 0.95);
    expect(b.canonical).toMatchObject({ momentum: { type: "inverse", max: 0.95, min: 0.85 } });
  });
  it("a schedule spec as momentum gives absolute momentum values", () => {
    const b = bindGeneric(
      { type: "constant", momentum: { type: "linear", start: 0.85, end: 0.95, total_steps: 10 } },
      [{ lr: 0.1, momentum: 0.9 }],
    );
    expect(b.momentumKey).toBe("momentum");
    near(b.rows(5, 1).momentum![0], 0.9);
  });
  it("refused when the optimizer has no momentum; one_cycle skips its default moms then", () => {
    expect(specError(() => bindGeneric({ type: "constant", momentum: { type: "inverse", lr_range: [0, 1] } }, G1)).path).toBe("momentum");
    const oc = bindGeneric({ type: "one_cycle", total_steps: 10 }, G1);
    expect(oc.momentumKey).toBeNull();
    expect(bindGeneric({ type: "one_cycle", total_steps: 10 }, [{ lr: 0.1, momentum: 0.9 }]).momentumKey).toBe("momentum");
  });
});

describe("cycles", () => {
  it("cyclic specs report cycle starts, shifted by a prepended warmup", () => {
    const b = bindGeneric({ type: "warmup", steps: 5, then: { type: "cycles", t_initial: 10, cycle_mul: 2 } }, G1);
    expect(b.cycles!(0, 80)).toEqual([5, 15, 35, 75]);
    expect(bindGeneric({ type: "linear", total_steps: 5 }, G1).cycles).toBeUndefined();
    expect(bindGeneric({ type: "sgdr", t_0: 10 }, G1).cycles!(0, 100)).toEqual([0, 10, 30, 70]);
    expect(bindGeneric({ type: "hf", name: "cosine_with_restarts", num_warmup_steps: 10, num_training_steps: 100, num_cycles: 3 }, G1).cycles!(0, 120)).toEqual([0, 40, 70]);
  });
});

describe("range test (metric)", () => {
  const spec = { type: "range_test", start_lr: 1e-4, end_lr: 1, num_steps: 4, skip_start: 0, skip_end: 0 };
  it("walks the lr up, carries state, finishes with suggestions", () => {
    const b = bindGeneric(spec, [{ lr: 0.1 }, { lr: 0.2 }]);
    expect(b.kind).toBe("metric");
    let r = b.initialState!();
    expect(r.lr).toEqual([1e-4, 1e-4]);
    r = b.metricStep!(r.state, 2.0);
    near(r.lr[0], 1e-3);
    expect((r.state as any).losses).toEqual([2.0]); // bias correction: first smoothed = first loss
    for (const loss of [1.5, 1.0]) r = b.metricStep!(r.state, loss);
    r = b.metricStep!(r.state, 0.9);
    const s = r.state as any;
    expect(s.done).toBe(true);
    expect(s.reason).toBe("finished");
    expect(s.suggestions.minimum).toBeCloseTo(0.1 / 10, 15);
    near(r.lr[0], 0.1); // holds the last batch's lr
  });
  it("a NaN loss ends the test as diverged; tampered state is refused", () => {
    const b = bindGeneric(spec, G1);
    const r = b.metricStep!(b.metricStep!(b.initialState!().state, 1).state, Number.NaN);
    expect((r.state as any).reason).toBe("diverged");
    expect(specError(() => b.metricStep!({ ...b.initialState!().state, step: 3 }, 1)).path).toBe("state.losses");
  });
});

describe("pieceAt", () => {
  it("is bisect_right over the boundaries, repeated boundaries included", async () => {
    const { pieceAt } = await import("../src/library/combinators");
    const linear = (b: number[], t: number) => {
      let i = 0;
      while (i < b.length && t >= b[i]) i++;
      return i;
    };
    const cases = [[], [5], [3, 3, 3], [0, 2, 2, 7, 100], Array.from({ length: 256 }, (_, i) => i * 3)];
    for (const b of cases) for (let t = 0; t < 800; t++) expect(pieceAt(b, t), `${b} ${t}`).toBe(linear(b, t));
  });
});
