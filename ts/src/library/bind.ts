/**
 * Library (non-torch) schedule specs: the optax-style schedules of this
 * folder behind a JSON grammar (see the table in README). `ts/src/bind.ts`
 * sends every `type` for which `isGenericType` is true here.
 *
 * Values: a spec describes a MULTIPLIER of each group's base lr (its
 * initial_lr), like HF's LambdaLR schedules, unless the top level says
 * `"scale": "absolute"` with `"lr"`: then `lr` (one number, or one per
 * group) replaces the groups' base lrs, so the values no longer depend on the
 * optimizer (the spec's numbers stay multipliers, now of `lr`).
 * Row k = values after k `step()` calls (row 0 = right after construction)
 * = the schedule at step k.
 *
 * Top-level only fields: `scale`, `lr`, `momentum`.
 * `momentum`: `{"type":"inverse","max":0.95,"min":0.85,"lr_range"?:[lo,hi]}`
 * (lr_range as multipliers of the base lr; default: the schedule's own
 * range), or any schedule spec, whose values are the momentum itself.
 * Written into `betas[0]` when the groups have betas, else `momentum`.
 */
import { type Bound, type GroupInit, type MetricState, type MomentumKey, type Rows, SpecError } from "../core/api";
import { contentHash } from "../core/canonical";
import { type Schedule } from "./types";
import { inverseMomentumFor } from "./momentum";
import * as RT from "./lr_finder";
import * as GR from "./greedy";
import { Fields, checkNum, describe } from "../core/fields";
import { SPEC_LIMITS, overLimit } from "../core/limits";
import { noteField } from "../core/schema";
import { metricBound } from "../core/metric";
import { type Parsed, SCHEDULE_TYPES, parseSchedule } from "./parse";

const METRIC_TYPES = ["range_test", "greedy"];

/** The `type`s this module binds. */
export function isGenericType(type: string): boolean {
  return SCHEDULE_TYPES.includes(type) || METRIC_TYPES.includes(type);
}

/** A bound generic schedule: `Bound` plus cycle boundaries for cyclic schedules. */
export interface GenericBound extends Bound {
  /** Steps in [start, start+count) at which a new cycle begins (0 included); absent if not cyclic. */
  cycles?(start: number, count: number): number[];
}

export function bindGeneric(spec: unknown, groups: GroupInit[]): GenericBound {
  if (!Array.isArray(groups) || groups.length === 0) throw new SpecError("groups", "must list at least one param group");
  const f = Fields.of("", spec);
  if (f.raw("type") === "range_test") return bindRangeTest(f, groups);
  if (f.raw("type") === "greedy") return bindGreedy(f, groups);
  return bindDeterministic(f, groups);
}

/** Split off the top-level-only fields, parse the rest as a schedule. */
function bindDeterministic(f: Fields, groups: GroupInit[]): GenericBound {
  const scale = f.oneOf("scale", ["multiplier", "absolute"] as const, "multiplier");
  const bases = readBases(f, scale, groups);
  const rest = { ...f.obj };
  delete rest.scale;
  delete rest.lr;
  delete rest.momentum;
  const parsed = parseSchedule("", rest);
  const canonical: Record<string, unknown> = { ...parsed.canonical, scale };
  if (scale === "absolute") canonical.lr = f.canonical.lr;
  const mom = readMomentum(f, parsed, groups, bases);
  if (mom.canonical !== undefined) canonical.momentum = mom.canonical;
  const lrFns = bases.map((b) => parsed.schedule.lr(b));
  const g = groups.length;
  const bound: GenericBound = {
    canonical,
    specHash: contentHash(canonical),
    kind: "deterministic",
    momentumKey: mom.key,
    groups: g,
    chainable: false,
    rowEnd: null, // generic schedules are defined at every step
    rows(start: number, count: number): Rows {
      checkWindow(start, count);
      return {
        lr: table(lrFns, start, count),
        momentum: mom.fns ? table(mom.fns, start, count) : null,
      };
    },
  };
  const starts = parsed.schedule.cycleStarts;
  if (starts) bound.cycles = (start, count) => (checkWindow(start, count), starts(start, start + count));
  return bound;
}

