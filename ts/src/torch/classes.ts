/**
 * torch's scheduler classes, one entry each: how the constructor's arguments
 * are read and checked (torch's names, defaults and errors), how the class is
 * built on the simulated optimizer, and the facts the binder needs. Every
 * list of torch types and every per-class rule derives from this table.
 */
import { SpecError } from "../core/api";
import { compileFunction } from "../core/expr";
import { checkListLimit } from "../core/limits";
import { noteField } from "../core/schema";
import { describe, join as joinPath } from "../core/fields";
import { SCHEDULE_TYPES, parseSchedule, setTorchTypes } from "../library/parse";
import { TorchFields, inUnit, nonZero, positiveInt, pyNum } from "./fields";
// validate.ts imports this table; validateTorchSpec is only called at read time, so the cycle is harmless.
import { validateTorchSpec } from "./validate";
import {
  ChainedScheduler,
  ConstantLR,
  CosineAnnealingLR,
  CosineAnnealingWarmRestarts,
  CyclicLR,
  ExponentialLR,
  LambdaLR,
  LinearLR,
  MultiStepLR,
  MultiplicativeLR,
  OneCycleLR,
  PolynomialLR,
  PyError,
  SequentialLR,
  type SimOptimizer,
  StepLR,
  type TorchScheduler,
} from ".";

/** A canonical spec: plain JSON, all fields present. */
export type CanonicalSpec = { type: TorchType } & Record<string, unknown>;

export interface TorchClass {
  /** Its get_lr() continues from the current group lr (torch's recursive form). */
  chainable: boolean;
  /** Reads and checks the constructor's arguments; returns them with defaults filled in. */
  read(f: TorchFields, groups: number): Record<string, unknown>;
  /** Constructs it on `opt` (children built first); absent for ReduceLROnPlateau, which is metric-driven. */
  build?(s: CanonicalSpec, opt: SimOptimizer, path: string, children: TorchScheduler[]): TorchScheduler;
  /** Specs that together take every branch of `read`: the grammar (proto/schema.json) is read from them. */
  examples: Record<string, unknown>[];
}

const num = (s: CanonicalSpec, k: string): number => s[k] as number;

