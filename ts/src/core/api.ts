/**
 * The contract between the schedule core and everything that serves it
 * (server, CLI). Specs are plain JSON; `bind` validates one against the
 * optimizer's param groups and returns a pure, replayable schedule.
 */

/** One optimizer param group as the scheduler's constructor finds it. */
export interface GroupInit {
  /** group["lr"] now. */
  lr: number;
  /** group["initial_lr"] when set (a loaded optimizer state, or an earlier scheduler). */
  initial_lr?: number | null;
  /** group["lr"] is a tensor of this dtype; absent: a Python float. */
  lr_dtype?: "float32" | "float64" | null;
  /** group["momentum"], when the optimizer has one (SGD, RMSprop). */
  momentum?: number | null;
  /** group["betas"], when the optimizer has them (Adam family). */
  betas?: [number, number] | null;
  /** The keys OneCycleLR's constructor wrote, when the group has them: a resume (last_epoch >= 0) reads them. */
  max_lr?: number | null;
  min_lr?: number | null;
  max_momentum?: number | null;
  base_momentum?: number | null;
}

/** The GroupInit keys a resumed OneCycleLR reads back from the groups its first constructor wrote. */
export const RESUMED_KEYS = ["max_lr", "min_lr", "max_momentum", "base_momentum"] as const;

/** Which param_group key a schedule writes momentum into. */
export type MomentumKey = "momentum" | "betas" | null;

/** The exception torch raises, as Python names and prints it. */
export interface PyException {
  type: string;
  message: string;
}

/**
 * Row-major values: rows × groups; row k = the state when `last_epoch` is k
 * (a fresh schedule: after k `step()` calls).
 */
export interface Rows {
  lr: Float64Array;
  /** momentum or beta1 per group; null when the schedule writes none. */
  momentum: Float64Array | null;
  /** Scheduler attributes torch updates each step, one value per row (CosineAnnealingWarmRestarts: T_cur, T_i). */
  attrs?: Record<string, Float64Array>;
  /** The rows stop before `row`, whose step() raises `py` in torch. */
  stop?: { row: number; py: PyException };
}

/** What the constructor leaves in the optimizer: row `first_row`'s values and the keys it writes. */
export interface Constructed {
  /** The row construction leaves: last_epoch + 1 (0 for a fresh schedule). */
  firstRow: number;
  /** Per group, every key the constructor wrote or read (lr, initial_lr, max_lr, ...). */
  groups: Record<string, number | number[]>[];
  /** Scheduler attributes the drop-in exposes (OneCycleLR total_steps, use_beta1, ...). */
  attrs: Record<string, unknown>;
}

/**
 * A chainable schedule continues from the group lrs as they are. `Rebase`
 * says: at row `step`, the lrs were `lr` (changed outside the scheduler);
 * rows after it continue from there exactly as torch's recursive form does.
 */
export interface Rebase {
  step: number;
  lr: number[];
  /**
   * Scheduler attributes set by hand at row `step` (CosineAnnealingWarmRestarts'
   * T_cur and T_i): rows after it continue from them, as torch's step() does.
   */
  attrs?: Record<string, number>;
}

/** Client-carried state of a metric-driven schedule (ReduceLROnPlateau, range test). */
export type MetricState = Record<string, unknown>;

export interface MetricResult {
  state: MetricState;
  lr: number[];
  momentum: number[] | null;
}

/** A spec bound to param groups: what the server caches under a hash. */
export interface Bound {
  /** The spec with defaults filled in and keys sorted: the canonical form. */
  readonly canonical: unknown;
  /** sha256 hex of the canonical JSON of the spec alone. */
  readonly specHash: string;
  readonly kind: "deterministic" | "metric";
  readonly momentumKey: MomentumKey;
  readonly groups: number;
  /** Chainable: an lr edited by hand carries into later rows (see Rebase). */
  readonly chainable: boolean;
  /** Attributes an origin may set (see Rebase), for schedules whose step() reads them. */
  readonly originAttrs?: readonly string[];
  /**
   * The first row the schedule refuses (torch's OneCycleLR past total_steps,
   * also inside composites); null when every row exists. Clients never ask
   * for rows at or past it.
   */
  readonly rowEnd: number | null;
  /** Deterministic torch schedules: the optimizer state construction leaves. */
  readonly constructed?: Constructed;
  /** Deterministic only: rows [start, start+count), or fewer when `stop` says where torch raises. */
  rows(start: number, count: number, origin?: Rebase): Rows;
  /**
   * torch's deprecated `step(epoch)`: the values after calling step(epoch)
   * with the given epoch sequence (closed form where torch has one; the
   * fractional-epoch rule for CosineAnnealingWarmRestarts).
   */
  epochRows?(epochs: number[], lr?: number[]): Rows;
  /**
   * Cyclic schedules only: the steps in [start, start+count) where a cycle
   * starts (step 0 starts the first), so clients can snapshot at cycle ends.
   */
  cycles?(start: number, count: number): number[];
  /** Metric-driven only. Row 0 is `initialState()`'s lrs. */
  initialState?(): MetricResult;
  metricStep?(state: MetricState, metric: number): MetricResult;
}

/**
 * A spec that breaks a rule. `path` is like `schedulers[1].pct_start`; `py`
 * is what torch raises for it (the drop-in raises that), when torch does.
 */
export class SpecError extends Error {
  constructor(
    readonly path: string,
    readonly rule: string,
    readonly py?: PyException,
  ) {
    super(path ? `${path}: ${rule}` : rule);
    this.name = "SpecError";
  }
}

/** torch refuses a step (OneCycleLR past total_steps, a metric step it cannot take): REFUSED. */
export class Refusal extends Error {
  constructor(
    readonly path: string,
    readonly py: PyException,
    readonly row?: number,
  ) {
    super(`${path ? `${path}: ` : ""}torch raises ${py.type}: ${py.message}${row === undefined ? "" : ` at row ${row}`}`);
    this.name = "Refusal";
  }
}
