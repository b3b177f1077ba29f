/**
 * Combinators over group schedules (see types.ts): warmup, optax-style
 * join, fastai-style combination by fraction of training, products, and
 * timm-style cycles (cycle_mul, cycle_decay, cycle_limit, k_decay).
 */
import { cycleStartsFromIndex } from "./cycle_index";
import { type Anneal, type GroupSchedule, type Schedule, sortPair } from "./types";

export type WarmupShape = "linear" | "exponential" | "cosine";
export type WarmupMode = "prepend" | "overlay";

/** Warmup ramp from `from` to `to` at progress p ∈ [0, 1). */
export function warmupRamp(shape: WarmupShape, from: number, to: number, p: number): number {
  switch (shape) {
    case "linear":
      return from + (to - from) * p; // HF/torchtitan linear warmup
    case "exponential":
      return from * (to / from) ** p; // geometric; from > 0
    case "cosine":
      return from + 0.5 * (to - from) * (1 - Math.cos(Math.PI * p)); // HF WSD "cosine" warmup
  }
}

export interface WarmupOptions {
  steps: number;
  shape: WarmupShape;
  /** Start value as a multiplier of the group's base lr (0 = HF's convention). */
  from: number;
  /**
   * prepend: the ramp occupies steps [0, w) and the wrapped schedule starts
   * at step w with its own step 0 (it is shifted; ramp target = its value at 0).
   * overlay: the ramp replaces steps [0, w) of the wrapped schedule, which
   * keeps its own clock (ramp target = its value at w, so it is continuous).
   */
  mode: WarmupMode;
}

export function warmup(then: GroupSchedule, o: WarmupOptions): GroupSchedule {
  const shift = o.mode === "prepend" ? o.steps : 0;
  return {
    lr: (base) => {
      const s = then.lr(base);
      const from = base * o.from;
      const to = s(o.steps - shift);
      return (t) => (t < o.steps ? warmupRamp(o.shape, from, to, t / o.steps) : s(t - shift));
    },
    range: then.range
      ? (base) => {
          const [lo, hi] = then.range!(base);
          return [Math.min(lo, base * o.from), Math.max(hi, base * o.from)];
        }
      : undefined,
    cycleStarts: then.cycleStarts
      ? (from, to) =>
          then
            .cycleStarts!(Math.max(0, from - shift), Math.max(0, to - shift))
            .map((c) => c + shift)
            .filter((c) => c >= Math.max(from, o.steps) && c < to)
      : undefined,
  };
}

