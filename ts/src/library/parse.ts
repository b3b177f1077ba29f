/**
 * Library schedule specs → group schedules (this folder). One parser
 * per `type`; each validates its fields, fills defaults (the canonical
 * form) and builds the schedule. Values are multipliers of each group's
 * base lr (see bind.ts for `scale`).
 */
import { SpecError } from "../core/api";
import { type Anneal, type GroupSchedule, scaled } from "./types";
import * as P from "./profiles";
import { PROFILE_SHAPES, type ProfileShape } from "./profiles";
import { sampleEvery, sampleTimes } from "./sampling";
import { combineByFraction, cycles, join, multiply, warmup, type WarmupMode, type WarmupShape } from "./combinators";
import { type NoiseOptions, type NoiseType, withNoise } from "./noise";
import * as R from "./recipes";
import { Fields, describe, join as joinPath } from "../core/fields";
import { SPEC_LIMITS, checkListLimit, overLimit } from "../core/limits";
import { noteField } from "../core/schema";

export interface Parsed {
  schedule: GroupSchedule;
  canonical: Record<string, unknown>;
  /** one_cycle's own momentum (fastai moms), absolute values */
  momentum?: ((t: number) => number) | null;
}

/** start/end of a profile (multipliers); exponential needs both > 0. */
function readEnds(f: Fields, shape: ProfileShape): [number, number] {
  if ("positiveEnds" in P.PROFILES[shape]) return [f.num("start", { gt: 0 }, 1), f.num("end", { gt: 0 })];
  return [f.num("start", {}, 1), f.num("end", {}, 0)];
}

export type Parser = (f: Fields) => Parsed;

function profileParser(shape: ProfileShape): Parser {
  return (f) => {
    if (shape === "constant") {
      const value = f.num("value", {}, 1);
      return { schedule: scaled(P.constant(value), [value, value]), canonical: f.done() };
    }
    const [start, end] = readEnds(f, shape);
    const anneal = P.PROFILES[shape].anneal(f);
    const total = f.num("total_steps", { integer: true, min: 1 });
    return { schedule: scaled(P.overSteps(anneal, start, end, total), [Math.min(start, end), Math.max(start, end)]), canonical: f.done() };
  };
}

function child(f: Fields, key: string): Parsed {
  noteField(f.path, key, { kind: "spec", required: true, rule: "a schedule spec" });
  const p = parseSchedule(f.at(key), f.raw(key));
  f.put(key, p.canonical);
  return p;
}

function children(f: Fields, key: string, minCount: number): Parsed[] {
  noteField(f.path, key, { kind: "specs", required: true, rule: `an array of at least ${minCount} schedule spec(s)` });
  const v = f.raw(key);
  if (!Array.isArray(v) || v.length < minCount) {
    throw new SpecError(f.at(key), `must be an array of at least ${minCount} schedule spec(s), got ${describe(v)}`);
  }
  checkListLimit(f.at(key), v.length, "pieces");
  const parsed = v.map((s, i) => parseSchedule(joinPath(f.at(key), i), s));
  f.put(key, parsed.map((p) => p.canonical));
  return parsed;
}

function increasing(f: Fields, key: string, values: number[], strict: boolean): void {
  for (let i = 1; i < values.length; i++) {
    if (strict ? values[i] <= values[i - 1] : values[i] < values[i - 1]) {
      throw new SpecError(joinPath(f.at(key), i), `must be ${strict ? "greater than" : "at least"} the previous value (${values[i - 1]}), got ${values[i]}`);
    }
  }
}

/** fastai's default momentum cycle for one_cycle. */
const ONE_CYCLE_MOMS: readonly [number, number, number] = [0.95, 0.85, 0.95];

const WARMUP_SHAPES: readonly WarmupShape[] = ["linear", "exponential", "cosine"];
const WARMUP_MODES: readonly WarmupMode[] = ["prepend", "overlay"];

