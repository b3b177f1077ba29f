/**
 * bindTorch(spec, groups): validate a torch-scheduler spec against the optimizer's
 * param groups and return a replayable schedule (see core/api.ts). Values come
 * from a step-for-step simulation of torch 2.13 (this folder).
 */
import type { Bound, Constructed, GroupInit, MetricState, MomentumKey, PyException, Rebase, Rows } from "../core/api";
import { RESUMED_KEYS, Refusal, SpecError } from "../core/api";
import { contentHash } from "../core/canonical";
import { metricBound } from "../core/metric";
import { rowEndOf } from "./row_end";
import { ReplayPending, checkInterval, checkReplayTarget, replayBudgetSpent } from "../core/budget";
import { CHAINABLE_TYPES, type CanonicalSpec, isLibraryChild, joinPath, validateTorchSpec } from "./validate";
import { TORCH_CLASSES, type TorchClass, perGroup, pyOf } from "./classes";
import { parseSchedule } from "../library/parse";
import {
  CosineAnnealingWarmRestarts,
  CyclicLR,
  type SimGroup,
  LambdaLR,
  OneCycleLR,
  type PlateauConfig,
  type PlateauState,
  PyError,
  StepFailure,
  type SimOptimizer,
  type DirectRows,
  type TorchScheduler,
  hasDirectRows,
  makeOptimizer,
  plateauInitial,
  plateauStep,
  readMomentum,
} from ".";


/** How many live simulations a Bound keeps to continue sequential windows. */
const SIM_POOL_SIZE = 8;

/** A torch class spec (or ReduceLROnPlateau) bound to its param groups. */
export function bindTorch(spec: unknown, groups: GroupInit[], lastEpoch = -1): Bound {
  checkGroups(groups);
  if (!Number.isSafeInteger(lastEpoch) || lastEpoch < -1) throw new SpecError("last_epoch", `must be an integer >= -1, got ${lastEpoch}`);
  const canonical = validateTorchSpec(spec, groups.length);
  if (canonical.type === "ReduceLROnPlateau") return bindPlateau(canonical, groups);
  return new TorchBound(canonical, groups, lastEpoch);
}


function checkGroups(groups: unknown): asserts groups is GroupInit[] {
  if (!Array.isArray(groups) || groups.length === 0) {
    throw new SpecError("groups", "must be a non-empty list of param groups");
  }
  groups.forEach((g: unknown, i) => {
    const p = joinPath("groups", i);
    if (g === null || typeof g !== "object") throw new SpecError(p, "must be an object with lr");
    const { lr, momentum, betas, initial_lr, lr_dtype } = g as Record<string, unknown>;
    if (typeof lr !== "number" || !Number.isFinite(lr)) throw new SpecError(`${p}.lr`, `must be a number, got ${String(lr)}`);
    if (initial_lr !== undefined && initial_lr !== null && (typeof initial_lr !== "number" || !Number.isFinite(initial_lr))) {
      throw new SpecError(`${p}.initial_lr`, `must be a number or null, got ${String(initial_lr)}`);
    }
    if (lr_dtype !== undefined && lr_dtype !== null && lr_dtype !== "float32" && lr_dtype !== "float64") {
      throw new SpecError(`${p}.lr_dtype`, `must be "float32", "float64" or null, got ${String(lr_dtype)}`);
    }
    if (momentum !== undefined && momentum !== null && (typeof momentum !== "number" || !Number.isFinite(momentum))) {
      throw new SpecError(`${p}.momentum`, `must be a number or null, got ${String(momentum)}`);
    }
    if (
      betas !== undefined &&
      betas !== null &&
      !(Array.isArray(betas) && betas.length === 2 && betas.every((b) => typeof b === "number" && Number.isFinite(b)))
    ) {
      throw new SpecError(`${p}.betas`, "must be a pair of numbers or null");
    }
    for (const key of RESUMED_KEYS) {
      const v = (g as Record<string, unknown>)[key];
      if (v !== undefined && v !== null && (typeof v !== "number" || !Number.isFinite(v))) {
        throw new SpecError(`${p}.${key}`, `must be a number or null, got ${String(v)}`);
      }
    }
  });
}

