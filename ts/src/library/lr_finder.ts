/**
 * LR range test (Smith 2015; fastai `lr_find`): the lr rises from start_lr
 * to end_lr over num_steps batches; the batch losses are smoothed and the
 * test stops when the smoothed loss diverges. Pure functions: the caller
 * carries the state (a plain JSON object) between batches.
 */

export type RangeMode = "exp" | "linear";

export interface RangeTestOptions {
  start_lr: number;
  end_lr: number;
  num_steps: number;
  mode: RangeMode;
  /** EMA factor of the loss smoothing (fastai AvgSmoothLoss). */
  beta: number;
  /** stop when smoothed loss > diverge_factor × best smoothed loss (fastai: 4). */
  diverge_factor: number;
  /** points dropped before suggesting: fastai uses [num_it//10 : -5]. */
  skip_start: number;
  skip_end: number;
}

/**
 * lr of batch i (fastai: position i/num_it, so end_lr itself is never used):
 * exp `start·(end/start)^(i/N)`, linear `start + (end − start)·i/N`.
 */
export function rangeTestLr(o: RangeTestOptions, i: number): number {
  const p = i / o.num_steps;
  return o.mode === "exp" ? o.start_lr * (o.end_lr / o.start_lr) ** p : o.start_lr + (o.end_lr - o.start_lr) * p;
}

export interface RangeState {
  /** index of the batch the next loss belongs to (= batches seen so far) */
  step: number;
  /** raw EMA of the losses (before bias correction) */
  avg: number;
  /** best (lowest) smoothed loss so far; null before the first batch */
  best: number | null;
  /** smoothed loss of every batch seen (lr of batch i is rangeTestLr(i)) */
  losses: number[];
  done: boolean;
  /** "finished" (num_steps batches) or "diverged" (smoothed > factor × best, or not finite) */
  reason: "finished" | "diverged" | null;
  /** when done: suggested lrs (null where there are too few points) */
  suggestions: Suggestions | null;
}

export interface Suggestions {
  valley: number | null;
  slide: number | null;
  minimum: number | null;
  steep: number | null;
}

export function initialRangeState(): RangeState {
  return { step: 0, avg: 0, best: null, losses: [], done: false, reason: null, suggestions: null };
}

/**
 * Feed the loss of batch `state.step`. Smoothing is fastai's AvgSmoothLoss:
 * avg = β·avg + (1 − β)·loss, smoothed = avg/(1 − β^(i+1)) (bias-corrected).
 * best = min smoothed. Stop as fastai's LRFinder.after_batch does.
 */
export function rangeTestStep(o: RangeTestOptions, s: RangeState, loss: number): RangeState {
  if (s.done) return s;
  const i = s.step;
  const avg = o.beta * s.avg + (1 - o.beta) * loss;
  const smoothed = avg / (1 - o.beta ** (i + 1));
  const best = s.best === null || smoothed < s.best ? smoothed : s.best;
  const losses = [...s.losses, smoothed];
  const diverged = !Number.isFinite(smoothed) || smoothed > o.diverge_factor * best;
  const finished = i + 1 >= o.num_steps;
  const done = diverged || finished;
  const next: RangeState = {
    step: i + 1,
    avg,
    best,
    losses,
    done,
    reason: diverged ? "diverged" : finished ? "finished" : null,
    suggestions: null,
  };
  if (done) next.suggestions = suggest(o, losses);
  return next;
}

/** The (lr, smoothed loss) points fastai suggests from: [skip_start : −skip_end], cut at the first NaN. */
export function suggestionPoints(o: RangeTestOptions, losses: number[]): { lrs: number[]; losses: number[] } {
  const end = Math.max(0, losses.length - o.skip_end);
  let pts = losses.slice(o.skip_start, end);
  const nan = pts.findIndex((l) => Number.isNaN(l));
  if (nan >= 0) pts = pts.slice(0, nan);
  return { lrs: pts.map((_, k) => rangeTestLr(o, o.skip_start + k)), losses: pts };
}

export function suggest(o: RangeTestOptions, all: number[]): Suggestions {
  const { lrs, losses } = suggestionPoints(o, all);
  return {
    valley: valley(lrs, losses),
    slide: slide(lrs, losses),
    minimum: minimum(lrs, losses),
    steep: steep(lrs, losses),
  };
}

/**
 * fastai `valley` (default of lr_find; ESRI's rule): the longest strictly
 * decreasing run (longest decreasing subsequence ending at each point),
 * then the point 1/3 + 1/6 of the way into it (≈ the steepest part).
 * The max_end update sits inside the inner loop exactly as in fastai.
 */
export function valley(lrs: number[], losses: number[]): number | null {
  const n = losses.length;
  if (n === 0) return null;
  let maxStart = 0;
  let maxEnd = 0;
  const lds = new Array<number>(n).fill(1);
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) {
      if (losses[i] < losses[j] && lds[i] < lds[j] + 1) lds[i] = lds[j] + 1;
      if (lds[maxEnd] < lds[i]) {
        maxEnd = i;
        maxStart = maxEnd - lds[maxEnd];
      }
    }
  }
  const sections = (maxEnd - maxStart) / 3;
  const idx = maxStart + Math.trunc(sections) + Math.trunc(sections / 2);
  return lrs[idx];
}

/** numpy.gradient (unit spacing): central differences inside, one-sided at the ends. */
export function npGradient(y: number[]): number[] {
  const n = y.length;
  return y.map((_, i) => (i === 0 ? y[1] - y[0] : i === n - 1 ? y[n - 1] - y[n - 2] : (y[i + 1] - y[i - 1]) / 2));
}

/**
 * fastai `slide` (interval slide rule): walk a window of lr_diff points
 * leftwards from the end while the loss gradients at its two ends differ by
 * more than thresh; suggest the lr at the window's left end.
 */
export function slide(lrs: number[], losses: number[], lrDiff = 15, thresh = 0.005, adjust = 1): number | null {
  const n = losses.length;
  if (n < lrDiff + 1 || n < 2) return null;
  const g = npGradient(losses);
  const at = (neg: number) => n + neg; // python negative index
  let r = -1;
  let l = r - lrDiff;
  let localMin = lrs[at(l)];
  while (l >= -n && Math.abs(g[at(r)] - g[at(l)]) > thresh) {
    localMin = lrs[at(l)];
    r -= 1;
    l -= 1;
  }
  return localMin * adjust;
}

/** fastai `minimum`: the lr at the lowest smoothed loss, divided by 10. */
export function minimum(lrs: number[], losses: number[]): number | null {
  if (losses.length === 0) return null;
  let k = 0;
  for (let i = 1; i < losses.length; i++) if (losses[i] < losses[k]) k = i;
  return lrs[k] / 10;
}

/** fastai `steep`: the lr where d(loss)/d(log lr) is most negative (left point of the steepest segment). */
export function steep(lrs: number[], losses: number[]): number | null {
  if (losses.length < 2) return null;
  let k = 0;
  let best = Infinity;
  for (let i = 0; i + 1 < losses.length; i++) {
    const grad = (losses[i + 1] - losses[i]) / (Math.log(lrs[i + 1]) - Math.log(lrs[i]));
    if (grad < best) {
      best = grad;
      k = i;
    }
  }
  return lrs[k];
}