function checkWindow(start: number, count: number): void {
  checkNum("start", start, { integer: true, min: 0 });
  checkNum("count", count, { integer: true, min: 0 });
}

/** rows × groups, row-major. */
function table(fns: Schedule[], start: number, count: number): Float64Array {
  const g = fns.length;
  const out = new Float64Array(count * g);
  for (let k = 0; k < count; k++) for (let j = 0; j < g; j++) out[k * g + j] = fns[j](start + k);
  return out;
}

/** Base lr per group: the groups' initial lrs, or the spec's `lr` when absolute. */
function readBases(f: Fields, scale: "multiplier" | "absolute", groups: GroupInit[]): number[] {
  const raw = f.raw("lr");
  noteField(f.path, "lr", { kind: "any", required: false, default: null, rule: 'with "scale": "absolute": a number or one per param group' });
  if (scale === "multiplier") {
    if (raw !== undefined) throw new SpecError("lr", 'is only allowed with "scale": "absolute"');
    return groups.map((g, i) => checkNum(`groups[${i}].lr`, g.lr, {}));
  }
  if (typeof raw === "number") return groups.map(() => f.num("lr", {}));
  if (Array.isArray(raw)) {
    const lrs = f.nums("lr", {});
    if (lrs.length !== groups.length) throw new SpecError("lr", `must have one value per param group (${groups.length}), got ${lrs.length}`);
    return lrs;
  }
  throw new SpecError("lr", `is required with "scale": "absolute" (a number or one per group), got ${describe(raw)}`);
}

interface MomentumPlan {
  key: MomentumKey;
  fns: Schedule[] | null;
  canonical?: unknown;
}

/** Which group key momentum goes to: betas[0] for Adam-family, else momentum. */
function momentumKeyOf(groups: GroupInit[]): MomentumKey {
  if (groups.every((g) => Array.isArray(g.betas))) return "betas";
  if (groups.every((g) => typeof g.momentum === "number")) return "momentum";
  return null;
}

function readMomentum(f: Fields, parsed: Parsed, groups: GroupInit[], bases: number[]): MomentumPlan {
  const raw = f.raw("momentum");
  noteField(f.path, "momentum", { kind: "spec", required: false, default: null, rule: 'a schedule spec or {"type": "inverse", ...}; goes to betas[0] or momentum' });
  const key = momentumKeyOf(groups);
  if (raw === undefined || raw === null) {
    // one_cycle's default moms apply only where the optimizer has momentum (fastai does the same)
    if (parsed.momentum && key) return { key, fns: groups.map(() => parsed.momentum!) };
    return { key: null, fns: null };
  }
  if (parsed.momentum !== undefined) throw new SpecError("momentum", "one_cycle sets momentum through its moms field");
  if (!key) throw new SpecError("momentum", "the optimizer's param groups have neither momentum nor betas");
  const mf = Fields.of("momentum", raw);
  if (mf.raw("type") === "inverse") {
    mf.put("type", "inverse");
    const mMax = mf.num("max", { min: 0, max: 1 }, 0.95);
    const mMin = mf.num("min", { min: 0, max: 1 }, 0.85);
    let range: [number, number] | null = null;
    noteField("momentum", "lr_range", { required: false, default: null, rule: "[lo, hi] with lo < hi; required when the schedule's lr range is not known in advance" });
    if (mf.has("lr_range")) {
      const r = mf.nums("lr_range", {});
      if (r.length !== 2 || !(r[0] < r[1])) throw new SpecError("momentum.lr_range", `must be [lo, hi] with lo < hi, got ${describe(r)}`);
      range = [r[0], r[1]];
    } else if (!parsed.schedule.range) {
      throw new SpecError("momentum.lr_range", "is required: this schedule's lr range is not known in advance");
    }
    const canonical = mf.done();
    const fns = bases.map((b) =>
      inverseMomentumFor(parsed.schedule, b, mMax, mMin, range ? [b * range[0], b * range[1]] : undefined),
    );
    return { key, fns, canonical };
  }
  const p = parseSchedule("momentum", raw);
  return { key, fns: groups.map(() => p.schedule.lr(1)), canonical: p.canonical };
}

