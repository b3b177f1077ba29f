/**
 * Named recipes, each written with its library's own arithmetic so values
 * agree to the last bits (sources named per function). All are group
 * schedules (types.ts): `lr(base)` gives the lr of a group whose initial lr
 * is `base`.
 */
import { type Phase, combineByFraction, cyclePosition } from "./combinators";
import { cycleStartsFromIndex } from "./cycle_index";
import { type NoiseOptions, withNoise } from "./noise";
import { type GroupSchedule, type Schedule, sortPair } from "./types";

// ---------------------------------------------------------------- HF transformers

export type HfName =
  | "linear"
  | "cosine"
  | "cosine_with_restarts"
  | "polynomial"
  | "constant"
  | "constant_with_warmup"
  | "inverse_sqrt"
  | "cosine_with_min_lr"
  | "cosine_warmup_with_min_lr"
  | "warmup_stable_decay";

export const HF_NAMES: readonly HfName[] = [
  "linear",
  "cosine",
  "cosine_with_restarts",
  "polynomial",
  "constant",
  "constant_with_warmup",
  "inverse_sqrt",
  "cosine_with_min_lr",
  "cosine_warmup_with_min_lr",
  "warmup_stable_decay",
];

export type WsdShape = "linear" | "cosine" | "1-sqrt";

export interface HfOptions {
  name: HfName;
  num_warmup_steps: number;
  num_training_steps: number;
  /** cosine family: waves (float, 0.5 = half cosine); cosine_with_restarts: restarts (int). */
  num_cycles: number;
  /** polynomial */
  power: number;
  lr_end: number;
  /** optimizer.defaults["lr"]: polynomial / cosine_with_min_lr(min_lr) divide by it. */
  lr_init: number;
  /** inverse_sqrt */
  timescale: number;
  /** cosine(_warmup)_with_min_lr */
  min_lr_rate: number;
  warmup_lr_rate: number | null;
  /** warmup_stable_decay */
  num_stable_steps: number;
  num_decay_steps: number;
  warmup_type: WsdShape;
  decay_type: WsdShape;
  min_lr_ratio: number;
}

/** HF's linear warmup: `s / max(1, w)`, 0 at s = 0. */
function hfWarmup(s: number, w: number): number {
  return s / Math.max(1, w);
}

/**
 * The lr_lambda of transformers.optimization (v5.x) for `name`; the lr is
 * `base·λ(s)` (a LambdaLR). Formulas copied from
 * `_get_*_lr_lambda` / `_get_wsd_scheduler_lambda`.
 */
/**
 * transformers' cosine factor `0.5·(1 + cos(π·num_cycles·2·p))`, in its
 * operation order (π·num_cycles first), so every recipe built on it gives
 * transformers' bits.
 */
export function halfCosine(numCycles: number, p: number): number {
  return 0.5 * (1.0 + Math.cos(Math.PI * numCycles * 2.0 * p));
}

export function hfLambda(o: HfOptions): Schedule {
  const w = o.num_warmup_steps;
  const n = o.num_training_steps;
  const progress = (s: number) => (s - w) / Math.max(1, n - w);
  switch (o.name) {
    case "constant":
      return () => 1;
    case "constant_with_warmup":
      return (s) => (s < w ? hfWarmup(s, w) : 1.0);
    case "linear":
      return (s) => (s < w ? hfWarmup(s, w) : Math.max(0.0, (n - s) / Math.max(1, n - w)));
    case "cosine":
      return (s) =>
        s < w ? hfWarmup(s, w) : Math.max(0.0, halfCosine(o.num_cycles, progress(s)));
    case "cosine_with_restarts":
      return (s) => {
        if (s < w) return hfWarmup(s, w);
        const p = progress(s);
        if (p >= 1.0) return 0.0;
        return Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * ((o.num_cycles * p) % 1.0))));
      };
    case "polynomial":
      return (s) => {
        if (s < w) return hfWarmup(s, w);
        if (s > n) return o.lr_end / o.lr_init;
        const pctRemaining = 1 - (s - w) / (n - w);
        return ((o.lr_init - o.lr_end) * pctRemaining ** o.power + o.lr_end) / o.lr_init;
      };
    case "inverse_sqrt":
      return (s) => (s < w ? hfWarmup(s, w) : 1.0 / Math.sqrt((s + (o.timescale - w)) / o.timescale));
    case "cosine_with_min_lr":
      return (s) => {
        if (s < w) return hfWarmup(s, w);
        const f = halfCosine(o.num_cycles, progress(s));
        return Math.max(0, f * (1 - o.min_lr_rate) + o.min_lr_rate);
      };
    case "cosine_warmup_with_min_lr":
      return (s) => {
        if (s < w) {
          if (o.warmup_lr_rate === null) return (s + 1.0) / Math.max(1.0, w);
          return o.warmup_lr_rate + ((1.0 - o.warmup_lr_rate) * s) / Math.max(1, w - 1);
        }
        const p = (s - w + 1.0) / Math.max(1.0, n - w);
        const f = halfCosine(o.num_cycles, p);
        return Math.max(0, f * (1 - o.min_lr_rate) + o.min_lr_rate);
      };
    case "warmup_stable_decay":
      return wsdLambda(o);
  }
}