export const TORCH_CLASSES = {
  StepLR: {
    chainable: true,
    examples: [{ type: "StepLR", step_size: 3 }],
    read(f) {
      // step_size 0: torch constructs it and raises at step 1 (integer modulo by zero); the rows stop there.
      return { step_size: f.int("step_size"), gamma: f.number("gamma", 0.1) };
    },
    build(s, opt, path) {
      return new StepLR(opt, path, num(s, "step_size"), num(s, "gamma"));
    },
  },
  MultiStepLR: {
    chainable: true,
    examples: [{ type: "MultiStepLR", milestones: [2, 5] }],
    read(f) {
      return { milestones: f.intList("milestones"), gamma: f.number("gamma", 0.1) };
    },
    build(s, opt, path) {
      return new MultiStepLR(opt, path, s.milestones as number[], num(s, "gamma"));
    },
  },
  ConstantLR: {
    chainable: true,
    examples: [{ type: "ConstantLR" }],
    read(f) {
      const factor = f.number("factor", 1.0 / 3, { min: 0, max: 1, torch: () => "Constant multiplicative factor expected to be between 0 and 1." });
      // factor 0: torch divides by it at step total_iters (ZeroDivisionError): the rows stop there.
      return { factor, total_iters: f.int("total_iters", 5) };
    },
    build(s, opt, path) {
      return new ConstantLR(opt, path, num(s, "factor"), num(s, "total_iters"));
    },
  },
  LinearLR: {
    chainable: true,
    examples: [{ type: "LinearLR" }],
    read(f) {
      return {
        start_factor: f.number("start_factor", 1.0 / 3, { gt: 0, max: 1, torch: () => "Starting multiplicative factor expected to be greater than 0 and less or equal to 1." }),
        end_factor: f.number("end_factor", 1.0, { min: 0, max: 1, torch: () => "Ending multiplicative factor expected to be between 0 and 1." }),
        total_iters: f.int("total_iters", 5),
      };
    },
    build(s, opt, path) {
      return new LinearLR(opt, path, num(s, "start_factor"), num(s, "end_factor"), num(s, "total_iters"));
    },
  },
  ExponentialLR: {
    chainable: true,
    examples: [{ type: "ExponentialLR", gamma: 0.9 }],
    read(f) {
      return { gamma: f.number("gamma") };
    },
    build(s, opt, path) {
      return new ExponentialLR(opt, path, num(s, "gamma"));
    },
  },
  PolynomialLR: {
    chainable: true,
    examples: [{ type: "PolynomialLR" }],
    read(f) {
      // power < 0: torch computes 0.0 ** power at step total_iters (ZeroDivisionError): the rows stop there.
      return { total_iters: f.int("total_iters", 5), power: f.number("power", 1.0) };
    },
    build(s, opt, path) {
      return new PolynomialLR(opt, path, num(s, "total_iters"), num(s, "power"));
    },
  },
  CosineAnnealingLR: {
    chainable: true,
    examples: [{ type: "CosineAnnealingLR", T_max: 10 }],
    read(f) {
      return {
        // T_max 0: torch raises at step 1 (modulo by zero): the rows stop there.
        T_max: f.number("T_max"),
        eta_min: f.number("eta_min", 0.0),
      };
    },
    build(s, opt, path) {
      return new CosineAnnealingLR(opt, path, num(s, "T_max"), num(s, "eta_min"));
    },
  },
  CosineAnnealingWarmRestarts: {
    chainable: false,
    examples: [{ type: "CosineAnnealingWarmRestarts", T_0: 10 }],
    read(f) {
      return {
        T_0: f.int("T_0", undefined, { ...positiveInt, torch: (v) => `Expected positive integer T_0, but got ${pyNum(v)}` }),
        T_mult: f.int("T_mult", 1, { min: 1, torch: (v) => `Expected integer T_mult >= 1, but got ${pyNum(v)}` }),
        eta_min: etaMinOfWarmRestarts(f),
      };
    },
    build(s, opt, path) {
      return new CosineAnnealingWarmRestarts(opt, path, num(s, "T_0"), num(s, "T_mult"), num(s, "eta_min"));
    },
  },
  CyclicLR: {
    chainable: false,
    examples: [
      { type: "CyclicLR", base_lr: 0.01, max_lr: 0.1 },
      { type: "CyclicLR", base_lr: 0.01, max_lr: 0.1, step_size_down: 5, scale_fn: "1/x", mode: "triangular" },
    ],
    read(f, groups) {
      return cyclicFields(f, groups);
    },
    build(s, opt, path) {
      const n = opt.groups.length;

           const scalePath = joinPath(path, "scale_fn");
           return new CyclicLR(opt, path, {
             baseLrs: perGroup(s.base_lr, n),
             maxLrs: perGroup(s.max_lr, n),
             stepSizeUp: num(s, "step_size_up"),
             stepSizeDown: s.step_size_down as number | null,
             mode: s.mode as string,
             gamma: num(s, "gamma"),
             scaleFn: s.scale_fn === null ? null : located(compileFunction(s.scale_fn as string, "x", scalePath), scalePath, "x"),
             scaleMode: s.scale_mode as string,
             cycleMomentum: s.cycle_momentum as boolean,
             baseMomentums: perGroup(s.base_momentum, n),
             maxMomentums: perGroup(s.max_momentum, n),
           });

    },
  },
  OneCycleLR: {
    chainable: false,
    examples: [
      { type: "OneCycleLR", max_lr: 0.1, total_steps: 100 },
      { type: "OneCycleLR", max_lr: 0.1, epochs: 2, steps_per_epoch: 10 },
    ],
    read(f, groups) {
      return oneCycleFields(f, groups);
    },
    build(s, opt, path) {
      const n = opt.groups.length;
      return new OneCycleLR(opt, path, {
        maxLrs: perGroup(s.max_lr, n),
        totalSteps: (s.total_steps as number | null) ?? num(s, "epochs") * num(s, "steps_per_epoch"),
        pctStart: num(s, "pct_start"),
        annealStrategy: s.anneal_strategy as "cos" | "linear",
        cycleMomentum: s.cycle_momentum as boolean,
        baseMomentums: perGroup(s.base_momentum, n),
        maxMomentums: perGroup(s.max_momentum, n),
        divFactor: num(s, "div_factor"),
        finalDivFactor: num(s, "final_div_factor"),
        threePhase: s.three_phase as boolean,
      });
    },
  },
  ReduceLROnPlateau: {
    chainable: false,
    examples: [{ type: "ReduceLROnPlateau" }],
    read(f, groups) {
      return {
        mode: f.choice("mode", ["min", "max"] as const, "min", (m) => `mode ${m} is unknown!`),
        factor: f.number("factor", 0.1, { lt: 1, torch: () => "Factor should be < 1.0." }),
        patience: f.int("patience", 10),
        threshold: f.number("threshold", 1e-4),
        threshold_mode: f.choice("threshold_mode", ["rel", "abs"] as const, "rel", (m) => `threshold mode ${m} is unknown!`),
        cooldown: f.int("cooldown", 0),
        min_lr: f.perGroup("min_lr", groups, 0, undefined, (n) => `expected ${groups} min_lrs, got ${n}`),
        eps: f.number("eps", 1e-8),
      };
    },
  },
  SequentialLR: {
    chainable: false,
    examples: [
      { type: "SequentialLR", schedulers: [{ type: "ConstantLR" }, { type: "ExponentialLR", gamma: 0.9 }], milestones: [3] },
    ],
    read(f, groups) {
      return sequentialFields(f, groups);
    },
    build(s, opt, path, children) {
      return new SequentialLR(opt, path, children, s.milestones as number[]);
    },
  },
  ChainedScheduler: {
    chainable: false,
    examples: [{ type: "ChainedScheduler", schedulers: [{ type: "ConstantLR" }] }],
    read(f, groups) {
      return { schedulers: childSpecs(f, groups) };
    },
    build(s, opt, path, children) {
      return new ChainedScheduler(opt, path, children);
    },
  },
  LambdaLR: {
    chainable: false,
    examples: [{ type: "LambdaLR", lr_lambda: "0.95 ** epoch" }],
    read(f, groups) {
      return { lr_lambda: f.expressions("lr_lambda", groups, "epoch") };
    },
    build(s, opt, path) {
      const n = opt.groups.length;
      return new LambdaLR(opt, path, lambdas(s, n, path));
    },
  },
  MultiplicativeLR: {
    chainable: true,
    examples: [{ type: "MultiplicativeLR", lr_lambda: "0.95" }],
    read(f, groups) {
      return { lr_lambda: f.expressions("lr_lambda", groups, "epoch") };
    },
    build(s, opt, path) {
      const n = opt.groups.length;
      return new MultiplicativeLR(opt, path, lambdas(s, n, path));
    },
  },
} satisfies Record<string, TorchClass>;

