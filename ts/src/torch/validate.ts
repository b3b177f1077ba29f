/**
 * Validation of torch-scheduler specs: torch's names and defaults and
 * torch's own constructor checks. What torch accepts and then fails on later
 * (a division by zero at some step) is accepted here too: the simulation
 * stops the rows at that step with torch's exception. Produces the canonical
 * spec: every field explicit, so equal schedules hash equally.
 */
import { SpecError } from "../core/api";
import { parseExpr } from "../core/expr";
import { checkListLimit } from "../core/limits";
import { type FieldDoc, noteField } from "../core/schema";
import { bisectRight } from "../core/pymath";
import { oneCyclePhases } from "./cyclic";
import { Fields, type NumRule, checkNum, describe, ruleText } from "../core/fields";
import { SCHEDULE_TYPES, parseSchedule } from "../library/parse";

export const TORCH_TYPES = [
  "StepLR",
  "MultiStepLR",
  "ConstantLR",
  "LinearLR",
  "ExponentialLR",
  "PolynomialLR",
  "CosineAnnealingLR",
  "CosineAnnealingWarmRestarts",
  "CyclicLR",
  "OneCycleLR",
  "ReduceLROnPlateau",
  "SequentialLR",
  "ChainedScheduler",
  "LambdaLR",
  "MultiplicativeLR",
] as const;
export type TorchType = (typeof TORCH_TYPES)[number];

/** Chainable classes: their get_lr() continues from the current group lr. */
export const CHAINABLE_TYPES: ReadonlySet<string> = new Set([
  "StepLR",
  "MultiStepLR",
  "ConstantLR",
  "LinearLR",
  "ExponentialLR",
  "PolynomialLR",
  "CosineAnnealingLR",
  "MultiplicativeLR",
]);

export function isTorchType(type: unknown): type is TorchType {
  return typeof type === "string" && (TORCH_TYPES as readonly string[]).includes(type);
}

/** A canonical spec: plain JSON, all fields present. */
export type CanonicalSpec = { type: TorchType } & Record<string, unknown>;

const NOT_SPEC_FIELDS: Record<string, string> = {
  optimizer: "the optimizer is given by the groups, not the spec",
  last_epoch: "resume through state_dict, not last_epoch",
  verbose: "removed from torch; not part of a spec",
};

export function joinPath(path: string, field: string | number): string {
  if (typeof field === "number") return `${path}[${field}]`;
  return path ? `${path}.${field}` : field;
}

/** torch's readers on the shared field reader: None is a value to torch, never "use the default". */
class TorchFields extends Fields {
  constructor(obj: Record<string, unknown>, path: string, type: string) {
    super(path, obj, type, false);
    this.seen.add("type");
  }
  /** Tells the schema recorder that `name` may be absent or null (null by default). */
  nullable(name: string, kind: FieldDoc["kind"], rule: string): void {
    noteField(this.path, name, { kind, required: false, default: null, rule });
  }
  number(name: string, def?: number, rule: NumRule = {}): number {
    return this.num(name, rule, def);
  }
  int(name: string, def?: number, rule: NumRule = {}): number {
    return this.num(name, { ...rule, integer: true }, def);
  }
  choice<T extends string>(name: string, options: readonly T[], def: T, torch?: (v: string) => string): T {
    return this.oneOf(name, options, def, torch);
  }
  /** A number, or a list with one number per param group (torch's _format_param). */
  perGroup(name: string, groups: number, def?: number, rule: NumRule = {}, torchLength?: (n: number) => string): number | number[] {
    const v = this.raw(name);
    const what = ruleText(rule).replace("must be ", "");
    noteField(this.path, name, { kind: "per_group", required: def === undefined, rule: `${what}, or a list of one per param group`, ...(def === undefined ? {} : { default: def }) });
    if (v === undefined) {
      if (def === undefined) this.missing(name, `${what}, or a list of one per param group`);
      return this.put(name, def);
    }
    if (Array.isArray(v)) {
      if (v.length !== groups) {
        this.fail(
          name,
          `must have the same length as optimizer.param_groups: ${name} has ${v.length} values, param_groups has ${groups}`,
          torchLength
            ? torchLength(v.length)
            : `${name} must have the same length as optimizer.param_groups. ${name} has ${v.length} values, param_groups has ${groups}.`,
        );
      }
      return this.put(name, v.map((x, i) => checkNum(joinPath(this.at(name), i), x, { ...rule, torch: undefined })));
    }
    return this.put(name, checkNum(this.at(name), v, { ...rule, torch: undefined }));
  }
  intList(name: string): number[] {
    const v = this.raw(name);
    noteField(this.path, name, { kind: "integers", required: true, rule: "a list of integers" });
    if (v === undefined) this.missing(name, "a list of integers");
    if (!Array.isArray(v)) this.fail(name, `must be a list of integers, got ${describe(v)}`);
    checkListLimit(this.at(name), v.length, "milestones");
    return this.put(name, v.map((x, i) => checkNum(joinPath(this.at(name), i), x, { integer: true })));
  }
  /** An expression string (or one per group), parsed now so errors name the column. */
  expressions(name: string, groups: number, variable: string): string | string[] {
    const v = this.raw(name);
    const check = (x: unknown, p: string): string => {
      if (typeof x !== "string") throw new SpecError(p, `must be an expression string over '${variable}', got ${describe(x)}`);
      parseExpr(x, [variable], p);
      return x;
    };
    noteField(this.path, name, { kind: "expression", required: true, rule: `an expression over '${variable}', or a list of one per param group` });
    if (Array.isArray(v)) {
      if (v.length !== groups) {
        this.fail(name, `expected ${groups} lr_lambdas (one per param group), got ${v.length}`, `Expected ${groups} lr_lambdas, but got ${v.length}`);
      }
      return v.map((x, i) => check(x, joinPath(this.at(name), i)));
    }
    if (v === undefined) this.missing(name, `an expression over '${variable}', or a list of them`);
    return check(v, this.at(name));
  }
  /** Rejects fields no torch constructor takes. */
  finish(): void {
    this.done(NOT_SPEC_FIELDS);
  }
}