/** transformers `_get_wsd_scheduler_lambda`. */
function wsdLambda(o: HfOptions): Schedule {
  const w = o.num_warmup_steps;
  const stable = o.num_stable_steps;
  const decay = o.num_decay_steps;
  const r = o.min_lr_ratio;
  return (s) => {
    if (s < w) {
      const p = s / Math.max(1, w);
      let f: number;
      if (o.warmup_type === "linear") f = p;
      else if (o.warmup_type === "cosine") f = 0.5 * (1.0 - Math.cos(Math.PI * p));
      else f = 1.0 - Math.sqrt(1.0 - p);
      return Math.max(0.0, f * (1.0 - r) + r);
    }
    if (s < w + stable) return 1.0;
    if (s < w + stable + decay) {
      const p = (s - w - stable) / Math.max(1, decay);
      let f: number;
      if (o.decay_type === "linear") f = 1.0 - p;
      else if (o.decay_type === "cosine") f = halfCosine(o.num_cycles, p);
      else f = 1.0 - Math.sqrt(p);
      return Math.max(0.0, f * (1.0 - r) + r);
    }
    return r;
  };
}

/** HF schedules as group schedules (LambdaLR: `base·λ(s)`). */
export function hf(o: HfOptions): GroupSchedule {
  const lambda = hfLambda(o);
  const g: GroupSchedule = { lr: (base) => (s) => base * lambda(s) };
  if (o.name === "cosine_with_restarts") {
    const w = o.num_warmup_steps;
    const n = o.num_training_steps;
    // cycle k starts where ⌊nc·progress⌋ reaches k (HF's own arithmetic); warmup counts as cycle 0
    const index = (s: number) => {
      if (s < w) return 0;
      const p = (s - w) / Math.max(1, n - w);
      return Math.min(Math.floor(o.num_cycles * p), o.num_cycles - 1); // the 0 after the end is no cycle
    };
    g.cycleStarts = (from, to) => cycleStartsFromIndex(index, from, to);
  }
  return g;
}

// ---------------------------------------------------------------- timm

export interface TimmCosineOptions {
  t_initial: number;
  lr_min: number;
  cycle_mul: number;
  cycle_decay: number;
  cycle_limit: number;
  warmup_t: number;
  warmup_lr_init: number;
  warmup_prefix: boolean;
  k_decay: number;
  noise: NoiseOptions | null;
}

/**
 * timm CosineLRScheduler `_get_lr(t)` (+ `_add_noise`, see noise.ts). lr_min
 * and warmup_lr_init are absolute lrs, the peak is the group's base lr.
 * Row t = the value timm sets on `step(t)` (t_in_epochs=True) or
 * `step_update(t)` (t_in_epochs=False); the unit is the client's choice.
 */