export type TorchType = keyof typeof TORCH_CLASSES;
export const TORCH_TYPES = Object.keys(TORCH_CLASSES) as TorchType[];
export const CHAINABLE_TYPES: ReadonlySet<string> = new Set(TORCH_TYPES.filter((t) => TORCH_CLASSES[t].chainable));

export function isTorchType(type: unknown): type is TorchType {
  return typeof type === "string" && Object.hasOwn(TORCH_CLASSES, type);
}
setTorchTypes(isTorchType);

/** A composite's child written in the library's grammar (`rex`, `cosine`, `join`, ...). */
export function isLibraryChild(spec: unknown): boolean {
  const type = (spec as { type?: unknown } | null)?.type;
  return typeof type === "string" && !isTorchType(type) && (SCHEDULE_TYPES as readonly string[]).includes(type);
}

function cyclicFields(f: TorchFields, groups: number): Record<string, unknown> {
  const base_lr = f.perGroup("base_lr", groups);
  const max_lr = f.perGroup("max_lr", groups);
  // Sizes summing to 0: torch's constructor divides by zero (ZeroDivisionError, from the simulation).
  const step_size_up = f.number("step_size_up", 2000);
  const downRaw = f.raw("step_size_down");
  let step_size_down: number | null = null;
  if (downRaw !== undefined && downRaw !== null) step_size_down = f.number("step_size_down");
  f.nullable("step_size_down", "number", "a number or null");
  const scaleRaw = f.raw("scale_fn");
  const scale_fn = scaleRaw === undefined || scaleRaw === null ? null : (f.expressions("scale_fn", 1, "x") as string);
  f.nullable("scale_fn", "expression", "an expression over 'x', or null");
  let mode: string;
  if (scale_fn === null) {
    mode = f.choice("mode", ["triangular", "triangular2", "exp_range"] as const, "triangular", () => "mode is invalid and scale_fn is None");
  } else {
    // torch ignores mode when scale_fn is given.
    const m = f.raw("mode");
    if (m !== undefined && typeof m !== "string") f.fail("mode", `must be a string, got ${describe(m)}`);
    mode = (m as string | undefined) ?? "triangular";
  }
  return {
    base_lr,
    max_lr,
    step_size_up,
    step_size_down,
    mode,
    gamma: f.number("gamma", 1.0),
    scale_fn,
    scale_mode: f.choice("scale_mode", ["cycle", "iterations"] as const, "cycle"),
    cycle_momentum: f.bool("cycle_momentum", true),
    base_momentum: f.perGroup("base_momentum", groups, 0.8),
    max_momentum: f.perGroup("max_momentum", groups, 0.9),
  };
}