function readNoise(f: Fields, names: { range: string; pct: string; std: string; type: string; seed: string }): NoiseOptions | null {
  const rawRange = f.raw(names.range);
  noteField(f.path, names.range, { kind: "any", required: false, default: null, rule: "a start step or [start, end)" });
  if (rawRange === undefined || rawRange === null) {
    f.put(names.range, null);
    for (const k of [names.pct, names.std, names.type, names.seed]) {
      if (f.has(k)) throw new SpecError(f.at(k), `needs ${names.range}`);
    }
    return null;
  }
  let range: number | [number, number];
  if (Array.isArray(rawRange)) {
    const r = f.nums(names.range, { integer: true, min: 0 });
    if (r.length !== 2 || !(r[0] < r[1])) throw new SpecError(f.at(names.range), `must be a step or [start, end) with start < end, got [${r.join(", ")}]`);
    range = [r[0], r[1]];
  } else {
    range = f.num(names.range, { integer: true, min: 0 });
  }
  return {
    range,
    pct: f.num(names.pct, { gt: 0 }, 0.67),
    std: f.num(names.std, { gt: 0 }, 1.0),
    type: f.oneOf<NoiseType>(names.type, ["normal", "uniform"], "normal"),
    seed: f.num(names.seed, { integer: true, min: 0, max: 2 ** 52 }, 42),
  };
}