export function timmCosine(o: TimmCosineOptions): GroupSchedule {
  const index = (t: number) => {
    if (t < o.warmup_t) return 0;
    const tc = o.warmup_prefix ? t - o.warmup_t : t;
    return Math.min(cyclePosition(tc, o.t_initial, o.cycle_mul).i, o.cycle_limit - 1); // the hold after the last cycle is no cycle
  };
  return {
    lr: (base) => {
      const warmupStep = o.warmup_t ? (base - o.warmup_lr_init) / o.warmup_t : 1;
      const clean: Schedule = (t) => {
        if (t < o.warmup_t) return o.warmup_lr_init + t * warmupStep;
        const tc = o.warmup_prefix ? t - o.warmup_t : t;
        const { i, tI, tCurr } = cyclePosition(tc, o.t_initial, o.cycle_mul);
        if (i >= o.cycle_limit) return o.lr_min;
        const lrMax = base * o.cycle_decay ** i;
        const k = o.k_decay;
        return o.lr_min + 0.5 * (lrMax - o.lr_min) * (1 + Math.cos((Math.PI * tCurr ** k) / tI ** k));
      };
      return o.noise ? withNoise(clean, o.noise) : clean;
    },
    range: (base) => sortPair(Math.min(o.lr_min, o.warmup_t ? o.warmup_lr_init : base), base),
    cycleStarts: (from, to) => cycleStartsFromIndex(index, from, to),
  };
}

// ---------------------------------------------------------------- SGDR (Keras)

export interface SgdrOptions {
  /** first_decay_steps (T_0) */
  t_0: number;
  /** t_mul (T_mult) */
  t_mult: number;
  /** m_mul: each restart's peak is m_mul times the previous one */
  m_mul: number;
  /** alpha: the floor as a fraction of the peak */
  alpha: number;
}

/** Keras CosineDecayRestarts: (i_restart, fraction of the current cycle done). */
function sgdrPosition(o: SgdrOptions, step: number): [number, number] {
  const completed = step / o.t_0;
  if (o.t_mult === 1.0) {
    const i = Math.floor(completed);
    return [i, completed - i];
  }
  const i = Math.floor(Math.log(1.0 - completed * (1.0 - o.t_mult)) / Math.log(o.t_mult));
  const sumR = (1.0 - o.t_mult ** i) / (1.0 - o.t_mult);
  return [i, (completed - sumR) / o.t_mult ** i];
}

/**
 * SGDR (Loshchilov & Hutter 2017) as Keras `CosineDecayRestarts`:
 * multiplier `(1 − α)·½·m_mul^i·(1 + cos(π·f)) + α`. Keras computes in the
 * schedule's dtype (float32 by default); we compute in float64.
 */
export function sgdr(o: SgdrOptions): GroupSchedule {
  const m: Schedule = (t) => {
    const [i, f] = sgdrPosition(o, t);
    const decayed = 0.5 * o.m_mul ** i * (1.0 + Math.cos(Math.PI * f));
    return (1 - o.alpha) * decayed + o.alpha;
  };
  return {
    lr: (base) => (t) => base * m(t),
    range: (base) => [base * o.alpha, base * Math.max(1, o.m_mul)],
    cycleStarts: (from, to) => cycleStartsFromIndex((t) => sgdrPosition(o, t)[0], from, to),
  };
}

// ---------------------------------------------------------------- snapshot ensembles

/**
 * Snapshot ensembles (Huang et al. 2017):
 * α(t) = α0/2·(cos(π·mod(t−1, ⌈T/M⌉)/⌈T/M⌉) + 1) for iterations t = 1…T;
 * row k is iteration t = k + 1, so the multiplier is ½(cos(π·(k mod L)/L) + 1),
 * L = ⌈T/M⌉. Take a snapshot at the last step of each cycle.
 */
export function snapshotEnsemble(totalSteps: number, snapshots: number): GroupSchedule {
  const len = Math.ceil(totalSteps / snapshots);
  const m: Schedule = (k) => 0.5 * (Math.cos((Math.PI * (k % len)) / len) + 1);
  return {
    lr: (base) => (t) => base * m(t),
    range: (base) => [0, base],
    cycleStarts: (from, to) => cycleStartsFromIndex((t) => Math.floor(t / len), from, to),
  };
}

// ---------------------------------------------------------------- fastai

/** fastai `sched_cos(start, end, pos)`: `start + (1 + cos(π·(1 − pos)))·(end − start)/2`. */
export function fastaiCos(start: number, end: number, pos: number): number {
  return start + ((1 + Math.cos(Math.PI * (1 - pos))) * (end - start)) / 2;
}

