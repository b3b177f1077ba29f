/**
 * The spec grammar of both families as data (proto/schema.json): every
 * `type`, its fields, defaults and ranges. The fields are recorded from the
 * readers while they read one example spec per variant of each type, so the
 * schema says what the readers do; a type without an example here fails
 * `buildSchema`.
 */
import { type FieldDoc, mergeDoc, recordFields } from "./core/schema";
import { TORCH_CLASSES } from "./torch/classes";
import { TORCH_TYPES, validateTorchSpec } from "./torch/validate";
import { SCHEDULE_TYPES, parseSchedule } from "./library/parse";
import { PROFILE_SHAPES } from "./library/profiles";
import { bindGeneric, isGenericType } from "./library/bind";
import { HF_NAMES } from "./library/recipes";
import "./modules/spec"; // the `module` type (needs loadSandbox() before buildSchema)
import { libraryVersion } from "./modules/sandbox";

type Spec = Record<string, unknown>;
const c = { type: "constant" };


const LIBRARY_EXAMPLES: Spec[] = [
  ...PROFILE_SHAPES.map((type) => (type === "constant" ? { type } : { type, total_steps: 10, end: 0.01 })),
  { type: "step", every: 3 },
  { type: "piecewise", boundaries: [3], values: [1, 0.1] },
  { type: "inverse_sqrt" },
  { type: "sample", schedule: c, every: 2 },
  { type: "sample", schedule: c, times: 2, total_steps: 10 },
  { type: "warmup", steps: 2, then: c },
  { type: "warmup", steps: 2, shape: "exponential", from: 0.1, then: c },
  { type: "join", schedules: [c, c], boundaries: [3] },
  { type: "combine", total_steps: 10, pcts: [1], phases: [{ shape: "cosine" }] },
  { type: "multiply", schedules: [c] },
  { type: "cycles", t_initial: 10 },
  ...PROFILE_SHAPES.map((shape) => ({ type: "cycles", t_initial: 10, shape, end: 0.1 })),
  { type: "noise", schedule: c, range: 3 },
  ...HF_NAMES.map((name) => hfExample(name)),
  { type: "hf", name: "cosine_with_min_lr", num_warmup_steps: 1, num_training_steps: 10, min_lr: 0.001, lr_init: 0.1 },
  { type: "hf", name: "warmup_stable_decay", num_warmup_steps: 1, num_decay_steps: 2, num_stable_steps: 3 },
  { type: "wsd", decay_steps: 2, total_steps: 10 },
  { type: "wsd", decay_steps: 2, stable_steps: 3 },
  { type: "timm_cosine", t_initial: 10 },
  { type: "timm_cosine", t_initial: 10, noise_range_t: 3 },
  { type: "sgdr", t_0: 10 },
  { type: "snapshot", total_steps: 10, snapshots: 2 },
  { type: "one_cycle", total_steps: 10 },
  { type: "flat_cos", total_steps: 10 },
  { type: "fractal", horizon: 8, lambda_min: 0.1, lambda_max: 1 },
  { type: "module", code: 'exports.default = require("lrbridge/schedules").constant();', library: "" },
];

function hfExample(name: string): Spec {
  const spec: Spec = { type: "hf", name, num_warmup_steps: 1, num_training_steps: 10 };
  if (name === "polynomial") spec.lr_init = 0.1;
  if (name === "cosine_with_min_lr" || name === "cosine_warmup_with_min_lr") spec.min_lr_rate = 0.1;
  if (name === "warmup_stable_decay") spec.num_decay_steps = 2;
  return spec;
}

/** Metric-driven library types, bound rather than parsed. */
const METRIC_EXAMPLES: Spec[] = [{ type: "range_test" }, { type: "greedy" }, { type: "greedy", min_lr: [0.001], max_lr: [1] }];

const GROUP = [{ lr: 0.1, momentum: 0.9 }];

export interface TypeSchema {
  family: "torch" | "library";
  /** metric-driven: rows need the client's metric */
  metric?: boolean;
  fields: Record<string, Partial<FieldDoc>>;
}

export interface Schema {
  types: Record<string, TypeSchema>;
  /** fields a library spec may carry only at its top level */
  library_top_level: Record<string, Partial<FieldDoc>>;
  /** `momentum: {"type": "inverse", ...}` (any library schedule is also accepted there) */
  momentum_inverse: Record<string, Partial<FieldDoc>>;
  /** one entry of `combine`'s `phases` */
  combine_phase: Record<string, Partial<FieldDoc>>;
}

