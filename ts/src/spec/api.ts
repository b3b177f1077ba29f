/**
 * The contract between the schedule core and everything that serves it
 * (server, CLI). Specs are plain JSON; `bind` validates one against the
 * optimizer's param groups and returns a pure, replayable schedule.
 */

/** One optimizer param group as the scheduler sees it at construction. */
export interface GroupInit {
  /** group["initial_lr"] (== group["lr"] on a fresh run). */
  lr: number;
  /** group["momentum"], when the optimizer has one (SGD, RMSprop). */
  momentum?: number | null;
  /** group["betas"], when the optimizer has them (Adam family). */
  betas?: [number, number] | null;
}

/** Which param_group key a schedule writes momentum into. */
export type MomentumKey = "momentum" | "betas" | null;

/** Row-major values: rows × groups, row k = state after k `step()` calls. */
export interface Rows {
  lr: Float64Array;
  /** momentum or beta1 per group; null when the schedule writes none. */
  momentum: Float64Array | null;
}

/**
 * A chainable schedule continues from the group lrs as they are. `Rebase`
 * says: at row `step`, the lrs were `lr` (changed outside the scheduler);
 * rows after it continue from there exactly as torch's recursive form does.
 */
export interface Rebase {
  step: number;
  lr: number[];
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
  /**
   * The first row the schedule refuses (torch's OneCycleLR past total_steps,
   * also inside composites); null when every row exists. Clients never ask
   * for rows at or past it.
   */
  readonly rowEnd: number | null;
  /** Deterministic only: rows [start, start+count). */
  rows(start: number, count: number, origin?: Rebase): Rows;
  /**
   * torch's deprecated `step(epoch)`: the values after calling step(epoch)
   * with the given epoch sequence (closed form where torch has one; the
   * fractional-epoch rule for CosineAnnealingWarmRestarts).
   */
  epochRows?(epochs: number[]): Rows;
  /**
   * Cyclic schedules only: the steps in [start, start+count) where a cycle
   * starts (step 0 starts the first), so clients can snapshot at cycle ends.
   */
  cycles?(start: number, count: number): number[];
  /** Metric-driven only. Row 0 is `initialState()`'s lrs. */
  initialState?(): MetricResult;
  metricStep?(state: MetricState, metric: number): MetricResult;
}

/** A spec that breaks a rule. `path` is like `schedulers[1].pct_start`. */
export class SpecError extends Error {
  constructor(
    readonly path: string,
    readonly rule: string,
  ) {
    super(path ? `${path}: ${rule}` : rule);
    this.name = "SpecError";
  }
}
