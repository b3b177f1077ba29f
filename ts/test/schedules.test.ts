/** Profiles, sampling rate and combinators against values worked by hand. */
import { describe, expect, it } from "vitest";
import * as P from "../src/library/profiles";
import { sampleEvery, sampleTimes } from "../src/library/sampling";
import { combineByFraction, cycles, join, multiply, warmup } from "../src/library/combinators";
import { hashUniform, noiseAt, withNoise } from "../src/library/noise";
import { inverseMomentum } from "../src/library/momentum";
import { scaled } from "../src/library/types";
import { chebyshevSteps, fastaiOneCycle, fractalPermutation, hfLambda, snapshotEnsemble, timmCosine } from "../src/library/recipes";
import { npGradient, valley } from "../src/library/lr_finder";

const near = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(Math.max(1e-12 * Math.abs(b), 1e-15));

describe("profiles", () => {
  it("REX paper (w=0.5) and code (w=0.9) multipliers", () => {
    const rex = P.rexAnneal(0.5);
    [
      [0.25, 0.75 / 0.875],
      [0.5, 2 / 3],
      [0.75, 0.4],
      [0.9, 0.1 / 0.55],
    ].forEach(([p, v]) => near(rex(1, 0, p), v));
    near(P.rexAnneal(0.9)(1, 0, 0.5), 0.5 / 0.55);
    near(P.rexAnneal(0)(1, 0, 0.3), P.linearAnneal(1, 0, 0.3)); // w = 0 is linear
  });
  it("linear, cosine, exponential, polynomial, tanh, 1-sqrt, constant", () => {
    near(P.linearAnneal(1, 0, 0.25), 0.75);
    near(P.cosineAnneal(1, 0, 0.5), 0.5);
    near(P.cosineAnneal(1, 0, 0.25), (1 + Math.SQRT1_2) / 2);
    near(P.cosineAnneal(0.1, 0.001, 1), 0.001);
    near(P.exponentialAnneal(1, 0.01, 0.5), 0.1);
    near(P.polynomialAnneal(2)(1, 0, 0.5), 0.25);
    near(P.tanhAnneal(-7, 3)(1, 0, 0.7), 0.5); // -7·0.3 + 3·0.7 = 0
    near(P.oneMinusSqrtAnneal(1, 0, 0.25), 0.5);
    near(P.constantAnneal(0.3, 0, 0.9), 0.3);
  });
  it("runs over steps, holds the end value after T", () => {
    const s = P.overSteps(P.linearAnneal, 1, 0.1, 10);
    near(s(5), 0.55);
    near(s(10), 0.1);
    expect(s(25)).toBe(s(10));
  });
  it("step decay, piecewise constant, inverse sqrt", () => {
    near(P.stepDecay(1, 10, 0.1)(25), 0.01);
    expect(P.piecewiseConstant([3, 7], [1, 0.5, 0.1])(7)).toBe(0.1);
    expect(P.piecewiseConstant([3, 7], [1, 0.5, 0.1])(2)).toBe(1);
    near(P.inverseSqrt(1, 100)(300), 0.5);
  });
});

describe("sampling rate", () => {
  const lin = P.overSteps(P.linearAnneal, 1, 0, 100);
  it("every k steps holds the value sampled at the last multiple of k", () => {
    near(sampleEvery(lin, 10)(17), 0.9);
    near(sampleEvery(lin, 10)(20), 0.8);
  });
  it("N times per run: exponential profile sampled 4 times is step decay", () => {
    const s = sampleTimes(P.overSteps(P.exponentialAnneal, 1, 1e-4, 100), 4, 100);
    near(s(0), 1);
    near(s(24), 1);
    near(s(25), 0.1);
    near(s(60), 0.01);
    near(s(99), 0.001);
    near(s(100), 1e-4);
  });
});