/**
 * Constructs the scheduler tree on `opt`, children first (each with
 * last_epoch=-1), as a user's code would; `lastEpoch` is the top one's.
 */
function build(spec: CanonicalSpec, opt: SimOptimizer, path: string, lastEpoch = -1): TorchScheduler {
  const children =
    spec.type === "SequentialLR" || spec.type === "ChainedScheduler"
      ? (spec.schedulers as CanonicalSpec[]).map((c, i) => build(c, opt, joinPath(joinPath(path, "schedulers"), i)))
      : [];
  try {
    opt.constructLastEpoch = lastEpoch;
    return construct(spec, opt, path, children);
  } catch (err) {
    if (err instanceof PyError) throw new SpecError(path, `torch raises ${err.message} when constructing ${spec.type}`, pyOf(err));
    throw err;
  } finally {
    opt.constructLastEpoch = undefined;
  }
}

function construct(s: CanonicalSpec, opt: SimOptimizer, path: string, children: TorchScheduler[]): TorchScheduler {
  if (isLibraryChild(s)) return new LambdaLR(opt, path, Array(opt.groups.length).fill(parseSchedule(path, s).schedule.lr(1)));
  const cls: TorchClass = TORCH_CLASSES[s.type];
  if (cls.build === undefined) throw new SpecError(path, `${s.type} cannot be nested here`);
  return cls.build(s, opt, path, children);
}

/** Visits every spec node of a tree. */
function someNode(spec: CanonicalSpec, pred: (s: CanonicalSpec) => boolean): boolean {
  if (pred(spec)) return true;
  const kids = spec.schedulers;
  return Array.isArray(kids) && (kids as CanonicalSpec[]).some((k) => someNode(k, pred));
}

const writesMomentum = (spec: CanonicalSpec) =>
  someNode(spec, (s) => (s.type === "CyclicLR" || s.type === "OneCycleLR") && s.cycle_momentum === true);

/** One simulated optimizer+scheduler, `row` = step() calls so far. */
interface Sim {
  row: number;
  opt: SimOptimizer;
  top: TorchScheduler;
  /** Rebase applied by this simulation ("" = none). */
  originKey: string;
}

const originKeyOf = (origin?: Rebase): string =>
  origin ? `${origin.step}|${origin.lr.join(",")}|${origin.attrs ? JSON.stringify(origin.attrs) : ""}` : "";

/** Keys a constructor may write into a param group, in the order `opened` lists them. */
const GROUP_KEYS = ["lr", "initial_lr", "max_lr", "min_lr", "base_momentum", "max_momentum", "momentum", "betas"] as const;

function constructedOf(sim: Sim): Constructed {
  const groups = sim.opt.groups.map((g: SimGroup) => {
    const out: Record<string, number | number[]> = {};
    for (const k of GROUP_KEYS) {
      const v = g[k];
      if (v !== undefined) out[k] = Array.isArray(v) ? [...v] : v;
    }
    return out;
  });
  const attrs: Record<string, unknown> = {};
  const top = sim.top;
  if (top instanceof OneCycleLR) {
    attrs.total_steps = top.o.totalSteps;
    if (top.o.cycleMomentum) attrs.use_beta1 = top.useBeta1;
  }
  if (top instanceof CyclicLR && top.o.cycleMomentum) attrs.use_beta1 = top.useBeta1;
  if (top instanceof CosineAnnealingWarmRestarts) {
    attrs.T_cur = top.tCur;
    attrs.T_i = top.tI;
  }
  return { firstRow: sim.row, groups, attrs };
}