function merged(into: Record<string, Partial<FieldDoc>>, fields: Record<string, Partial<FieldDoc>>): void {
  for (const [name, doc] of Object.entries(fields)) into[name] = mergeDoc(into[name], doc);
}

function sorted<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Per type: how many examples required each field, and how many examples there were. */
const requiredCount = new Map<string, Map<string, number>>();
const exampleCount = new Map<string, number>();

function add(types: Record<string, TypeSchema>, spec: Spec, family: TypeSchema["family"], read: () => unknown, metric = false): void {
  const t = spec.type as string;
  const entry = (types[t] ??= { family, ...(metric ? { metric } : {}), fields: {} });
  const fields = recordFields("", read);
  delete fields.type;
  merged(entry.fields, fields);
  exampleCount.set(t, (exampleCount.get(t) ?? 0) + 1);
  const counts = requiredCount.get(t) ?? new Map<string, number>();
  for (const [name, doc] of Object.entries(fields)) if (doc.required) counts.set(name, (counts.get(name) ?? 0) + 1);
  requiredCount.set(t, counts);
}

/** A field is required only if every example of its type required it (alternatives such as every/times are not). */
function settleRequired(types: Record<string, TypeSchema>): void {
  for (const [t, s] of Object.entries(types)) {
    for (const [name, doc] of Object.entries(s.fields)) {
      doc.required = (requiredCount.get(t)?.get(name) ?? 0) === exampleCount.get(t);
      if (doc.required) delete doc.default;
    }
  }
}

export function buildSchema(): Schema {
  const types: Record<string, TypeSchema> = {};
  requiredCount.clear();
  exampleCount.clear();
  for (const s of TORCH_TYPES.flatMap((t) => TORCH_CLASSES[t].examples)) add(types, s, "torch", () => validateTorchSpec(s, 1));
  for (const s of LIBRARY_EXAMPLES) {
    const spec = s.type === "module" ? { ...s, library: libraryVersion() } : s;
    add(types, spec, "library", () => parseSchedule("", spec));
  }
  for (const s of METRIC_EXAMPLES) add(types, s, "library", () => bindGeneric(s, GROUP), true);
  settleRequired(types);
  const expected = [...TORCH_TYPES, ...SCHEDULE_TYPES, ...METRIC_EXAMPLES.map((s) => s.type as string)];
  const missing = expected.filter((t) => !(t in types));
  if (missing.length) throw new Error(`grammar: no example spec for ${missing.join(", ")}`);
  for (const t of Object.keys(types)) if (!TORCH_TYPES.includes(t as never) && !isGenericType(t)) throw new Error(`grammar: ${t} binds nowhere`);

  // Top-level fields: what bindGeneric reads at the root beyond the schedule's own fields.
  const top: Record<string, Partial<FieldDoc>> = {};
  const inverse: Record<string, Partial<FieldDoc>> = {};
  for (const s of [
    { type: "constant", momentum: { type: "inverse", lr_range: [0.1, 1] } },
    { type: "constant", scale: "absolute", lr: 0.1 },
  ]) {
    merged(top, recordFields("", () => bindGeneric(s, GROUP)));
    merged(inverse, recordFields("momentum", () => bindGeneric(s, GROUP)));
  }
  for (const k of Object.keys(types.constant.fields)) delete top[k];
  delete top.type;
  delete inverse.type;
  const phase: Record<string, Partial<FieldDoc>> = {};
  for (const shape of PROFILE_SHAPES) {
    const ph: Spec = shape === "exponential" ? { shape, end: 0.1 } : { shape };
    merged(phase, recordFields("phases[0]", () => parseSchedule("", { type: "combine", total_steps: 10, pcts: [1], phases: [ph] })));
  }
  const sortFields = (o: Record<string, Partial<FieldDoc>>) => sorted(Object.fromEntries(Object.entries(o).map(([k, v]) => [k, sorted(v as Record<string, unknown>)])));
  return {
    types: sorted(Object.fromEntries(Object.entries(types).map(([t, s]) => [t, { ...s, fields: sortFields(s.fields) }]))),
    library_top_level: sortFields(top),
    momentum_inverse: sortFields(inverse),
    combine_phase: sortFields(phase),
  };
}

/** proto/schema.json's text. */
export function schemaJson(): string {
  return JSON.stringify(buildSchema(), null, 2) + "\n";
}
