import type { SimGroup, SimOptimizer } from "./optimizer";
import { PyError } from "../core/pymath";

/**
 * torch.optim.lr_scheduler.LRScheduler, state for state: `last_epoch`,
 * `_step_count`, `_is_initial`, `base_lrs`. Subclasses set their fields and
 * then call `init()` (torch's `super().__init__`, which takes the initial step).
 */
export abstract class TorchScheduler {
  lastEpoch = -1;
  stepCount = 0;
  isInitial = false;
  baseLrs: number[] = [];
  /** Nested schedulers (SequentialLR, ChainedScheduler). */
  children?: TorchScheduler[];
  /** Whether the scheduler has a `last_epoch` attribute (ChainedScheduler has none). */
  hasLastEpoch = true;
  /** The constructor's `last_epoch` argument (-1: a fresh schedule). */
  readonly startEpoch: number;

  constructor(
    readonly optimizer: SimOptimizer,
    /** Where this scheduler sits in the spec, for error messages. */
    readonly path: string,
  ) {
    this.startEpoch = optimizer.constructLastEpoch ?? -1;
    optimizer.constructLastEpoch = undefined;
  }

  /** LRScheduler.__init__(optimizer, last_epoch). */
  protected init(): void {
    const groups = this.optimizer.groups;
    if (this.startEpoch === -1) {
      for (const g of groups) {
        if (g.initial_lr === undefined) g.initial_lr = g.lr; // setdefault (a tensor is cloned: same dtype)
      }
    } else {
      groups.forEach((g, i) => {
        if (g.initial_lr === undefined) {
          throw new PyError(
            "KeyError",
            `param 'initial_lr' is not specified in param_groups[${i}] when resuming scheduler with last_epoch >= 0.\n` +
              "This typically happens when:\n" +
              "1. You're trying to resume training from a checkpoint but haven't properly loaded the optimizer state\n" +
              "2. You're using last_epoch >= 0 for a fresh training run (not recommended)",
          );
        }
      });
    }
    this.baseLrs = groups.map((g) => g.initial_lr as number);
    this.lastEpoch = this.startEpoch;
    this.initialStep();
  }

  initialStep(): void {
    this.stepCount = 0;
    this.isInitial = true;
    try {
      this.step();
    } finally {
      this.isInitial = false;
    }
  }

  step(epoch?: number): void {
    this.stepCount += 1;
    this.updateLr(epoch);
  }

  updateLr(epoch?: number): void {
    let values: number[];
    if (epoch === undefined) {
      this.lastEpoch += 1;
      values = this.getLr();
    } else {
      this.lastEpoch = epoch;
      values = this.closedFormLr ? this.closedFormLr() : this.getLr();
    }
    writeLrs(this.optimizer.groups, values);
    this.keepLastLr();
  }

  /**
   * torch's `_last_lr`: the group lrs right after this scheduler's last
   * update (a composite's children report theirs). One reused array.
   */
  lastLr: number[] = [];
  protected keepLastLr(): void {
    const groups = this.optimizer.groups;
    if (this.lastLr.length !== groups.length) this.lastLr = new Array<number>(groups.length).fill(0);
    for (let i = 0; i < groups.length; i++) this.lastLr[i] = groups[i].lr;
  }

  /** The chainable (recursive) form: torch's get_lr(). */
  /** Sets an attribute a user changed by hand (an origin's attrs); only classes whose step() reads one take it. */
  setAttr(name: string, _value: number): void {
    throw new Error(`${this.constructor.name} has no attribute ${name} an origin may set`);
  }

  getLr(): number[] {
    throw new PyError("NotImplementedError", ""); // LRScheduler.get_lr: `raise NotImplementedError`
  }

  /** torch's _get_closed_form_lr, used by step(epoch), where the class has one. */
  closedFormLr?(): number[];