/** What torch raises when a step fails in the simulation, or null for a bug. */
function pyOfStep(err: unknown): PyException | null {
  if (err instanceof PyError) return pyOf(err);
  if (err instanceof SpecError && err.py) return err.py;
  if (err instanceof Refusal) return err.py;
  return null;
}

class TorchBound implements Bound {
  readonly specHash: string;
  readonly constructed: Constructed;
  /** The row construction leaves (last_epoch + 1). */
  readonly firstRow: number;
  /** CosineAnnealingWarmRestarts at the top: rows carry T_cur and T_i. */
  private readonly warmRestarts: boolean;
  /** A composite at the top: rows carry each child's last_epoch and last lrs. */
  private readonly childCount: number;
  readonly kind = "deterministic" as const;
  readonly momentumKey: MomentumKey;
  readonly groups: number;
  readonly chainable: boolean;
  readonly originAttrs?: readonly string[];
  readonly rowEnd: number | null;
  /** Live simulations, most recently used last: sequential windows continue one. */
  private pool: Sim[] = [];
  /**
   * A lone scheduler whose rows depend on the step count only (OneCycleLR,
   * CyclicLR, LambdaLR): made on the first rows() call, then rows are
   * computed directly instead of replayed.
   */
  private direct: { top: DirectRows; checkedTo: number } | null | undefined;

  constructor(
    readonly canonical: CanonicalSpec,
    private readonly groupInits: GroupInit[],
    private readonly lastEpoch: number,
  ) {
    this.specHash = contentHash(canonical);
    this.groups = groupInits.length;
    this.chainable = someNode(canonical, (s) => CHAINABLE_TYPES.has(s.type));
    this.firstRow = lastEpoch + 1;
    this.warmRestarts = canonical.type === "CosineAnnealingWarmRestarts";
    if (this.warmRestarts) this.originAttrs = ["T_cur", "T_i"];
    this.childCount = Array.isArray(canonical.schedulers) ? canonical.schedulers.length : 0;
    // Constructing one surfaces constructor errors now; it is not kept, so a
    // bound spec that is never read costs no simulation (100k cached specs).
    const first = this.newSim("");
    this.constructed = constructedOf(first);
    this.momentumKey = writesMomentum(canonical) ? (first.opt.hasBetas ? "betas" : "momentum") : null;
    this.rowEnd = rowEndOf(first.top, this.firstRow);
    const starts = torchCycleStarts(canonical);
    if (starts) this.cycles = starts;
  }

  cycles?: (start: number, count: number) => number[];

  private newSim(originKey: string): Sim {
    const opt = makeOptimizer(this.groupInits);
    const top = build(this.canonical, opt, "", this.lastEpoch);
    return { row: this.firstRow, opt, top, originKey };
  }

  /**
   * Per-row attributes torch updates each step: CosineAnnealingWarmRestarts'
   * T_cur/T_i; a composite's children's last_epoch and get_last_lr().
   */
  private newAttrs(count: number): Record<string, Float64Array> | undefined {
    if (this.warmRestarts) return { T_cur: new Float64Array(count), T_i: new Float64Array(count) };
    if (this.childCount === 0) return undefined;
    const attrs: Record<string, Float64Array> = {};
    for (let c = 0; c < this.childCount; c++) {
      attrs[`schedulers[${c}].last_epoch`] = new Float64Array(count);
      attrs[`schedulers[${c}].last_lr`] = new Float64Array(count * this.groups);
    }
    return attrs;
  }

  /** The pooled simulation furthest along but not past `start`, or a new one. */
  private takeSim(start: number, originKey: string): Sim {
    let best = -1;
    this.pool.forEach((s, i) => {
      if (s.originKey === originKey && s.row <= start && (best < 0 || s.row > this.pool[best].row)) best = i;
    });
    if (best >= 0) return this.pool.splice(best, 1)[0];
    return this.newSim(originKey);
  }