const inUnit: NumRule = { min: 0, max: 1 };

/** A Python number as an f-string prints it (ints as ints: JSON cannot tell 5.0 from 5). */
const pyNum = (v: number): string => (Number.isInteger(v) ? String(v) : String(v).replace(/e([+-])(\d)$/, "e$10$2"));
const positiveInt: NumRule = { integer: true, gt: 0 };
const nonZero: NumRule = { ne: 0 };

/** Validates a spec for `groups` param groups and returns its canonical form. */
export function validateTorchSpec(spec: unknown, groups: number, path = ""): CanonicalSpec {
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) {
    throw new SpecError(path, `a spec must be an object with a "type", got ${describe(spec)}`);
  }
  const obj = spec as Record<string, unknown>;
  const type = obj.type;
  if (!isTorchType(type)) {
    throw new SpecError(joinPath(path, "type"), `unknown scheduler type ${describe(type)}`);
  }
  const f = new TorchFields(obj, path, type);
  const out = readFields(type, f, groups);
  f.finish();
  return { type, ...out };
}

function readFields(type: TorchType, f: TorchFields, groups: number): Record<string, unknown> {
  switch (type) {
    case "StepLR":
      // step_size 0: torch constructs it and raises at step 1 (integer modulo by zero); the rows stop there.
      return { step_size: f.int("step_size"), gamma: f.number("gamma", 0.1) };
    case "MultiStepLR":
      return { milestones: f.intList("milestones"), gamma: f.number("gamma", 0.1) };
    case "ConstantLR": {
      const factor = f.number("factor", 1.0 / 3, { min: 0, max: 1, torch: () => "Constant multiplicative factor expected to be between 0 and 1." });
      // factor 0: torch divides by it at step total_iters (ZeroDivisionError): the rows stop there.
      return { factor, total_iters: f.int("total_iters", 5) };
    }
    case "LinearLR":
      return {
        start_factor: f.number("start_factor", 1.0 / 3, { gt: 0, max: 1, torch: () => "Starting multiplicative factor expected to be greater than 0 and less or equal to 1." }),
        end_factor: f.number("end_factor", 1.0, { min: 0, max: 1, torch: () => "Ending multiplicative factor expected to be between 0 and 1." }),
        total_iters: f.int("total_iters", 5),
      };
    case "ExponentialLR":
      return { gamma: f.number("gamma") };
    case "PolynomialLR":
      // power < 0: torch computes 0.0 ** power at step total_iters (ZeroDivisionError): the rows stop there.
      return { total_iters: f.int("total_iters", 5), power: f.number("power", 1.0) };
    case "CosineAnnealingLR":
      return {
        // T_max 0: torch raises at step 1 (modulo by zero): the rows stop there.
        T_max: f.number("T_max"),
        eta_min: f.number("eta_min", 0.0),
      };
    case "CosineAnnealingWarmRestarts":
      return {
        T_0: f.int("T_0", undefined, { ...positiveInt, torch: (v) => `Expected positive integer T_0, but got ${pyNum(v)}` }),
        T_mult: f.int("T_mult", 1, { min: 1, torch: (v) => `Expected integer T_mult >= 1, but got ${pyNum(v)}` }),
        eta_min: etaMinOfWarmRestarts(f),
      };
    case "LambdaLR":
    case "MultiplicativeLR":
      return { lr_lambda: f.expressions("lr_lambda", groups, "epoch") };
    case "CyclicLR":
      return cyclicFields(f, groups);
    case "OneCycleLR":
      return oneCycleFields(f, groups);
    case "ReduceLROnPlateau":
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
    case "SequentialLR":
      return sequentialFields(f, groups);
    case "ChainedScheduler":
      return { schedulers: childSpecs(f, groups) };
  }
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
  const T = total_steps ?? (epochs as number) * (steps_per_epoch as number);
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

/** The first step t in [0, total] whose phase has end == start (pct = x/0), or null. */
export function oneCycleZeroDivisionStep(total: number, pctStart: number, threePhase: boolean): number | null {
  const phases = oneCyclePhases(total, pctStart, threePhase);
  let start = 0.0;
  let earlierMax = -Infinity; // steps <= this picked an earlier phase
  for (let i = 0; i < phases.length; i++) {
    const end = phases[i].endStep;
    const last = i === phases.length - 1;
    // Steps that pick phase i: not picked before, and t <= end (any t for the last).
    const lo = i === 0 ? 0 : Math.max(0, Math.floor(earlierMax) + 1);
    const hi = last ? total : Math.min(total, Math.floor(end));
    if (end - start === 0 && lo <= hi) return lo;
    earlierMax = Math.max(earlierMax, end);
    start = end;
  }
  return null;
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


/** A composite's child written in the library's grammar (`rex`, `cosine`, `join`, ...). */
export function isLibraryChild(spec: unknown): boolean {
  const type = (spec as { type?: unknown } | null)?.type;
  return typeof type === "string" && !isTorchType(type) && (SCHEDULE_TYPES as readonly string[]).includes(type);
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