const PARSERS: Record<string, Parser> = {
  ...Object.fromEntries(PROFILE_SHAPES.map((s) => [s, profileParser(s)])),

  step: (f) => {
    const start = f.num("start", {}, 1);
    const every = f.num("every", { integer: true, min: 1 });
    const gamma = f.num("gamma", { gt: 0 }, 0.1);
    return { schedule: scaled(P.stepDecay(start, every, gamma)), canonical: f.done() };
  },

  piecewise: (f) => {
    const boundaries = f.nums("boundaries", { integer: true, min: 0 });
    checkListLimit(f.at("boundaries"), boundaries.length, "milestones");
    increasing(f, "boundaries", boundaries, true);
    const values = f.nums("values", {});
    if (values.length !== boundaries.length + 1) {
      throw new SpecError(f.at("values"), `must have one more entry than boundaries (${boundaries.length + 1}), got ${values.length}`);
    }
    return { schedule: scaled(P.piecewiseConstant(boundaries, values), [Math.min(...values), Math.max(...values)]), canonical: f.done() };
  },

  inverse_sqrt: (f) => {
    const start = f.num("start", {}, 1);
    const timescale = f.num("timescale", { gt: 0 }, 10000);
    return { schedule: scaled(P.inverseSqrt(start, timescale), [0, start]), canonical: f.done() };
  },

  sample: (f) => {
    const inner = child(f, "schedule");
    const hasEvery = f.has("every");
    const hasTimes = f.has("times");
    if (hasEvery === hasTimes) throw new SpecError(f.at("every"), "give exactly one of every (steps) or times (with total_steps)");
    const lr = (base: number) => inner.schedule.lr(base);
    let wrap: (s: (t: number) => number) => (t: number) => number;
    if (hasEvery) {
      const every = f.num("every", { integer: true, min: 1 });
      wrap = (s) => sampleEvery(s, every);
    } else {
      const times = f.num("times", { integer: true, min: 1 });
      const total = f.num("total_steps", { integer: true, min: 1 });
      wrap = (s) => sampleTimes(s, times, total);
    }
    return {
      schedule: { lr: (base) => wrap(lr(base)), range: inner.schedule.range, cycleStarts: inner.schedule.cycleStarts },
      canonical: f.done(),
    };
  },

  warmup: (f) => {
    const steps = f.num("steps", { integer: true, min: 1 });
    const shape = f.oneOf("shape", WARMUP_SHAPES, "linear");
    const from = shape === "exponential" ? f.num("from", { gt: 0 }) : f.num("from", {}, 0);
    const mode = f.oneOf("mode", WARMUP_MODES, "prepend");
    const then = child(f, "then");
    return { schedule: warmup(then.schedule, { steps, shape, from, mode }), canonical: f.done() };
  },

  join: (f) => {
    const pieces = children(f, "schedules", 1);
    const boundaries = f.nums("boundaries", { integer: true, min: 0 });
    if (boundaries.length !== pieces.length - 1) {
      throw new SpecError(f.at("boundaries"), `must have one entry fewer than schedules (${pieces.length - 1}), got ${boundaries.length}`);
    }
    increasing(f, "boundaries", boundaries, false);
    return { schedule: join(pieces.map((p) => p.schedule), boundaries), canonical: f.done() };
  },

  combine: (f) => {
    const total = f.num("total_steps", { integer: true, min: 1 });
    const pcts = f.nums("pcts", { min: 0, max: 1 });
    checkListLimit(f.at("pcts"), pcts.length, "pieces");
    const sum = pcts.reduce((a, b) => a + b, 0);
    if (pcts.length === 0 || Math.abs(sum - 1) > 1e-9) throw new SpecError(f.at("pcts"), `must be fractions summing to 1, got sum ${sum}`);
    const raw = f.raw("phases");
    noteField(f.path, "phases", { kind: "phases", required: true, rule: "one {shape, start, end, ...} per pct" });
    if (!Array.isArray(raw) || raw.length !== pcts.length) {
      throw new SpecError(f.at("phases"), `must be an array with one phase per pct (${pcts.length}), got ${describe(raw)}`);
    }
    const phases = raw.map((ph, i) => {
      const pf = Fields.of(joinPath(f.at("phases"), i), ph);
      const shape = pf.oneOf("shape", PROFILE_SHAPES);
      const [start, end] = shape === "constant" ? [pf.num("start", {}, 1), pf.num("start", {}, 1)] : readEnds(pf, shape);
      const anneal = P.PROFILES[shape].anneal(pf);
      pf.done();
      return { phase: { anneal, start: (b: number) => b * start, end: (b: number) => b * end }, canonical: pf.canonical };
    });
    f.put("phases", phases.map((p) => p.canonical));
    return { schedule: combineByFraction(pcts, phases.map((p) => p.phase), total, false), canonical: f.done() };
  },

  multiply: (f) => {
    const factors = children(f, "schedules", 1);
    return { schedule: multiply(factors.map((p) => p.schedule)), canonical: f.done() };
  },

  cycles: (f) => {
    const shape = f.oneOf("shape", PROFILE_SHAPES, "cosine");
    const [start, end] = readEnds(f, shape);
    const anneal = P.PROFILES[shape].anneal(f);
    const tInitial = f.num("t_initial", { integer: true, min: 1 });
    const cycleMul = f.num("cycle_mul", { min: 1 }, 1);
    const cycleDecay = f.num("cycle_decay", { gt: 0 }, 1);
    const limit = f.numOrNull("cycle_limit", { integer: true, min: 1 }, null);
    const kDecay = f.num("k_decay", { gt: 0 }, 1);
    return {
      schedule: cycles({ anneal, start, end, tInitial, cycleMul, cycleDecay, cycleLimit: limit ?? Infinity, kDecay }),
      canonical: f.done(),
    };
  },

  noise: (f) => {
    const inner = child(f, "schedule");
    const noise = readNoise(f, { range: "range", pct: "pct", std: "std", type: "noise_type", seed: "seed" });
    noteField(f.path, "range", { required: true });
    if (!noise) throw new SpecError(f.at("range"), "is required (a start step or [start, end))");
    return {
      schedule: { lr: (b) => withNoise(inner.schedule.lr(b), noise), cycleStarts: inner.schedule.cycleStarts },
      canonical: f.done(),
    };
  },

  hf: (f) => parseHf(f),

  wsd: (f) => {
    const warmupSteps = f.num("warmup_steps", { integer: true, min: 0 }, 0);
    const decaySteps = f.num("decay_steps", { integer: true, min: 0 });
    const stable = stableSteps(f, "stable_steps", "total_steps", warmupSteps, decaySteps);
    const o = hfDefaults("warmup_stable_decay");
    o.num_warmup_steps = warmupSteps;
    o.num_stable_steps = stable;
    o.num_decay_steps = decaySteps;
    o.warmup_type = f.oneOf<R.WsdShape>("warmup_shape", ["linear", "cosine", "1-sqrt"], "linear");
    o.decay_type = f.oneOf<R.WsdShape>("decay_shape", ["linear", "cosine", "1-sqrt"], "1-sqrt");
    o.min_lr_ratio = f.num("min_lr_ratio", { min: 0, max: 1 }, 0);
    return { schedule: R.hf(o), canonical: f.done() };
  },

  timm_cosine: (f) => {
    const o: R.TimmCosineOptions = {
      t_initial: f.num("t_initial", { integer: true, min: 1 }),
      lr_min: f.num("lr_min", { min: 0 }, 0),
      cycle_mul: f.num("cycle_mul", { gt: 0 }, 1),
      cycle_decay: f.num("cycle_decay", { gt: 0 }, 1),
      cycle_limit: f.num("cycle_limit", { integer: true, min: 0 }, 1),
      warmup_t: f.num("warmup_t", { integer: true, min: 0 }, 0),
      warmup_lr_init: f.num("warmup_lr_init", { min: 0 }, 0),
      warmup_prefix: f.bool("warmup_prefix", false),
      k_decay: f.num("k_decay", { gt: 0 }, 1),
      noise: null,
    };
    f.bool("t_in_epochs", true); // which timm call advances a row; values are the same
    o.noise = readNoise(f, { range: "noise_range_t", pct: "noise_pct", std: "noise_std", type: "noise_type", seed: "noise_seed" });
    return { schedule: R.timmCosine(o), canonical: f.done() };
  },

  sgdr: (f) => {
    const o: R.SgdrOptions = {
      t_0: f.num("t_0", { integer: true, min: 1 }),
      t_mult: f.num("t_mult", { min: 1 }, 2),
      m_mul: f.num("m_mul", { gt: 0 }, 1),
      alpha: f.num("alpha", { min: 0, max: 1 }, 0),
    };
    return { schedule: R.sgdr(o), canonical: f.done() };
  },

  snapshot: (f) => {
    const total = f.num("total_steps", { integer: true, min: 1 });
    const snapshots = f.num("snapshots", { integer: true, min: 1, max: total });
    return { schedule: R.snapshotEnsemble(total, snapshots), canonical: f.done() };
  },

  one_cycle: (f) => {
    const total = f.num("total_steps", { integer: true, min: 1 });
    const div = f.num("div", { gt: 0 }, 25);
    const divFinal = f.num("div_final", { gt: 0 }, 1e5);
    const pct = f.num("pct_start", { gt: 0, lt: 1 }, 0.25);
    let moms: [number, number, number] | null = [...ONE_CYCLE_MOMS];
    const rawMoms = f.raw("moms");
    noteField(f.path, "moms", { kind: "numbers", required: false, default: ONE_CYCLE_MOMS, rule: "[start, middle, end] in [0, 1], or null" });
    if (rawMoms === null) moms = null;
    else if (rawMoms !== undefined) {
      const m = f.nums("moms", { min: 0, max: 1 });
      if (m.length !== 3) throw new SpecError(f.at("moms"), `must be [start, middle, end] or null, got ${m.length} values`);
      moms = [m[0], m[1], m[2]];
    }
    f.put("moms", moms);
    const r = R.fastaiOneCycle({ total_steps: total, div, div_final: divFinal, pct_start: pct, moms });
    return { schedule: r.lr, momentum: r.mom, canonical: f.done() };
  },

  flat_cos: (f) => {
    const total = f.num("total_steps", { integer: true, min: 1 });
    const pct = f.num("pct_start", { gt: 0, lt: 1 }, 0.75);
    const divFinal = f.num("div_final", { gt: 0 }, 1e5);
    return { schedule: R.fastaiFlatCos(total, pct, divFinal), canonical: f.done() };
  },

  fractal: (f) => {
    const horizon = f.num("horizon", { integer: true, min: 1 });
    if (horizon > SPEC_LIMITS.fractal_horizon) overLimit(f.at("horizon"), "fractal_horizon", `horizon ${horizon}`);
    if ((horizon & (horizon - 1)) !== 0) throw new SpecError(f.at("horizon"), `must be a power of 2, got ${horizon}`);
    const lo = f.num("lambda_min", { gt: 0 });
    const hi = f.num("lambda_max", { gt: 0 });
    if (!(lo < hi)) throw new SpecError(f.at("lambda_max"), `must be > lambda_min (${lo}), got ${hi}`);
    return { schedule: R.fractal(lo, hi, horizon), canonical: f.done() };
  },
};