/** fastai `combined_cos(pct, start, middle, end)` over `totalSteps` (float32 positions like fastai). */
export function fastaiCombinedCos(
  pct: number,
  start: (b: number) => number,
  middle: (b: number) => number,
  end: (b: number) => number,
  totalSteps: number,
): GroupSchedule {
  const phases: Phase[] = [
    { anneal: fastaiCos, start, end: middle },
    { anneal: fastaiCos, start: middle, end },
  ];
  return combineByFraction([pct, 1 - pct], phases, totalSteps, true);
}

export interface OneCycleOptions {
  total_steps: number;
  div: number;
  div_final: number;
  pct_start: number;
  /** (start, middle, end) momenta, or null for none */
  moms: [number, number, number] | null;
}

/**
 * fastai `Learner.fit_one_cycle`: lr combined_cos(pct_start, lr_max/div,
 * lr_max, lr_max/div_final), mom combined_cos(pct_start, *moms); row k is
 * batch k, at position k/total_steps (fastai's pct_train).
 */
export function fastaiOneCycle(o: OneCycleOptions): { lr: GroupSchedule; mom: Schedule | null } {
  const lr = fastaiCombinedCos(o.pct_start, (b) => b / o.div, (b) => b, (b) => b / o.div_final, o.total_steps);
  const moms = o.moms;
  const mom = moms
    ? fastaiCombinedCos(o.pct_start, () => moms[0], () => moms[1], () => moms[2], o.total_steps).lr(1)
    : null;
  return { lr, mom };
}

/** fastai `Learner.fit_flat_cos`: flat lr for pct_start (0.75), then cosine to lr/div_final. */
export function fastaiFlatCos(totalSteps: number, pctStart: number, divFinal: number): GroupSchedule {
  return fastaiCombinedCos(pctStart, (b) => b, (b) => b, (b) => b / divFinal, totalSteps);
}

// ---------------------------------------------------------------- fractal (Chebyshev) learning rates

/**
 * Chebyshev step sizes for a quadratic with spectrum in [m, M] and horizon T
 * (Agarwal, Goel, Zhang, "Acceleration via Fractal Learning Rate Schedules",
 * ICML 2021): η_i = 1/γ_i with γ_i = (M+m)/2 − (M−m)/2·cos((i + ½)π/T),
 * i = 0…T−1 (the roots of the degree-T Chebyshev polynomial mapped onto
 * [m, M]; ascending γ, so descending η from ≈1/m to ≈1/M).
 */
export function chebyshevSteps(m: number, M: number, T: number): number[] {
  const c = (M + m) / 2.0;
  const r = (M - m) / 2.0;
  return Array.from({ length: T }, (_, i) => 1.0 / (c - r * Math.cos(((i + 0.5) / T) * Math.PI)));
}

/**
 * The paper's fractal order (0-based): σ_1 = [0],
 * σ_2n = interlace(σ_n, 2n − 1 − σ_n), e.g. σ_4 = [0, 3, 1, 2],
 * σ_8 = [0, 7, 3, 4, 1, 6, 2, 5]: each large step is followed by its
 * small mirror, which keeps every partial product of the residual
 * polynomial bounded (the paper's stability argument). T a power of 2.
 */
export function fractalPermutation(T: number): number[] {
  let perm = [0];
  while (perm.length < T) {
    const n = perm.length;
    perm = perm.flatMap((p) => [p, 2 * n - 1 - p]);
  }
  return perm;
}

/**
 * Fractal Chebyshev schedule: multiplier η_{σ(t mod T)} (it repeats with
 * period T). η is the step size itself for a quadratic whose Hessian
 * spectrum lies in [m, M]: use base lr 1 (or scale "absolute", lr 1) to get
 * it verbatim.
 */
export function fractal(m: number, M: number, T: number): GroupSchedule {
  const steps = chebyshevSteps(m, M, T);
  const values = fractalPermutation(T).map((i) => steps[i]);
  return {
    lr: (base) => (t) => base * values[t % T],
    // A loop, not Math.min(...values): a spread of a long horizon overflows the stack.
    range: (base) => [base * values.reduce((a, b) => Math.min(a, b)), base * values.reduce((a, b) => Math.max(a, b))],
    cycleStarts: (from, to) => cycleStartsFromIndex((t) => Math.floor(t / T), from, to),
  };
}
