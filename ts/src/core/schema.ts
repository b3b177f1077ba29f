/**
 * The published grammar (proto/schema.json) is recorded from the field
 * readers themselves: while `recordFields` runs, every read of a spec field
 * reports its name, kind, rule and default here, so the schema cannot say
 * something the readers do not do.
 */

export type FieldKind =
  | "number"
  | "integer"
  | "boolean"
  | "choice"
  | "numbers"
  | "integers"
  | "per_group"
  | "expression"
  | "spec"
  | "specs"
  | "phases"
  | "string"
  | "object"
  | "any";

export interface FieldDoc {
  kind: FieldKind;
  required: boolean;
  default?: unknown;
  /** what a value must be, in the reader's own error wording */
  rule?: string;
  options?: readonly string[];
  min?: number;
  max?: number;
  gt?: number;
  lt?: number;
  /** accepted and left out of the canonical form (a library takes it and ignores it) */
  ignored?: boolean;
  /** true when a default depends on other fields (the probe's value is not shown) */
  derived_default?: boolean;
}

type Sink = (objectPath: string, name: string, doc: Partial<FieldDoc>) => void;
let sink: Sink | null = null;

/** Called by the readers on every field read; a no-op unless recording. */
export function noteField(objectPath: string, name: string, doc: Partial<FieldDoc>): void {
  if (sink) sink(objectPath, name, doc);
}

/** Runs `read` without recording (a reader that reads a spec which is not part of the grammar's own). */
export function unrecorded<T>(read: () => T): T {
  const prev = sink;
  sink = null;
  try {
    return read();
  } finally {
    sink = prev;
  }
}

/**
 * Two notes of one field (a raw read, then its typed check; or two example
 * specs): the later note refines the earlier, but the first default stands
 * unless the later one says the default is derived from other fields.
 */
export function mergeDoc(a: Partial<FieldDoc> | undefined, b: Partial<FieldDoc>): Partial<FieldDoc> {
  if (!a) return { ...b };
  const out: Partial<FieldDoc> = { ...a, ...b };
  if ("default" in a && !b.derived_default) out.default = a.default;
  if (a.kind && a.kind !== "any" && b.kind === "any") out.kind = a.kind;
  if (a.rule && b.kind === "any" && a.kind !== "any") out.rule = a.rule;
  return out;
}

/**
 * Runs `read` and returns the fields it read on the object at `objectPath`
 * (nested specs are left out: they are types of their own). Later notes of
 * one field refine earlier ones (a raw read, then its typed check).
 */
export function recordFields(objectPath: string, read: () => unknown): Record<string, Partial<FieldDoc>> {
  const out: Record<string, Partial<FieldDoc>> = {};
  const prev = sink;
  sink = (p, name, doc) => {
    if (p === objectPath) out[name] = mergeDoc(out[name], doc);
  };
  try {
    read();
  } finally {
    sink = prev;
  }
  return out;
}