/**
 * `{"type": "module", ...}`: a schedule written as code. Its reader lives
 * with the sandbox (modules/), which registers it here, so the library
 * itself (also loaded inside the sandbox) never depends on the sandbox.
 */
let moduleParser: Parser | null = null;
export function setModuleParser(p: Parser): void {
  moduleParser = p;
}
PARSERS.module = (f) => {
  if (!moduleParser) throw new SpecError(f.at("type"), "module schedules are not available here (no sandbox)");
  return moduleParser(f);
};

/**
 * Names of the torch family, registered by torch/classes.ts for a clearer
 * error: the library (also loaded inside the module sandbox) never depends on it.
 */
let isTorchType: (type: unknown) => boolean = () => false;
export function setTorchTypes(check: (type: unknown) => boolean): void {
  isTorchType = check;
}

/** Stable-phase length from either stable_steps or total_steps (HF WSD rule). */
function stableSteps(f: Fields, stableKey: string, totalKey: string, w: number, d: number): number {
  if (f.has(stableKey)) {
    if (f.has(totalKey)) throw new SpecError(f.at(totalKey), `give ${stableKey} or ${totalKey}, not both`);
    return f.num(stableKey, { integer: true, min: 0 });
  }
  const total = f.num(totalKey, { integer: true, min: w + d });
  return total - w - d;
}