describe("combinators", () => {
  const one = scaled(P.constant(1));
  const cos100 = scaled(P.overSteps(P.cosineAnneal, 1, 0, 100), [0, 1]);
  it("prepended linear warmup shifts the schedule", () => {
    const s = warmup(cos100, { steps: 10, shape: "linear", from: 0, mode: "prepend" }).lr(2);
    expect(s(0)).toBe(0);
    near(s(5), 1); // half-way to 2·1
    near(s(10), 2);
    near(s(60), 1); // cosine at its own step 50
  });
  it("overlaid warmup keeps the schedule's clock and ends on its value", () => {
    const s = warmup(cos100, { steps: 50, shape: "linear", from: 0, mode: "overlay" }).lr(1);
    near(s(25), 0.25); // half-way to cos(50) = 0.5
    near(s(60), P.cosineAnneal(1, 0, 0.6));
  });
  it("exponential and cosine warmups", () => {
    near(warmup(one, { steps: 4, shape: "exponential", from: 0.01, mode: "prepend" }).lr(1)(2), 0.1);
    near(warmup(one, { steps: 10, shape: "cosine", from: 0, mode: "prepend" }).lr(1)(5), 0.5);
  });
  it("join gives later pieces step − boundary (optax)", () => {
    const s = join([one, scaled(P.overSteps(P.linearAnneal, 1, 0, 10))], [5]).lr(1);
    expect(s(4)).toBe(1);
    near(s(7), 0.8);
  });
  it("combine by fraction of training (fastai combine_scheds)", () => {
    const phases = [
      { anneal: P.linearAnneal, start: () => 0, end: (b: number) => b },
      { anneal: P.cosineAnneal, start: (b: number) => b, end: () => 0 },
    ];
    const s = combineByFraction([0.5, 0.5], phases, 100, false).lr(1);
    near(s(25), 0.5);
    near(s(60), (1 + Math.cos(0.2 * Math.PI)) / 2);
    near(s(75), 0.5);
  });
  it("multiply multiplies multipliers", () => {
    const s = multiply([cos100, scaled(P.constant(0.5))]).lr(4);
    near(s(50), 4 * 0.5 * 0.5);
  });
  it("cycles: cycle_mul, cycle_decay, cycle_limit, k_decay", () => {
    const c = cycles({ anneal: P.cosineAnneal, start: 1, end: 0, tInitial: 10, cycleMul: 2, cycleDecay: 0.5, cycleLimit: Infinity, kDecay: 1 });
    const s = c.lr(1);
    near(s(10), 0.5);
    near(s(20), 0.25);
    expect(c.cycleStarts!(0, 100)).toEqual([0, 10, 30, 70]);
    expect(c.cycleStarts!(11, 71)).toEqual([30, 70]);
    const limited = cycles({ anneal: P.cosineAnneal, start: 1, end: 0.01, tInitial: 10, cycleMul: 1, cycleDecay: 1, cycleLimit: 2, kDecay: 1 });
    expect(limited.lr(1)(25)).toBe(0.01);
    expect(limited.cycleStarts!(0, 100)).toEqual([0, 10]);
    const k2 = cycles({ anneal: P.cosineAnneal, start: 1, end: 0, tInitial: 10, cycleMul: 1, cycleDecay: 1, cycleLimit: 1, kDecay: 2 });
    near(k2.lr(1)(5), (1 + Math.SQRT1_2) / 2); // progress 5²/10² = 1/4
  });
});

describe("noise (deterministic, timm-style)", () => {
  const opts = { range: [10, 1000] as [number, number], pct: 0.5, std: 1, type: "normal" as const, seed: 42 };
  it("is reproducible, bounded, and only inside the range", () => {
    const s = withNoise(() => 2, opts);
    expect(s(3)).toBe(2);
    expect(s(1000)).toBe(2);
    expect(s(123)).toBe(s(123));
    expect(s(123)).not.toBe(2);
    for (let t = 10; t < 1000; t++) expect(Math.abs(noiseAt(opts, t))).toBeLessThan(0.5);
    // a different seed gives different noise
    expect(noiseAt({ ...opts, seed: 7 }, 123)).not.toBe(noiseAt(opts, 123));
  });
  it("uniform noise spans ±pct, generator is uniform-ish", () => {
    const u = { ...opts, type: "uniform" as const, range: 0 };
    const vals = Array.from({ length: 4000 }, (_, t) => noiseAt(u, t));
    expect(Math.max(...vals)).toBeLessThan(0.5);
    expect(Math.min(...vals)).toBeGreaterThanOrEqual(-0.5);
    expect(Math.abs(vals.reduce((a, b) => a + b, 0) / vals.length)).toBeLessThan(0.02);
    const us = Array.from({ length: 4000 }, (_, j) => hashUniform(99, j));
    expect(us.filter((x) => x < 0.25).length).toBeGreaterThan(900);
    expect(us.filter((x) => x < 0.25).length).toBeLessThan(1100);
  });
});

