/**
 * Cycle boundaries from a cycle-index function: the steps where
 * `index(t)` increases. Works for any schedule whose cycle index is a
 * non-decreasing function of the step (it uses the library's own index
 * arithmetic, so boundaries agree with the values bit for bit).
 */

/** Largest number of boundaries one call reports. */
export const MAX_CYCLE_STARTS = 100000;

/** Steps in [from, to) where a new cycle starts; step 0 always starts cycle 0. */
export function cycleStartsFromIndex(index: (t: number) => number, from: number, to: number): number[] {
  const out: number[] = [];
  if (from >= to) return out;
  let t = Math.max(0, from);
  if (t === 0 || index(t - 1) < index(t)) out.push(t);
  while (out.length < MAX_CYCLE_STARTS) {
    const cur = index(t);
    if (index(to - 1) <= cur) break;
    // first step in (t, to) with a larger index: binary search
    let lo = t + 1;
    let hi = to - 1;
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (index(mid) > cur) hi = mid;
      else lo = mid + 1;
    }
    out.push(lo);
    t = lo;
  }
  return out;
}