  private putBack(sim: Sim): void {
    this.pool.push(sim);
    if (this.pool.length > SIM_POOL_SIZE) this.pool.shift();
  }

  private stepOnce(sim: Sim, origin?: Rebase): void {
    try {
      sim.top.step();
    } catch (err) {
      const py = pyOfStep(err);
      if (py) throw new Refusal("", py, sim.row + 1);
      throw err;
    }
    sim.row += 1;
    if (origin && sim.row === origin.step) this.applyOrigin(sim, origin);
  }

  private applyOrigin(sim: Sim, origin: Rebase): void {
    sim.opt.groups.forEach((g, i) => {
      g.lr = origin.lr[i];
    });
    for (const [name, value] of Object.entries(origin.attrs ?? {})) sim.top.setAttr(name, value);
  }

  private record(sim: Sim, out: Rows, k: number): void {
    const groups = sim.opt.groups;
    const base = k * groups.length;
    for (let i = 0; i < groups.length; i++) out.lr[base + i] = groups[i].lr;
    if (out.momentum) {
      const useBeta1 = this.momentumKey === "betas";
      for (let i = 0; i < groups.length; i++) out.momentum[base + i] = readMomentum(groups[i], useBeta1);
    }
    if (out.attrs) {
      const attrs = out.attrs;
      if (this.warmRestarts) {
        const top = sim.top as CosineAnnealingWarmRestarts;
        attrs.T_cur[k] = top.tCur;
        attrs.T_i[k] = top.tI;
      }
      sim.top.children?.forEach((child, c) => {
        attrs[`schedulers[${c}].last_epoch`][k] = child.hasLastEpoch ? child.lastEpoch : NaN;
        const lastLr = attrs[`schedulers[${c}].last_lr`];
        for (let i = 0; i < groups.length; i++) lastLr[base + i] = child.lastLr[i];
      });
    }
  }

