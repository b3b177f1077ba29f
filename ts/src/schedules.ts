/**
 * `lrbridge/schedules`: the schedule library for authors of schedule modules.
 *
 * A schedule is a function of the step, `(step) => value` (optax style). For
 * an lr schedule the value is a multiplier of each param group's base lr; a
 * momentum schedule gives the momentum itself. Every function here builds its
 * schedule from the same spec the JSON grammar takes (README, "spec grammar"),
 * so it validates its arguments with the server's own rules and names the
 * field it refuses, and each schedule carries that spec (`.spec`): a module
 * built only from these pieces is served exactly as the equivalent JSON spec.
 *
 * A schedule module is a TypeScript file whose default export is one of
 *   - a schedule built here (`export default cosine(1000)`);
 *   - `{ lr, momentum }`, two schedules;
 *   - a factory `(params) => schedule | { lr, momentum }`, called with the
 *     module's `params`;
 * and whose only import is `lrbridge/schedules`. A factory may also return a
 * plain function `(step) => number`: custom arithmetic, computed inside the
 * sandbox (see README, "Schedules as TypeScript modules").
 */
import { parseSchedule } from "./library/parse";

/** A spec of the JSON grammar (`{"type": ...}`). */
export type Spec = { type: string } & Record<string, unknown>;

/** A schedule: value at each step (steps are integers ≥ 0). */
export interface Schedule {
  (step: number): number;
  /** The JSON spec this schedule is; absent on custom functions. */
  readonly spec?: Spec;
}

/** An lr schedule with its momentum schedule (momentum values are absolute, e.g. 0.95). */
export interface WithMomentum {
  lr: Schedule;
  momentum: Schedule;
}

/** What a module's default export gives: a schedule, or an lr schedule with its momentum. */
export type ModuleSchedule = Schedule | ((step: number) => number) | WithMomentum;

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Options in camelCase → spec fields in snake_case, leaving out the ones not given. */
function fields(options: object | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!options) return out;
  for (const [k, v] of Object.entries(options)) if (v !== undefined) out[snake(k)] = v;
  return out;
}

function specOf(s: Schedule, what: string): Spec {
  if (typeof s !== "function" || !s.spec) {
    throw new TypeError(`${what} must be a schedule built with lrbridge/schedules (custom functions cannot be combined)`);
  }
  return s.spec;
}

/** The schedule of a spec: checked and built by the library's own parser, values at base lr 1. */
export function fromSpec(spec: Spec): Schedule {
  const fn = parseSchedule("", spec).schedule.lr(1);
  const s = ((step: number) => fn(step)) as Schedule;
  Object.defineProperty(s, "spec", { value: spec, enumerable: false });
  return s;
}

function make(type: string, f: Record<string, unknown>): Schedule {
  return fromSpec({ type, ...f });
}

// -- profiles: value `start` at step 0, `end` from `totalSteps` on (p = min(t, T)/T) --------

/** Start and end multipliers of a profile (default 1 → 0). */
export interface Ends {
  start?: number;
  end?: number;
}

/** constant: `value` at every step. */
export function constant(value = 1): Schedule {
  return make("constant", { value });
}

/** linear: `start + (end − start)·p`. */
export function linear(totalSteps: number, o?: Ends): Schedule {
  return make("linear", { total_steps: totalSteps, ...fields(o) });
}

/** cosine: `end + (start − end)·(1 + cos(π·p))/2`. */
export function cosine(totalSteps: number, o?: Ends): Schedule {
  return make("cosine", { total_steps: totalSteps, ...fields(o) });
}

/** exponential: `start·(end/start)^p`; start, end > 0. */
export function exponential(totalSteps: number, o: { start?: number; end: number }): Schedule {
  return make("exponential", { total_steps: totalSteps, ...fields(o) });
}

/** polynomial: `end + (start − end)·(1 − p)^power` (power 1). */
export function polynomial(totalSteps: number, o?: Ends & { power?: number }): Schedule {
  return make("polynomial", { total_steps: totalSteps, ...fields(o) });
}