/**
 * `{"type":"range_test", start_lr, end_lr, num_steps, mode, beta,
 * diverge_factor, skip_start, skip_end}`: a metric-driven schedule. The lr
 * is the same absolute value for every group (fastai lr_find). The state is
 * a RangeState (lr_finder.ts); feed the batch loss.
 */
function bindRangeTest(f: Fields, groups: GroupInit[]): GenericBound {
  f.put("type", "range_test");
  const start = f.num("start_lr", { gt: 0 }, 1e-7);
  const o: RT.RangeTestOptions = {
    start_lr: start,
    end_lr: f.num("end_lr", { gt: start }, 10),
    num_steps: f.num("num_steps", { integer: true, min: 1 }, 100),
    mode: f.oneOf<RT.RangeMode>("mode", ["exp", "linear"], "exp"),
    beta: f.num("beta", { min: 0, lt: 1 }, 0.98),
    diverge_factor: f.num("diverge_factor", { gt: 1 }, 4),
    skip_start: 0,
    skip_end: 0,
  };
  if (o.num_steps > SPEC_LIMITS.range_test_steps) overLimit(f.at("num_steps"), "range_test_steps", `num_steps ${o.num_steps}`);
  o.skip_start = f.num("skip_start", { integer: true, min: 0 }, Math.floor(o.num_steps / 10));
  noteField(f.path, "skip_start", { default: null, derived_default: true, rule: "an integer >= 0 (default: num_steps // 10)" });
  o.skip_end = f.num("skip_end", { integer: true, min: 0 }, 5);
  const canonical = f.done();
  const g = groups.length;
  const lrAt = (i: number) => RT.rangeTestLr(o, Math.min(i, o.num_steps - 1));
  return metricBound<RT.RangeState>({
    canonical,
    groups: g,
    initial: RT.initialRangeState,
    read: (state) => readRangeState(state, o.num_steps),
    // NaN/inf losses end the test as "diverged"
    step: (state, loss) => RT.rangeTestStep(o, state, loss),
    // once done, hold the lr of the last batch run
    lrs: (s) => new Array<number>(g).fill(lrAt(s.done ? s.step - 1 : s.step)),
    rows(startRow: number, count: number): Rows {
      checkWindow(startRow, count);
      return { lr: table(new Array(g).fill(lrAt), startRow, count), momentum: null };
    },
  });
}

/**
 * Validate a client-carried RangeState and rebuild it from its known fields
 * (nothing the client added is echoed back). A test never has more than
 * num_steps losses, so the state's size is bounded by the spec's.
 */
function readRangeState(raw: MetricState, numSteps: number): RT.RangeState {
  const f = Fields.of("state", raw);
  const step = f.num("step", { integer: true, min: 0, max: numSteps });
  const rawLosses = f.raw("losses");
  if (!Array.isArray(rawLosses) || !rawLosses.every((x) => typeof x === "number")) {
    throw new SpecError("state.losses", `must be an array of numbers, got ${describe(rawLosses)}`);
  }
  const losses = rawLosses as number[];
  if (losses.length !== step) throw new SpecError("state.losses", `must hold one smoothed loss per step (${step}), got ${losses.length}`);
  const reason = f.raw("reason") ?? null;
  if (reason !== null && reason !== "finished" && reason !== "diverged") {
    throw new SpecError("state.reason", `must be "finished", "diverged" or null, got ${describe(reason)}`);
  }
  return {
    step,
    avg: f.num("avg", {}),
    best: f.numOrNull("best", {}, null),
    losses: [...losses],
    done: f.bool("done", false),
    reason,
    suggestions: readSuggestions(f.raw("suggestions")),
  };
}