function optionalPositiveInt(f: TorchFields, name: string): number | null {
  const v = f.raw(name);
  const out = v === undefined || v === null ? null : f.int(name, undefined, { ...positiveInt, torch: (x) => `Expected positive integer ${name}, but got ${pyNum(x)}` });
  f.nullable(name, "integer", "a positive integer or null");
  return out;
}

/** torch: `isinstance(eta_min, (float, int))`, else a ValueError naming the type. */
function etaMinOfWarmRestarts(f: TorchFields): number {
  const v = f.raw("eta_min");
  if (typeof v === "string") {
    f.fail("eta_min", `must be a number, got ${describe(v)}`, `Expected float or int eta_min, but got ${v} of type <class 'str'>`);
  }
  return f.number("eta_min", 0.0);
}

function oneCycleFields(f: TorchFields, groups: number): Record<string, unknown> {
  const max_lr = f.perGroup("max_lr", groups);
  const total_steps = optionalPositiveInt(f, "total_steps");
  const epochs = optionalPositiveInt(f, "epochs");
  const steps_per_epoch = optionalPositiveInt(f, "steps_per_epoch");
  if (total_steps === null && (epochs === null || steps_per_epoch === null)) {
    const must = "You must define either total_steps OR (epochs AND steps_per_epoch)";
    f.fail("total_steps", must, must);
  }
  const out = {
    max_lr,
    total_steps,
    epochs,
    steps_per_epoch,
    pct_start: f.number("pct_start", 0.3, { ...inUnit, torch: (v) => `Expected float between 0 and 1 pct_start, but got ${v}` }),
    anneal_strategy: f.choice("anneal_strategy", ["cos", "linear"] as const, "cos", (a) => `anneal_strategy must be one of 'cos' or 'linear', instead got ${a}`),
    cycle_momentum: f.bool("cycle_momentum", true),
    base_momentum: f.perGroup("base_momentum", groups, 0.85),
    max_momentum: f.perGroup("max_momentum", groups, 0.95),
    div_factor: f.number("div_factor", 25.0, nonZero),
    final_div_factor: f.number("final_div_factor", 1e4, nonZero),
    three_phase: f.bool("three_phase", false),
  };
  // A phase of zero length makes torch divide by zero at some step: the rows stop there.
  return out;
}