describe("momentum", () => {
  it("inverse of the lr (1cycle)", () => {
    const m = inverseMomentum(P.overSteps(P.cosineAnneal, 1, 0, 100), 0, 1, 0.95, 0.85);
    near(m(0), 0.85);
    near(m(50), 0.9);
    near(m(100), 0.95);
  });
});

describe("recipes by hand", () => {
  it("timm CosineLRScheduler with warmup", () => {
    const s = timmCosine({ t_initial: 10, lr_min: 0, cycle_mul: 1, cycle_decay: 1, cycle_limit: 1, warmup_t: 2, warmup_lr_init: 0.01, warmup_prefix: false, k_decay: 1, noise: null }).lr(0.1);
    near(s(0), 0.01);
    near(s(1), 0.055);
    near(s(5), 0.05);
    expect(s(10)).toBe(0); // past cycle_limit: lr_min
  });
  it("fastai fit_one_cycle endpoints", () => {
    const { lr, mom } = fastaiOneCycle({ total_steps: 100, div: 25, div_final: 1e5, pct_start: 0.25, moms: [0.95, 0.85, 0.95] });
    near(lr.lr(1)(0), 0.04);
    near(lr.lr(1)(25), 1);
    near(mom!(25), 0.85);
    near(mom!(0), 0.95);
  });
  it("HF cosine at half progress, linear warmup from 0", () => {
    const base = { num_warmup_steps: 10, num_training_steps: 110, num_cycles: 0.5 } as const;
    const f = hfLambda({ ...defaultsHf(), ...base, name: "cosine" });
    expect(f(0)).toBe(0);
    near(f(5), 0.5);
    near(f(60), 0.5);
  });
  it("fractal order and Chebyshev steps", () => {
    expect(fractalPermutation(4)).toEqual([0, 3, 1, 2]);
    expect(fractalPermutation(8)).toEqual([0, 7, 3, 4, 1, 6, 2, 5]);
    const steps = chebyshevSteps(0.1, 1, 2); // γ = 0.55 ∓ 0.45·cos(π/4)
    near(steps[0], 1 / (0.55 - 0.45 * Math.SQRT1_2));
    near(steps[1], 1 / (0.55 + 0.45 * Math.SQRT1_2));
  });
  it("snapshot ensemble cycles of ⌈T/M⌉", () => {
    const s = snapshotEnsemble(100, 6); // L = 17
    expect(s.lr(1)(0)).toBe(1);
    near(s.lr(1)(17), 1);
    expect(s.cycleStarts!(0, 100)).toEqual([0, 17, 34, 51, 68, 85]);
  });
  it("range test helpers: numpy gradient, valley", () => {
    expect(npGradient([1, 2, 4, 7])).toEqual([1, 1.5, 2.5, 3]);
    // longest decreasing run ends at 6 with length 6; fastai sets max_start = 6 − 6 = 0,
    // then idx = 0 + ⌊6/3⌋ + ⌊6/6⌋ = 3
    expect(valley([0, 1, 2, 3, 4, 5, 6, 7], [5, 9, 8, 7, 6, 5, 4, 10])).toBe(3);
  });
});

function defaultsHf() {
  return {
    num_warmup_steps: 0, num_training_steps: 0, num_cycles: 0.5, power: 1, lr_end: 1e-7, lr_init: 1, timescale: 10000,
    min_lr_rate: 0, warmup_lr_rate: null, num_stable_steps: 0, num_decay_steps: 0,
    warmup_type: "linear" as const, decay_type: "cosine" as const, min_lr_ratio: 0,
  };
}
