/** A schedule: a pure function of the step count (optax style). */
export type Schedule = (step: number) => number;

/** A profile: value at progress p ∈ [0, 1], `start` at p = 0, `end` at p = 1 (fastai style). */
export type Anneal = (start: number, end: number, p: number) => number;

/**
 * A schedule for param groups: `lr(base)` is the absolute lr schedule of a
 * group whose base lr is `base`. Multiplier schedules are `base·m(t)`;
 * library recipes with absolute parts (timm's lr_min) use `base` as the
 * library does, so each group gets the library's own arithmetic.
 */
export interface GroupSchedule {
  lr(base: number): Schedule;
  /** [lowest, highest] absolute lr over the run, when known (inverse momentum needs it). */
  range?(base: number): [number, number];
  /** Steps in [from, to) where a new cycle starts (cyclic schedules; step 0 counts). */
  cycleStarts?(from: number, to: number): number[];
}

/** Multiplier schedule → group schedule: `base·m(t)`. */
export function scaled(m: Schedule, range?: [number, number], cycleStarts?: GroupSchedule["cycleStarts"]): GroupSchedule {
  return {
    lr: (base) => (t) => base * m(t),
    range: range ? (base) => sortPair(base * range[0], base * range[1]) : undefined,
    cycleStarts,
  };
}

export function sortPair(a: number, b: number): [number, number] {
  return a <= b ? [a, b] : [b, a];
}