/** Index of the piece that owns step t: boundaries passed so far (bisect_right; boundaries are non-decreasing). */
export function pieceAt(boundaries: readonly number[], t: number): number {
  let lo = 0;
  let hi = boundaries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (t >= boundaries[mid]) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * optax join_schedules: piece 0 for t < b[0]; piece i (i ≥ 1) for
 * b[i-1] ≤ t < b[i], evaluated at its own step t − b[i-1].
 */
export function join(pieces: GroupSchedule[], boundaries: number[]): GroupSchedule {
  const offset = (i: number) => (i === 0 ? 0 : boundaries[i - 1]);
  return {
    lr: (base) => {
      const fns = pieces.map((p) => p.lr(base));
      return (t) => {
        const i = pieceAt(boundaries, t);
        return fns[i](t - offset(i));
      };
    },
    range: pieces.every((p) => p.range)
      ? (base) => unionRange(pieces.map((p) => p.range!(base)))
      : undefined,
    cycleStarts: pieces.some((p) => p.cycleStarts)
      ? (from, to) => {
          const out: number[] = [];
          pieces.forEach((p, i) => {
            if (!p.cycleStarts) return;
            const lo = Math.max(from, offset(i));
            const hi = Math.min(to, i < boundaries.length ? boundaries[i] : Infinity);
            if (lo >= hi) return;
            for (const c of p.cycleStarts(lo - offset(i), hi - offset(i))) out.push(c + offset(i));
          });
          return out;
        }
      : undefined,
  };
}

function unionRange(ranges: [number, number][]): [number, number] {
  return [Math.min(...ranges.map((r) => r[0])), Math.max(...ranges.map((r) => r[1]))];
}

/** One phase of a fraction-of-training combination: a profile between two values. */
export interface Phase {
  anneal: Anneal;
  /** start/end as functions of the group's base lr (fastai divides: lr_max/div). */
  start: (base: number) => number;
  end: (base: number) => number;
}

/**
 * fastai combine_scheds: phase i covers training fractions
 * [Σpcts[<i], Σpcts[≤i]) and sees its local progress
 * (pos − cum[i])/(cum[i+1] − cum[i]), pos = t/T (clamped to [0, 1]).
 * `float32` reproduces fastai exactly: its cumulated pcts are a float32
 * tensor, so pos is rounded to float32 and the local progress is computed
 * in float32 before the float64 profile.
 */
export function combineByFraction(pcts: number[], phases: Phase[], totalSteps: number, float32: boolean): GroupSchedule {
  const r = float32 ? Math.fround : (x: number) => x;
  const cum = [0];
  for (const p of pcts) cum.push(r(cum[cum.length - 1] + r(p)));
  const last = phases.length - 1;
  const local = (t: number): [number, number] => {
    const pos = r(Math.min(Math.max(t / totalSteps, 0), 1));
    let idx = 0;
    for (let i = 0; i < cum.length; i++) if (pos >= cum[i]) idx = i;
    idx = Math.min(idx, last);
    return [idx, r(r(pos - cum[idx]) / r(cum[idx + 1] - cum[idx]))];
  };
  return {
    lr: (base) => {
      const ends = phases.map((ph) => [ph.start(base), ph.end(base)] as const);
      return (t) => {
        const [i, p] = local(t);
        return phases[i].anneal(ends[i][0], ends[i][1], p);
      };
    },
    range: (base) => unionRange(phases.map((ph) => sortPair(ph.start(base), ph.end(base)))),
  };
}

/** Product of schedules: multipliers multiply; the first carries the base. */
export function multiply(factors: GroupSchedule[]): GroupSchedule {
  return {
    lr: (base) => {
      const [first, ...rest] = factors;
      const head = first.lr(base);
      const tail = rest.map((f) => f.lr(1));
      return (t) => tail.reduce((v, f) => v * f(t), head(t));
    },
    cycleStarts: factors.some((f) => f.cycleStarts)
      ? (from, to) =>
          [...new Set(factors.flatMap((f) => (f.cycleStarts ? f.cycleStarts(from, to) : [])))].sort((a, b) => a - b)
      : undefined,
  };
}

export interface CyclePosition {
  /** cycle index i (0-based) */
  i: number;
  /** length of cycle i */
  tI: number;
  /** steps into cycle i */
  tCurr: number;
}

/**
 * timm's cycle arithmetic (cosine_lr.py `_get_lr`): cycle i has length
 * t_initial·cycle_mul^i. For cycle_mul ≠ 1 timm uses the closed form
 * i = ⌊log(1 − t/t_initial·(1 − mul)) / log(mul)⌋, kept verbatim.
 */
export function cyclePosition(t: number, tInitial: number, cycleMul: number): CyclePosition {
  if (cycleMul !== 1) {
    const i = Math.floor(Math.log(1 - (t / tInitial) * (1 - cycleMul)) / Math.log(cycleMul));
    const tI = cycleMul ** i * tInitial;
    const tCurr = t - ((1 - cycleMul ** i) / (1 - cycleMul)) * tInitial;
    return { i, tI, tCurr };
  }
  const i = Math.floor(t / tInitial);
  return { i, tI: tInitial, tCurr: t - tInitial * i };
}

/**
 * Steps in [from, to) where one of the first `limit` cycles starts (timm
 * arithmetic). The hold at the end value after the last cycle is not a cycle.
 */
export function cycleStartSteps(from: number, to: number, tInitial: number, cycleMul: number, limit: number): number[] {
  return cycleStartsFromIndex((t) => Math.min(cyclePosition(t, tInitial, cycleMul).i, limit - 1), from, to);
}

export interface CycleOptions {
  anneal: Anneal;
  /** multiplier at each cycle's start (before cycle_decay) and at its end */
  start: number;
  end: number;
  tInitial: number;
  cycleMul: number;
  cycleDecay: number;
  /** cycles run; after them the schedule holds `end` (timm). Infinity = forever. */
  cycleLimit: number;
  /** timm/k-decay (Zhang et al. 2020): progress t_curr^k / t_i^k. */
  kDecay: number;
}

/** Restarting cycles of any profile (SGDR generalised, timm semantics). */
export function cycles(o: CycleOptions): GroupSchedule {
  const m: Schedule = (t) => {
    const { i, tI, tCurr } = cyclePosition(t, o.tInitial, o.cycleMul);
    if (i >= o.cycleLimit) return o.end;
    return o.anneal(o.start * o.cycleDecay ** i, o.end, tCurr ** o.kDecay / tI ** o.kDecay);
  };
  return {
    lr: (base) => (t) => base * m(t),
    range: (base) => sortPair(base * Math.max(o.start, o.start * o.cycleDecay), base * o.end),
    cycleStarts: (from, to) => cycleStartSteps(from, to, o.tInitial, o.cycleMul, o.cycleLimit),
  };
}