/** REX: `end + (start − end)·(1 − p)/(1 − w·p)` (w 0.5, the paper's). */
export function rex(totalSteps: number, o?: Ends & { w?: number }): Schedule {
  return make("rex", { total_steps: totalSteps, ...fields(o) });
}

/** tanh (timm): `end + (start − end)·½·(1 − tanh(lb·(1 − p) + ub·p))` (lb −7, ub 3). */
export function tanh(totalSteps: number, o?: Ends & { lb?: number; ub?: number }): Schedule {
  return make("tanh", { total_steps: totalSteps, ...fields(o) });
}

/** 1-sqrt cooldown: `end + (start − end)·(1 − √p)`. */
export function oneMinusSqrt(totalSteps: number, o?: Ends): Schedule {
  return make("one_minus_sqrt", { total_steps: totalSteps, ...fields(o) });
}

/** step decay: `start·gamma^⌊t/every⌋` (gamma 0.1, start 1). */
export function step(every: number, o?: { gamma?: number; start?: number }): Schedule {
  return make("step", { every, ...fields(o) });
}

/** piecewise constant: `values[i]` for `boundaries[i−1] ≤ t < boundaries[i]` (one more value than boundaries). */
export function piecewise(boundaries: number[], values: number[]): Schedule {
  return make("piecewise", { boundaries, values });
}

/** inverse square root: `start/√((t + τ)/τ)` (τ = timescale, 10000). */
export function inverseSqrt(o?: { start?: number; timescale?: number }): Schedule {
  return make("inverse_sqrt", fields(o));
}

// -- combinators ------------------------------------------------------------------------------

/**
 * optax join_schedules: `schedules[0]` for t < b[0]; `schedules[i]` for
 * b[i−1] ≤ t < b[i], evaluated at its own step t − b[i−1].
 */
export function join(schedules: Schedule[], boundaries: number[]): Schedule {
  return make("join", { schedules: schedules.map((s, i) => specOf(s, `join: schedules[${i}]`)), boundaries });
}

/** Product of schedules: `s₀(t)·s₁(t)·…`. */
export function multiply(schedules: Schedule[]): Schedule {
  return make("multiply", { schedules: schedules.map((s, i) => specOf(s, `multiply: schedules[${i}]`)) });
}

/**
 * Sampling rate: `{every: k}` holds `s(⌊t/k⌋·k)`; `{times: n, totalSteps: T}`
 * holds level j = ⌊t·n/T⌋ at `s(j·T/n)` (a staircase of n levels).
 */
export function sample(s: Schedule, o: { every: number } | { times: number; totalSteps: number }): Schedule {
  return make("sample", { schedule: specOf(s, "sample: schedule"), ...fields(o) });
}

export type WarmupShape = "linear" | "exponential" | "cosine";

export interface WarmupOptions {
  /** ramp shape (linear) */
  shape?: WarmupShape;
  /** start multiplier (0; must be > 0 for exponential) */
  from?: number;
  /** prepend (shift `then` by `steps`) or overlay (replace its first steps) */
  mode?: "prepend" | "overlay";
}

/** The standalone ramps: `from → 1` over `steps`, then 1 (a piece for `join`). */
export interface WarmupRamps {
  /** linear ramp: `from + (1 − from)·t/steps`. */
  linear(steps: number, o?: { from?: number }): Schedule;
  /** cosine ramp: `1 + (from − 1)·(1 + cos(π·t/steps))/2`. */
  cosine(steps: number, o?: { from?: number }): Schedule;
  /** exponential ramp: `from·(1/from)^(t/steps)`; from > 0. */
  exponential(steps: number, o: { from: number }): Schedule;
}

/**
 * Warmup in front of `then`: a ramp from `from` to then's first value over
 * `steps` (linear `from + (to − from)·p`, exponential `from·(to/from)^p`,
 * cosine `from + (to − from)·(1 − cos(π·p))/2`), then `then`.
 * `warmup.linear(n)` etc. are standalone ramps to 1.
 */
