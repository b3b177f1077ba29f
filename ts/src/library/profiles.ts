/**
 * Profiles: the shape of a schedule as a function of training progress.
 *
 * A schedule here is a pure function `(step) => value` (optax style). A
 * profile is an "annealer" `(start, end, p) => value` for progress p ∈ [0, 1]
 * (fastai style): value is `start` at p = 0 and `end` at p = 1. Sampling rate
 * and combinators (sampling.ts, combinators.ts) are applied on top.
 */

import { SpecError } from "../core/api";
import type { Fields } from "../core/fields";
import type { Anneal, Schedule } from "./types";
export type { Anneal, Schedule } from "./types";

/** constant: `start` for every p (the end value is ignored). */
export const constantAnneal: Anneal = (start) => start;

/** linear: `start + (end - start)·p`. */
export const linearAnneal: Anneal = (start, end, p) => start + (end - start) * p;

/** cosine (torch/timm form): `end + (start - end)·(1 + cos(π·p))/2`. */
export const cosineAnneal: Anneal = (start, end, p) =>
  end + 0.5 * (start - end) * (1 + Math.cos(Math.PI * p));

/** exponential (geometric interpolation, fastai SchedExp): `start·(end/start)^p`; start, end > 0. */
export const exponentialAnneal: Anneal = (start, end, p) => start * (end / start) ** p;

/** polynomial (torch/HF/optax decay form): `end + (start - end)·(1 - p)^power`. */
export function polynomialAnneal(power: number): Anneal {
  return (start, end, p) => end + (start - end) * (1 - p) ** power;
}

/**
 * REX (Chen, Wolfe, Kyrillidis 2022): `end + (start - end)·(1 - p)/(1 - w·p)`.
 * w = 0.5 is the paper's profile `(1-p)/(1-p/2)`; w = 0.9 is the authors'
 * companion code. w = 0 is linear decay.
 */
export function rexAnneal(w = 0.5): Anneal {
  return (start, end, p) => end + (start - end) * ((1 - p) / (1 - w * p));
}

/**
 * tanh (timm TanhLRScheduler, after Hsueh et al. 2019):
 * `end + (start - end)·½·(1 - tanh(lb·(1 - p) + ub·p))`, timm defaults lb = -7, ub = 3.
 * Note: at p = 0 it gives ½(1 - tanh(lb)) ≈ 0.9999983 of the way, not exactly start.
 */
export function tanhAnneal(lb = -7, ub = 3): Anneal {
  return (start, end, p) => end + 0.5 * (start - end) * (1 - Math.tanh(lb * (1 - p) + ub * p));
}

/** 1-sqrt (HF WSD "1-sqrt" cooldown, Hägele et al. 2024): `end + (start - end)·(1 - √p)`. */
export const oneMinusSqrtAnneal: Anneal = (start, end, p) => end + (start - end) * (1 - Math.sqrt(p));

/**
 * The shapes a spec names (`{"type": "rex", ...}`, `cycles`' and `phase`'s
 * `shape`): each reads its own fields (power, w, lb/ub) and gives its
 * annealer. A new shape is its annealer above and one entry here.
 */
export const PROFILES = {
  constant: { anneal: () => constantAnneal },
  linear: { anneal: () => linearAnneal },
  cosine: { anneal: () => cosineAnneal },
  /** start and end must be > 0 */
  exponential: { anneal: () => exponentialAnneal, positiveEnds: true },
  polynomial: { anneal: (f) => polynomialAnneal(f.num("power", { gt: 0 }, 1)) },
  rex: { anneal: (f) => rexAnneal(f.num("w", { min: 0, lt: 1 }, 0.5)) },
  tanh: {
    anneal: (f) => {
      const lb = f.num("lb", {}, -7);
      const ub = f.num("ub", {}, 3);
      if (!(lb < ub)) throw new SpecError(f.at("ub"), `must be > lb (${lb}), got ${ub}`);
      return tanhAnneal(lb, ub);
    },
  },
  one_minus_sqrt: { anneal: () => oneMinusSqrtAnneal },
} satisfies Record<string, { anneal: (f: Fields) => Anneal; positiveEnds?: boolean }>;

export type ProfileShape = keyof typeof PROFILES;
export const PROFILE_SHAPES = Object.keys(PROFILES) as ProfileShape[];

/**
 * Run a profile over `totalSteps` steps: value at step t is the profile at
 * p = min(t, T)/T, so it holds `end` after T (no wrap-around).
 */
export function overSteps(anneal: Anneal, start: number, end: number, totalSteps: number): Schedule {
  return (t) => anneal(start, end, Math.min(Math.max(t, 0), totalSteps) / totalSteps);
}

/** constant schedule. */
export function constant(value: number): Schedule {
  return () => value;
}

/** step decay (torch StepLR, optax exponential_decay(staircase)): `start·gamma^⌊t/every⌋`. */
export function stepDecay(start: number, every: number, gamma: number): Schedule {
  return (t) => start * gamma ** Math.floor(t / every);
}

/**
 * piecewise constant (optax piecewise_constant_schedule, absolute values):
 * `values[i]` for `boundaries[i-1] <= t < boundaries[i]`; values has one
 * more entry than boundaries.
 */
export function piecewiseConstant(boundaries: number[], values: number[]): Schedule {
  return (t) => {
    let i = 0;
    while (i < boundaries.length && t >= boundaries[i]) i++;
    return values[i];
  };
}

/**
 * inverse square root (big_vision / HF inverse_sqrt without warmup):
 * `start / √((t + τ)/τ)`: `start` at t = 0, halves by t = 3τ.
 */
export function inverseSqrt(start: number, timescale: number): Schedule {
  return (t) => start * (1.0 / Math.sqrt((t + timescale) / timescale));
}