  rows(start: number, count: number, origin?: Rebase): Rows {
    if (!Number.isInteger(start) || start < 0) throw new RangeError(`start must be an integer >= 0, got ${start}`);
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be an integer >= 0, got ${count}`);
    if (start < this.firstRow) throw new SpecError("start", `must be >= ${this.firstRow}, the row construction leaves (last_epoch + 1)`);
    if (origin) checkOrigin(origin, this.groups, this.firstRow);
    const n = this.groups;
    const out: Rows = {
      lr: new Float64Array(count * n),
      momentum: this.momentumKey ? new Float64Array(count * n) : null,
    };
    out.attrs = this.newAttrs(count);
    if (count === 0) return out;
    try {
      if (!origin) {
        const direct = this.directRows();
        if (direct) {
          this.fillDirect(direct, start, count, out);
          return out;
        }
      }
      checkReplayTarget(start);
      const key = originKeyOf(origin);
      const sim = this.takeSim(start, key);
      if (origin && origin.step === sim.row && sim.row === this.firstRow) this.applyOrigin(sim, origin);
      // A failed step leaves the simulation half-stepped: it is not put back.
      const every = checkInterval(n);
      for (let k = 1; sim.row < start; k++) {
        this.stepOnce(sim, origin);
        if (k % every === 0 && sim.row < start && replayBudgetSpent()) {
          // Kept where it got to: the same request continues from here.
          this.putBack(sim);
          throw new ReplayPending(sim.row, start);
        }
      }
      for (let k = 0; k < count; k++) {
        if (k > 0) this.stepOnce(sim, origin);
        this.record(sim, out, k);
      }
      this.putBack(sim);
      return out;
    } catch (err) {
      if (!(err instanceof Refusal) || err.row === undefined) throw err;
      return stopAt(out, start, err.row, err.py, n);
    }
  }

  private directRows(): { top: DirectRows; checkedTo: number } | null {
    if (this.direct === undefined) {
      const sim = this.newSim("");
      const top = sim.top;
      // float32 lrs round every operation: only the replay does that.
      const direct = hasDirectRows(top) && !sim.opt.groups.some((g) => g.f32);
      // Its construction took row firstRow; rows past it are checked as they are filled.
      this.direct = direct ? { top, checkedTo: this.firstRow + 1 } : null;
      if (!this.direct) this.putBack(sim); // the replay starts from it instead
    }
    return this.direct;
  }

  /**
   * Rows start..start+count-1 without replaying. A replay would raise at the
   * first failing step even before `start` (a lr_lambda that fails at epoch 5
   * fails every later window too): rows not yet checked are computed first.
   */
  private fillDirect(direct: { top: DirectRows; checkedTo: number }, start: number, count: number, out: Rows): void {
    const n = this.groups;
    const chunk = checkInterval(n);
    // A lone OneCycleLR raises at no row before its known end (validation refused its
    // zero-length phases): only rows from the end on need the check, so far starts cost nothing.
    if (this.canonical.type === "OneCycleLR") direct.checkedTo = Math.max(direct.checkedTo, Math.min(start, this.rowEnd ?? start));
    try {
      if (direct.checkedTo < start) {
        checkReplayTarget(start);
        const scratch = { lr: new Float64Array(chunk * n), momentum: out.momentum ? new Float64Array(chunk * n) : null };
        for (let t = direct.checkedTo; t < start; t += chunk) {
          direct.top.fillRows(t, Math.min(chunk, start - t), scratch.lr, scratch.momentum);
          direct.checkedTo = Math.min(start, t + chunk);
          if (direct.checkedTo < start && replayBudgetSpent()) throw new ReplayPending(direct.checkedTo, start);
        }
      }
      direct.top.fillRows(start, count, out.lr, out.momentum);
      direct.checkedTo = Math.max(direct.checkedTo, start + count);
    } catch (err) {
      if (!(err instanceof StepFailure)) throw err;
      const py = pyOfStep(err.error);
      if (py) throw new Refusal("", py, err.row);
      throw err.error;
    }
  }

  epochRows(epochs: number[], lr?: number[]): Rows {
    const sim = this.newSim("");
    if (lr) {
      checkOrigin({ step: sim.row, lr }, this.groups, this.firstRow, "lr");
      this.applyOrigin(sim, { step: sim.row, lr });
    }
    const n = this.groups;
    const out: Rows = {
      lr: new Float64Array(epochs.length * n),
      momentum: this.momentumKey ? new Float64Array(epochs.length * n) : null,
    };
    out.attrs = this.newAttrs(epochs.length);
    epochs.forEach((epoch, k) => {
      if (typeof epoch !== "number" || !Number.isFinite(epoch)) {
        throw new SpecError(joinPath("epochs", k), `must be a number, got ${String(epoch)}`);
      }
      try {
        sim.top.step(epoch);
      } catch (err) {
        const py = pyOfStep(err);
        if (py) throw new Refusal(joinPath("epochs", k), py);
        throw err;
      }
      this.record(sim, out, k);
    });
    return out;
  }
}

/**
 * Where a top-level CyclicLR or CosineAnnealingWarmRestarts starts a new cycle
 * (the step after the lr came back to its low point): what SnapshotSaver
 * needs. Other torch schedules have no cycles.
 */
function torchCycleStarts(spec: CanonicalSpec): ((start: number, count: number) => number[]) | undefined {
  if (spec.type === "CyclicLR") {
    const up = spec.step_size_up as number;
    const total = up + ((spec.step_size_down as number | null) ?? up);
    // torch: cycle = floor(1 + t / total_size); a cycle starts where that changes.
    const cycleOf = (t: number) => Math.floor(1 + t / total);
    return (start, count) => {
      const out: number[] = [];
      for (let t = start; t < start + count; t++) if (t === 0 || cycleOf(t) !== cycleOf(t - 1)) out.push(t);
      return out;
    };
  }
  if (spec.type === "CosineAnnealingWarmRestarts") {
    const t0 = spec.T_0 as number;
    const mult = spec.T_mult as number;
    return (start, count) => {
      const out: number[] = [];
      // Restarts at 0, T_0, T_0 + T_0·T_mult, ... (plain step(), no epochs).
      // T_mult = 1: every T_0, so start at the first multiple at or after `start`.
      // T_mult >= 2: cycles double at least, so the walk is logarithmic in `start`.
      let at = mult === 1 ? Math.ceil(start / t0) * t0 : 0;
      for (let len = t0; at < start + count; at += len, len *= mult) if (at >= start) out.push(at);
      return out;
    };
  }
  return undefined;
}

function checkOrigin(origin: Rebase, groups: number, firstRow = 0, lrPath = "origin.lr"): void {
  if (!Number.isInteger(origin.step) || origin.step < firstRow) {
    throw new SpecError("origin.step", `must be an integer >= ${firstRow}, got ${String(origin.step)}`);
  }
  if (!Array.isArray(origin.lr) || origin.lr.length !== groups || !origin.lr.every((v) => typeof v === "number")) {
    throw new SpecError(lrPath, `must be a list of ${groups} numbers`);
  }
}

/** Rows [start, row) of `out`, and where torch raises. */
function stopAt(out: Rows, start: number, row: number, py: PyException, n: number): Rows {
  const count = Math.max(0, row - start);
  const cut = (a: Float64Array, per: number) => a.slice(0, count * per);
  const stopped: Rows = { lr: cut(out.lr, n), momentum: out.momentum ? cut(out.momentum, n) : null, stop: { row, py } };
  if (out.attrs) {
    const rows = out.lr.length / n;
    stopped.attrs = Object.fromEntries(Object.entries(out.attrs).map(([k, v]) => [k, cut(v, rows ? v.length / rows : 1)]));
  }
  return stopped;
}

function bindPlateau(canonical: CanonicalSpec, groups: GroupInit[]): Bound {
  const n = groups.length;
  const cfg: PlateauConfig = {
    mode: canonical.mode as "min" | "max",
    factor: canonical.factor as number,
    patience: canonical.patience as number,
    threshold: canonical.threshold as number,
    thresholdMode: canonical.threshold_mode as "rel" | "abs",
    cooldown: canonical.cooldown as number,
    minLrs: perGroup(canonical.min_lr, n),
    minLrScalar: !Array.isArray(canonical.min_lr),
    eps: canonical.eps as number,
  };
  return metricBound<PlateauState>({
    canonical,
    groups: n,
    initial: () => plateauInitial(groups.map((g) => g.lr)),
    read: checkPlateauState,
    step(state, metric) {
      try {
        return plateauStep(cfg, state, metric);
      } catch (err) {
        if (err instanceof PyError) throw new Refusal("state.lr", pyOf(err));
        throw err;
      }
    },
    lrs: (s) => [...s.lr],
  });
}

/** The state comes back from a client: check its shape before trusting it. */
function checkPlateauState(state: MetricState): PlateauState {
  const s = state as Partial<PlateauState> | null;
  const bad = (field: string, what: string): never => {
    throw new SpecError(`state.${field}`, `must be ${what}`);
  };
  if (!s || typeof s !== "object") bad("", "an object");
  const st = s as Partial<PlateauState>;
  // Groups added since construction (add_param_group) come in as more lrs.
  if (!Array.isArray(st.lr) || st.lr.length === 0 || !st.lr.every((v) => typeof v === "number")) bad("lr", "a non-empty list of numbers");
  if (st.best !== null && typeof st.best !== "number") bad("best", "a number or null");
  for (const k of ["num_bad_epochs", "cooldown_counter", "last_epoch"] as const) {
    if (!Number.isInteger(st[k])) bad(k, "an integer");
  }
  return st as PlateauState;
}