  /**
   * Where getLr/closedFormLr write their result. updateLr copies it into the
   * groups at once, so one array per scheduler serves every step (no
   * allocation in the hot loop).
   */
  private lrBuffer: number[] | undefined;
  protected lrOut(): number[] {
    const n = this.optimizer.groups.length;
    if (this.lrBuffer === undefined) this.lrBuffer = new Array<number>(n).fill(0);
    return this.lrBuffer;
  }

  /** Current group lrs (torch's _param_groups_val_list(optimizer, "lr")). */
  protected currentLrs(): number[] {
    const groups = this.optimizer.groups;
    const out = this.lrOut();
    for (let i = 0; i < groups.length; i++) out[i] = groups[i].lr;
    return out;
  }

  /** Every group's current lr times `factor` (the chainable forms' `group["lr"] * f`). */
  protected currentLrsTimes(factor: number): number[] {
    const groups = this.optimizer.groups;
    const out = this.lrOut();
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      out[i] = g.f32 ? Math.fround(g.lr * Math.fround(factor)) : g.lr * factor;
    }
    return out;
  }

  /**
   * The cosine closed form from base_lr, `eta_min + (base_lr - eta_min) * c / 2`
   * with c = 1 + cos(...), for every group (CosineAnnealingLR, CosineAnnealingWarmRestarts).
   */
  protected baseLrsCosine(etaMin: number, c: number): number[] {
    const base = this.baseLrs;
    const groups = this.optimizer.groups;
    const out = this.lrOut();
    for (let i = 0; i < out.length; i++) {
      out[i] = groups[i].f32 ? cosineFromBaseF32(base[i], etaMin, c) : etaMin + ((base[i] - etaMin) * c) / 2;
    }
    return out;
  }

  /** base_lr * `factor` for every group (the closed forms' `base_lr * f`; base_lr is a clone of a tensor lr). */
  protected baseLrsTimes(factor: number): number[] {
    const base = this.baseLrs;
    const groups = this.optimizer.groups;
    const out = this.lrOut();
    for (let i = 0; i < base.length; i++) {
      out[i] = groups[i].f32 ? Math.fround(base[i] * Math.fround(factor)) : base[i] * factor;
    }
    return out;
  }
}

/** torch's _update_param_group_val for "lr": a float32 tensor's fill_ rounds. */
export function writeLrs(groups: SimGroup[], values: readonly number[]): void {
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i];
    g.lr = g.f32 ? Math.fround(values[i]) : values[i];
  }
}

/**
 * `eta_min + (base_lr - eta_min) * c / 2` with base_lr a float32 tensor:
 * every operation in float32 (CosineAnnealingLR, CosineAnnealingWarmRestarts).
 */
function cosineFromBaseF32(base: number, etaMin: number, c: number): number {
  const eta = Math.fround(etaMin);
  const t = Math.fround(Math.fround(Math.fround(base - eta) * Math.fround(c)) / 2);
  return Math.fround(eta + t);
}

/**
 * A scheduler whose get_lr() reads only the step count and constants (never
 * the current lr): while it drives the optimizer alone, row t (what the t-th
 * step() leaves in the groups) can be computed directly, by the same
 * expressions as getLr, so with the same bits, and without replaying steps.
 */
export interface DirectRows {
  /**
   * Rows first..first+count-1 into lr (and momentum, when given), row-major
   * by group. Throws StepFailure at the first row whose step would raise.
   */
  fillRows(first: number, count: number, lr: Float64Array, momentum: Float64Array | null): void;
}

export function hasDirectRows(s: TorchScheduler): s is TorchScheduler & DirectRows {
  return typeof (s as Partial<DirectRows>).fillRows === "function";
}

/** The step at which fillRows stopped, and what get_lr raised there. */
export class StepFailure extends Error {
  constructor(
    readonly row: number,
    readonly error: unknown,
  ) {
    super(`step ${row} raised: ${error instanceof Error ? error.message : String(error)}`);
    this.name = "StepFailure";
  }
}