function hfDefaults(name: R.HfName): R.HfOptions {
  return {
    name,
    num_warmup_steps: 0,
    num_training_steps: 0,
    num_cycles: name === "cosine_with_restarts" ? 1 : 0.5,
    power: 1.0,
    lr_end: 1e-7,
    lr_init: 1,
    timescale: 10000,
    min_lr_rate: 0,
    warmup_lr_rate: null,
    num_stable_steps: 0,
    num_decay_steps: 0,
    warmup_type: "linear",
    decay_type: "cosine",
    min_lr_ratio: 0,
  };
}

/**
 * `{"type":"hf","name":…}`: transformers.get_scheduler with the same
 * argument names (num_warmup_steps, num_training_steps, then the
 * scheduler_specific_kwargs flattened in), accepting the argument sets
 * get_scheduler accepts: a step count a schedule does not use is ignored
 * (constant takes neither; constant_with_warmup and inverse_sqrt take no
 * num_training_steps), and warmup_stable_decay with num_stable_steps ignores
 * num_training_steps (transformers warns). `lr_init` stands for
 * optimizer.defaults["lr"], which polynomial and min_lr divide by
 * (lrbridge.Schedule fills it in from the optimizer); other names ignore it.
 * Ignored fields stay out of the canonical form.
 */