function childSpecs(f: TorchFields, groups: number): CanonicalSpec[] {
  noteField(f.path, "schedulers", { kind: "specs", required: true, rule: "a list of at least one scheduler spec (a library schedule acts as LambdaLR)" });
  const v = f.raw("schedulers");
  if (!Array.isArray(v) || v.length < 1) {
    const torchSays =
      f.type === "ChainedScheduler"
        ? "ChainedScheduler expects at least one scheduler to be chained, but got no scheduler."
        : `${f.type} expects at least one scheduler, but got no scheduler.`;
    f.fail("schedulers", `${f.type} expects at least one scheduler, got ${describe(v)}`, Array.isArray(v) ? torchSays : undefined);
  }
  checkListLimit(f.at("schedulers"), v.length, "pieces");
  return v.map((child, i) => {
    const p = joinPath(f.at("schedulers"), i);
    // A library schedule is a multiplier of the base lr, a pure function of the
    // step: as a child it is the LambdaLR with that lr_lambda.
    if (isLibraryChild(child)) return parseSchedule(p, child).canonical as CanonicalSpec;
    const c = validateTorchSpec(child, groups, p);
    if (c.type === "ReduceLROnPlateau") {
      throw new SpecError(
        p,
        `${f.type} does not support \`ReduceLROnPlateau\` scheduler as it requires additional kwargs to be specified when calling \`step\``,
      );
    }
    return c;
  });
}


function sequentialFields(f: TorchFields, groups: number): Record<string, unknown> {
  const schedulers = childSpecs(f, groups);
  const milestones = f.intList("milestones");
  if (milestones.length !== schedulers.length - 1) {
    f.fail(
      "milestones",
      `Sequential Schedulers expects number of schedulers provided to be one more than the number of milestone points, but got number of schedulers ${schedulers.length} and the number of milestones to be equal to ${milestones.length}`,
      `Sequential Schedulers expects number of schedulers provided to be one more than the number of milestone points, but got number of schedulers ${schedulers.length} and the number of milestones to be equal to ${milestones.length}`,
    );
  }
  // A composite child reached at a milestone has no get_lr for torch's
  // _update_lr(0): NotImplementedError at that step, where the rows stop.
  return { schedulers, milestones };
}

export const perGroup = (v: unknown, n: number): number[] =>
  Array.isArray(v) ? (v as number[]) : new Array<number>(n).fill(v as number);

function lambdas(spec: CanonicalSpec, n: number, path: string): ((epoch: number) => number)[] {
  if (!Array.isArray(spec.lr_lambda)) {
    // One function for every group: one call target keeps the hot loop monomorphic.
    const p = joinPath(path, "lr_lambda");
    return new Array<(epoch: number) => number>(n).fill(located(compileFunction(spec.lr_lambda as string, "epoch", p), p, "epoch"));
  }
  return (spec.lr_lambda as string[]).map((src, i) => {
    const p = joinPath(joinPath(path, "lr_lambda"), i);
    return located(compileFunction(src, "epoch", p), p, "epoch");
  });
}

/** A user function whose Python errors name the spec field and the argument. */
function located(fn: (v: number) => number, path: string, arg: string): (v: number) => number {
  return (v) => {
    try {
      return fn(v);
    } catch (err) {
      if (err instanceof PyError) throw new SpecError(path, `raises ${err.message} at ${arg}=${v}`, pyOf(err));
      throw err;
    }
  };
}

/** A Python exception as the wire carries it. */
export const pyOf = (err: PyError) => ({ type: err.pyType, message: err.pyMessage });
