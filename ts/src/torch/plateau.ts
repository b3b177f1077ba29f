/**
 * ReduceLROnPlateau as a pure function: (state, metric) → state. No
 * constructor step: the lrs start as the optimizer's.
 */
import { PyError } from "../core/pymath";

export interface PlateauConfig {
  mode: "min" | "max";
  factor: number;
  patience: number;
  threshold: number;
  thresholdMode: "rel" | "abs";
  cooldown: number;
  minLrs: readonly number[];
  /** min_lr was one number (torch's default_min_lr): it extends to groups added later. */
  minLrScalar: boolean;
  eps: number;
}

/** Everything torch keeps between steps; `best: null` stands for ±inf (mode_worse). */
export interface PlateauState {
  lr: number[];
  best: number | null;
  num_bad_epochs: number;
  cooldown_counter: number;
  last_epoch: number;
}

export function plateauInitial(lrs: readonly number[]): PlateauState {
  return { lr: [...lrs], best: null, num_bad_epochs: 0, cooldown_counter: 0, last_epoch: 0 };
}

function isBetter(cfg: PlateauConfig, a: number, bestOrNull: number | null): boolean {
  const best = bestOrNull ?? (cfg.mode === "min" ? Infinity : -Infinity);
  if (cfg.mode === "min" && cfg.thresholdMode === "rel") return a < best * (1.0 - cfg.threshold);
  if (cfg.mode === "min") return a < best - cfg.threshold;
  if (cfg.thresholdMode === "rel") return a > best * (cfg.threshold + 1.0);
  return a > best + cfg.threshold;
}

export function plateauStep(cfg: PlateauConfig, state: PlateauState, metric: number): PlateauState {
  // Built from the known fields only: the state comes from a client and anything else it carries is dropped.
  const next: PlateauState = {
    lr: [...state.lr],
    best: state.best,
    num_bad_epochs: state.num_bad_epochs,
    cooldown_counter: state.cooldown_counter,
    last_epoch: state.last_epoch + 1,
  };
  if (isBetter(cfg, metric, state.best)) {
    next.best = metric;
    next.num_bad_epochs = 0;
  } else {
    next.num_bad_epochs += 1;
  }
  if (next.cooldown_counter > 0) {
    next.cooldown_counter -= 1;
    next.num_bad_epochs = 0;
  }
  if (next.num_bad_epochs > cfg.patience) {
    // torch's _reduce_lr after optimizer.add_param_group(...).
    let minLrs = cfg.minLrs;
    if (next.lr.length !== minLrs.length) {
      if (!cfg.minLrScalar) {
        throw new PyError(
          "RuntimeError",
          "The number of param groups in the `optimizer` " +
            `(${next.lr.length}) differs ` +
            "from when `ReduceLROnPlateau` was initialized " +
            `(${minLrs.length}), usually due to a new ` +
            "param group being added to the optimizer. Please " +
            "modify the `min_lrs` field to match the length " +
            "of the `optimizer` param groups.",
        );
      }
      minLrs = new Array<number>(next.lr.length).fill(minLrs[0]);
    }
    next.lr = next.lr.map((old, i) => {
      const scaled = old * cfg.factor;
      const minLr = minLrs[i];
      const newLr = minLr > scaled ? minLr : scaled; // Python max(scaled, min_lr)
      return old - newLr > cfg.eps ? newLr : old;
    });
    next.cooldown_counter = cfg.cooldown;
    next.num_bad_epochs = 0;
  }
  return next;
}