function readSuggestions(raw: unknown): RT.Suggestions | null {
  if (raw === undefined || raw === null) return null;
  const f = Fields.of("state.suggestions", raw);
  const one = (k: keyof RT.Suggestions) => f.numOrNull(k, {}, null);
  return { valley: one("valley"), slide: one("slide"), minimum: one("minimum"), steep: one("steep") };
}

/**
 * `{"type":"greedy", mode, factor, patience, threshold, threshold_mode,
 * cooldown, warmup, min_lr, max_lr, eps, smooth, window_size, reset_start}`:
 * transformers' GreedyLR (library/greedy.ts), metric-driven, on the groups'
 * lrs themselves. Its state's `lr` is what a step starts from: clients write
 * the groups' current lrs there, as for ReduceLROnPlateau.
 */
function bindGreedy(f: Fields, groups: GroupInit[]): GenericBound {
  f.put("type", "greedy");
  const g = groups.length;
  const perGroup = (key: string, dflt: number): number[] => {
    if (Array.isArray(f.raw(key))) {
      const v = f.nums(key, { min: 0 });
      if (v.length !== g) throw new SpecError(f.at(key), `must have one value per param group (${g}), got ${v.length}`);
      return v;
    }
    return new Array<number>(g).fill(f.num(key, { min: 0 }, dflt));
  };
  const o: GR.GreedyOptions = {
    mode: f.oneOf("mode", ["min", "max"] as const, "min"),
    factor: f.num("factor", { gt: 0, lt: 1 }, 0.95),
    patience: f.num("patience", { integer: true, min: 0 }, 10),
    threshold: f.num("threshold", {}, 1e-6),
    threshold_mode: f.oneOf("threshold_mode", ["rel", "abs"] as const, "abs"),
    cooldown: f.num("cooldown", { integer: true, min: 0 }, 0),
    warmup: f.num("warmup", { integer: true, min: 0 }, 0),
    min_lrs: perGroup("min_lr", 1e-3),
    max_lrs: perGroup("max_lr", 1.0),
    eps: f.num("eps", { min: 0 }, 1e-8),
    smooth: f.bool("smooth", false),
    window_size: f.num("window_size", { integer: true, min: 1 }, 50),
    reset_start: f.num("reset_start", { integer: true, min: 1 }, 500),
  };
  if (o.window_size > SPEC_LIMITS.greedy_window) overLimit(f.at("window_size"), "greedy_window", `window_size ${o.window_size}`);
  const canonical = f.done();
  return metricBound<GR.GreedyState>({
    canonical,
    groups: g,
    initial: () => GR.initialGreedyState(o, groups.map((x) => x.lr)),
    read: (state) => readGreedyState(state, o, g),
    step: (state, metric) => GR.greedyStep(o, state, metric),
    lrs: (s) => [...s.lr],
  });
}

/** A client-carried GreedyState, checked and rebuilt from its known fields (nothing else is sent back). */
function readGreedyState(raw: MetricState, o: GR.GreedyOptions, groups: number): GR.GreedyState {
  const f = Fields.of("state", raw);
  const list = (key: string, n: number): number[] => {
    const v = f.nums(key, {});
    if (v.length !== n) throw new SpecError(f.at(key), `must hold ${n} numbers, got ${v.length}`);
    return v;
  };
  const count = (key: string) => f.num(key, { integer: true, min: 0 });
  const values = f.nums("values", {});
  if (values.length > (o.smooth ? o.window_size : 0)) {
    throw new SpecError("state.values", `must hold at most ${o.smooth ? o.window_size : 0} values, got ${values.length}`);
  }
  const best = f.raw("best");
  if (typeof best !== "number") throw new SpecError("state.best", `must be a number, got ${describe(best)}`);
  return {
    lr: list("lr", groups),
    init_lr: list("init_lr", groups),
    best,
    num_bad_epochs: count("num_bad_epochs"),
    num_good_epochs: count("num_good_epochs"),
    cooldown_counter: count("cooldown_counter"),
    warmup_counter: count("warmup_counter"),
    reset_start: f.num("reset_start", { integer: true }),
    last_epoch: count("last_epoch"),
    values,
    sum: f.num("sum", {}),
  };
}