function parseHf(f: Fields): Parsed {
  const name = f.oneOf("name", R.HF_NAMES);
  const o = hfDefaults(name);
  const steps = { integer: true, min: 0 };
  if (name === "constant") {
    f.ignore("num_warmup_steps", steps);
    f.ignore("num_training_steps", steps);
    f.ignore("lr_init", { gt: 0 });
    return { schedule: R.hf(o), canonical: f.done() };
  }
  o.num_warmup_steps = f.num("num_warmup_steps", steps);
  const needsTotal = !["constant_with_warmup", "inverse_sqrt", "warmup_stable_decay"].includes(name);
  if (needsTotal) o.num_training_steps = f.num("num_training_steps", { integer: true, min: 1 });
  else if (name !== "warmup_stable_decay") f.ignore("num_training_steps", steps);
  let usesLrInit = false;
  switch (name) {
    case "cosine":
      o.num_cycles = f.num("num_cycles", { gt: 0 }, 0.5);
      break;
    case "cosine_with_restarts":
      o.num_cycles = f.num("num_cycles", { integer: true, min: 1 }, 1);
      break;
    case "polynomial":
      o.power = f.num("power", { gt: 0 }, 1.0);
      o.lr_end = f.num("lr_end", { min: 0 }, 1e-7);
      if (!f.has("lr_init")) {
        throw new SpecError(f.at("lr_init"), "is required (transformers reads optimizer.defaults['lr']; lrbridge.Schedule and lrbridge.get_scheduler fill it in)");
      }
      o.lr_init = f.num("lr_init", { gt: o.lr_end });
      usesLrInit = true;
      if (!(o.num_training_steps > o.num_warmup_steps)) {
        throw new SpecError(f.at("num_training_steps"), `must be > num_warmup_steps (${o.num_warmup_steps}) for polynomial, got ${o.num_training_steps}`);
      }
      break;
    case "inverse_sqrt":
      o.timescale = f.num("timescale", { integer: true, min: 1 }, o.num_warmup_steps || 10000);
      noteField(f.path, "timescale", { default: null, derived_default: true, rule: "an integer >= 1 (default: num_warmup_steps, or 10000 without warmup)" });
      break;
    case "cosine_with_min_lr":
    case "cosine_warmup_with_min_lr": {
      o.num_cycles = f.num("num_cycles", { gt: 0 }, 0.5);
      if (f.has("min_lr") === f.has("min_lr_rate")) throw new SpecError(f.at("min_lr_rate"), "give exactly one of min_lr or min_lr_rate");
      if (f.has("min_lr")) {
        const minLr = f.num("min_lr", { min: 0 });
        if (!f.has("lr_init")) {
          throw new SpecError(f.at("lr_init"), "is required with min_lr (transformers reads optimizer.defaults['lr']; lrbridge.Schedule and lrbridge.get_scheduler fill it in)");
        }
        o.lr_init = f.num("lr_init", { gt: 0 });
        usesLrInit = true;
        o.min_lr_rate = minLr / o.lr_init;
      } else o.min_lr_rate = f.num("min_lr_rate", { min: 0, max: 1 });
      if (name === "cosine_warmup_with_min_lr") o.warmup_lr_rate = f.numOrNull("warmup_lr_rate", { min: 0, max: 1 }, null);
      break;
    }
    case "warmup_stable_decay":
      o.num_decay_steps = f.num("num_decay_steps", { integer: true, min: 0 });
      if (f.has("num_stable_steps")) {
        f.ignore("num_training_steps", steps);
        o.num_stable_steps = f.num("num_stable_steps", { integer: true, min: 0 });
      } else {
        o.num_stable_steps = stableSteps(f, "num_stable_steps", "num_training_steps", o.num_warmup_steps, o.num_decay_steps);
      }
      o.warmup_type = f.oneOf<R.WsdShape>("warmup_type", ["linear", "cosine", "1-sqrt"], "linear");
      o.decay_type = f.oneOf<R.WsdShape>("decay_type", ["linear", "cosine", "1-sqrt"], "cosine");
      o.min_lr_ratio = f.num("min_lr_ratio", { min: 0, max: 1 }, 0);
      o.num_cycles = f.num("num_cycles", { gt: 0 }, 0.5);
      break;
    default:
      break;
  }
  if (!usesLrInit) f.ignore("lr_init", { gt: 0 });
  return { schedule: R.hf(o), canonical: f.done() };
}

/** Deterministic schedule types this module serves (range_test is handled in bind.ts). */
export const SCHEDULE_TYPES: readonly string[] = Object.keys(PARSERS);

export function parseSchedule(path: string, spec: unknown): Parsed {
  const f = Fields.of(path, spec);
  const type = f.raw("type");
  if (isTorchType(type)) {
    // Torch schedulers step the optimizer's lrs recursively: they have no value
    // at a step without replaying from 0. The other nesting works both ways.
    throw new SpecError(
      f.at("type"),
      `${type} is a torch scheduler and cannot be a piece of a library schedule; put library schedules inside SequentialLR or ChainedScheduler instead (they act as LambdaLR there), or use the library's own shapes`,
    );
  }
  if (typeof type !== "string" || !Object.hasOwn(PARSERS, type)) {
    throw new SpecError(f.at("type"), `must be one of ${SCHEDULE_TYPES.join(", ")}, got ${describe(type)}`);
  }
  f.put("type", type);
  for (const rootOnly of ["scale", "lr", "momentum"]) {
    if (f.has(rootOnly)) throw new SpecError(f.at(rootOnly), "is allowed only at the top level of a spec");
  }
  return PARSERS[type](f);
}