export const warmup: ((steps: number, then: Schedule, o?: WarmupOptions) => Schedule) & WarmupRamps = Object.assign(
  (steps: number, then: Schedule, o?: WarmupOptions) => make("warmup", { steps, then: specOf(then, "warmup: then"), ...fields(o) }),
  {
    linear: (steps: number, o?: { from?: number }) => make("linear", { total_steps: steps, start: o?.from ?? 0, end: 1 }),
    cosine: (steps: number, o?: { from?: number }) => make("cosine", { total_steps: steps, start: o?.from ?? 0, end: 1 }),
    exponential: (steps: number, o: { from: number }) => make("exponential", { total_steps: steps, start: o.from, end: 1 }),
  },
);

export type Shape = "constant" | "linear" | "cosine" | "exponential" | "polynomial" | "rex" | "tanh" | "one_minus_sqrt";

export interface CycleOptions extends Ends {
  /** profile of each cycle (cosine) */
  shape?: Shape;
  /** cycle i lasts tInitial·cycleMul^i steps (1) */
  cycleMul?: number;
  /** cycle i starts at start·cycleDecay^i (1) */
  cycleDecay?: number;
  /** cycles run before holding `end` (forever) */
  cycleLimit?: number;
  /** progress t^k/T^k within a cycle (1) */
  kDecay?: number;
  power?: number;
  w?: number;
  lb?: number;
  ub?: number;
}

/** Restarting cycles of a profile with timm's cycle arithmetic (SGDR generalised). */
export function cycles(tInitial: number, o?: CycleOptions): Schedule {
  return make("cycles", { t_initial: tInitial, ...fields(o) });
}

/** timm-style noise `s(t)·(1 + n)` in `range` (deterministic per seed). */
export function noise(
  s: Schedule,
  o: { range: number | [number, number]; pct?: number; std?: number; noiseType?: "normal" | "uniform"; seed?: number },
): Schedule {
  return make("noise", { schedule: specOf(s, "noise: schedule"), ...fields(o) });
}

// -- recipes ----------------------------------------------------------------------------------

/** transformers `get_scheduler(name, …)`: options with transformers' own (snake_case) names. */
export function hf(name: string, o: Record<string, unknown>): Schedule {
  return make("hf", { name, ...o });
}

/** warmup-stable-decay: give `totalSteps` or `stableSteps`. */
export function wsd(o: {
  decaySteps: number;
  warmupSteps?: number;
  totalSteps?: number;
  stableSteps?: number;
  warmupShape?: "linear" | "cosine" | "1-sqrt";
  decayShape?: "linear" | "cosine" | "1-sqrt";
  minLrRatio?: number;
}): Schedule {
  return make("wsd", fields(o));
}

/** timm CosineLRScheduler: options with timm's names (snake_case). */
export function timmCosine(tInitial: number, o?: Record<string, unknown>): Schedule {
  return make("timm_cosine", { t_initial: tInitial, ...o });
}

/** Keras CosineDecayRestarts: period t0·tMult^i, peak mMul^i, floor alpha. */
export function sgdr(t0: number, o?: { tMult?: number; mMul?: number; alpha?: number }): Schedule {
  return make("sgdr", { t_0: t0, ...fields(o) });
}

/** Snapshot ensembles: `snapshots` cosine cycles of ⌈T/M⌉ steps. */
export function snapshot(totalSteps: number, snapshots: number): Schedule {
  return make("snapshot", { total_steps: totalSteps, snapshots });
}

/** fastai fit_one_cycle (its momentum cycle `moms` comes along: null for none). */
export function oneCycle(
  totalSteps: number,
  o?: { div?: number; divFinal?: number; pctStart?: number; moms?: [number, number, number] | null },
): Schedule {
  return make("one_cycle", { total_steps: totalSteps, ...fields(o) });
}

/** fastai fit_flat_cos: flat, then cosine from `pctStart` of training. */
export function flatCos(totalSteps: number, o?: { pctStart?: number; divFinal?: number }): Schedule {
  return make("flat_cos", { total_steps: totalSteps, ...fields(o) });
}

/** Chebyshev step sizes in fractal order (Agarwal et al. 2021); horizon a power of 2. */
export function fractal(horizon: number, lambdaMin: number, lambdaMax: number): Schedule {
  return make("fractal", { horizon, lambda_min: lambdaMin, lambda_max: lambdaMax });
}
