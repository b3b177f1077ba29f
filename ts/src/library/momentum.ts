/**
 * Momentum attached to an lr schedule. Either its own schedule (absolute
 * momentum values, e.g. fastai's 0.95→0.85→0.95), or the inverse of the lr
 * (Smith's 1cycle): high lr ↔ low momentum,
 *   m = m_max − (m_max − m_min)·(lr − lr_min)/(lr_max − lr_min).
 */
import type { GroupSchedule, Schedule } from "./types";

/** Inverse momentum for one group. lr_max = lr_min gives m_max throughout. */
export function inverseMomentum(lr: Schedule, lrMin: number, lrMax: number, mMax: number, mMin: number): Schedule {
  const span = lrMax - lrMin;
  return (t) => (span === 0 ? mMax : mMax - ((mMax - mMin) * (lr(t) - lrMin)) / span);
}

/** Inverse momentum for a group schedule whose lr range is known. */
export function inverseMomentumFor(g: GroupSchedule, base: number, mMax: number, mMin: number, range?: [number, number]): Schedule {
  const [lo, hi] = range ?? g.range!(base);
  return inverseMomentum(g.lr(base), lo, hi, mMax, mMin);
}
