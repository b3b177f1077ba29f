/**
 * GreedyLR (transformers' `get_scheduler("greedy")`, after Subramanian et al.
 * 2025): a metric-driven schedule that divides every group's lr by `factor`
 * after more than `patience` improving steps and multiplies it by `factor`
 * after more than `patience` steps without one, within [min_lr, max_lr]; a
 * run stuck at min_lr for `reset_start` reductions goes back to its initial
 * lrs. With `smooth`, the metric is first averaged over the last
 * `window_size` values. Transcribed operation for operation from
 * transformers.optimization.GreedyLR, so the values are its bits.
 */

export interface GreedyOptions {
  mode: "min" | "max";
  factor: number;
  patience: number;
  threshold: number;
  threshold_mode: "rel" | "abs";
  cooldown: number;
  warmup: number;
  min_lrs: number[];
  max_lrs: number[];
  eps: number;
  smooth: boolean;
  window_size: number;
  reset_start: number;
}

/** What a client carries between steps. `lr` is the group lrs a step starts from (clients write the current ones). */
export interface GreedyState {
  lr: number[];
  init_lr: number[];
  best: number;
  num_bad_epochs: number;
  num_good_epochs: number;
  cooldown_counter: number;
  warmup_counter: number;
  reset_start: number;
  last_epoch: number;
  /** The smoothing window (smooth only): the last values and their running sum. */
  values: number[];
  sum: number;
}

const worst = (o: GreedyOptions) => (o.mode === "min" ? Infinity : -Infinity);

export function initialGreedyState(o: GreedyOptions, lrs: number[]): GreedyState {
  return {
    lr: [...lrs],
    init_lr: [...lrs],
    best: worst(o),
    num_bad_epochs: 0,
    num_good_epochs: 0,
    cooldown_counter: 0,
    warmup_counter: 0,
    reset_start: o.reset_start,
    last_epoch: 0,
    values: [],
    sum: 0,
  };
}

function isBetter(o: GreedyOptions, current: number, best: number): boolean {
  if (o.mode === "min") return o.threshold_mode === "rel" ? current < best * (1.0 - o.threshold) : current < best - o.threshold;
  return o.threshold_mode === "rel" ? current > best * (1.0 + o.threshold) : current > best + o.threshold;
}

/** One `step(metric)`; returns a new state (the given one is not changed). */
export function greedyStep(o: GreedyOptions, prev: GreedyState, metric: number): GreedyState {
  const s: GreedyState = { ...prev, lr: [...prev.lr], values: [...prev.values] };
  let current = metric;
  if (o.smooth) {
    s.values.push(current);
    s.sum += current;
    if (s.values.length > o.window_size) s.sum -= s.values.shift()!;
    current = s.sum / s.values.length;
  }
  s.last_epoch += 1;
  if (s.cooldown_counter > 0) {
    s.cooldown_counter -= 1;
    s.num_bad_epochs = 0;
    s.num_good_epochs = 0;
  } else if (s.warmup_counter > 0) {
    s.warmup_counter -= 1;
    s.num_bad_epochs = 0;
    s.num_good_epochs = 0;
  } else {
    if (isBetter(o, current, s.best)) {
      s.best = current;
      s.num_bad_epochs = 0;
      s.num_good_epochs += 1;
    } else {
      s.num_bad_epochs += 1;
      s.num_good_epochs = 0;
    }
    if (s.num_good_epochs > o.patience) {
      for (let i = 0; i < s.lr.length; i++) {
        const next = Math.min(s.lr[i] / o.factor, o.max_lrs[i]);
        if (next - s.lr[i] > o.eps) s.lr[i] = next;
      }
      s.reset_start = o.reset_start;
      s.warmup_counter = o.warmup;
      s.num_good_epochs = 0;
    } else if (s.num_bad_epochs > o.patience) {
      let allAtMin = true;
      for (let i = 0; i < s.lr.length; i++) {
        const next = Math.max(s.lr[i] * o.factor, o.min_lrs[i]);
        if (s.lr[i] - next > o.eps) s.lr[i] = next;
        if (s.lr[i] > o.min_lrs[i]) allAtMin = false;
      }
      if (allAtMin) {
        s.reset_start -= 1;
        if (s.reset_start <= 0) reset(o, s);
      }
      s.cooldown_counter = o.cooldown;
      s.num_bad_epochs = 0;
    }
  }
  return s;
}

function reset(o: GreedyOptions, s: GreedyState): void {
  s.lr = [...s.init_lr];
  s.best = worst(o);
  s.num_bad_epochs = 0;
  s.num_good_epochs = 0;
  s.cooldown_counter = 0;
  s.warmup_counter = 0;
  s.reset_start = o.reset_start;
  s.values = [];
  s.sum = 0;
}
