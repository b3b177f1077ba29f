/**
 * Reading one spec object field by field: each read validates, fills the
 * default and records the value in the canonical form; `done()` rejects
 * fields nobody read. Errors are SpecError(path, rule).
 */
import { SpecError } from "./api";
import { type FieldDoc, noteField } from "./schema";

export function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean" || v === null) return String(v);
  return Array.isArray(v) ? "an array" : "an object";
}

export function join(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

export interface NumRule {
  min?: number;
  max?: number;
  /** exclusive bounds */
  gt?: number;
  lt?: number;
  integer?: boolean;
}

/** A number rule as the schema publishes it. */
function numDoc(r: NumRule, dflt: unknown): Partial<FieldDoc> {
  const doc: Partial<FieldDoc> = { kind: r.integer ? "integer" : "number", required: dflt === undefined, rule: ruleText(r).replace("must be ", "") };
  if (dflt !== undefined) doc.default = dflt;
  for (const k of ["min", "max", "gt", "lt"] as const) if (r[k] !== undefined) doc[k] = r[k];
  return doc;
}

function ruleText(r: NumRule): string {
  const kind = r.integer ? "an integer" : "a number";
  const lo = r.gt !== undefined ? `(${r.gt}` : r.min !== undefined ? `[${r.min}` : null;
  const hi = r.lt !== undefined ? `${r.lt})` : r.max !== undefined ? `${r.max}]` : null;
  if (lo && hi) return `must be ${kind} in ${lo}, ${hi}`;
  if (lo) return `must be ${kind} ${r.gt !== undefined ? ">" : ">="} ${r.gt ?? r.min}`;
  if (hi) return `must be ${kind} ${r.lt !== undefined ? "<" : "<="} ${r.lt ?? r.max}`;
  return `must be ${kind}`;
}

export function checkNum(path: string, v: unknown, r: NumRule): number {
  const ok =
    typeof v === "number" &&
    Number.isFinite(v) &&
    (!r.integer || Number.isInteger(v)) &&
    (r.min === undefined || v >= r.min) &&
    (r.max === undefined || v <= r.max) &&
    (r.gt === undefined || v > r.gt) &&
    (r.lt === undefined || v < r.lt);
  if (!ok) throw new SpecError(path, `${ruleText(r)}, got ${describe(v)}`);
  return v as number;
}

export class Fields {
  readonly canonical: Record<string, unknown> = {};
  private readonly seen = new Set<string>();

  constructor(
    readonly path: string,
    readonly obj: Record<string, unknown>,
  ) {}

  static of(path: string, v: unknown): Fields {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw new SpecError(path, `must be an object, got ${describe(v)}`);
    }
    return new Fields(path, v as Record<string, unknown>);
  }

  at(key: string): string {
    return join(this.path, key);
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  raw(key: string): unknown {
    noteField(this.path, key, {});
    this.seen.add(key);
    return this.obj[key];
  }

  /**
   * Accept a field that does not change the values (a library's signature
   * takes it and ignores it): checked by `rule` if given, left out of the
   * canonical form, so the spec hashes as if it were absent.
   */
  ignore(key: string, rule?: NumRule): void {
    const v = this.raw(key);
    noteField(this.path, key, { ...numDoc(rule ?? {}, null), required: false, ignored: true });
    if (rule !== undefined && v !== undefined && v !== null) checkNum(this.at(key), v, rule);
  }

  /** Record a value in the canonical form. */
  put<T>(key: string, v: T): T {
    this.seen.add(key);
    this.canonical[key] = v;
    return v;
  }

  num(key: string, rule: NumRule, dflt?: number): number {
    const v = this.raw(key);
    noteField(this.path, key, numDoc(rule, dflt));
    if ((v === undefined || v === null) && dflt !== undefined) return this.put(key, dflt);
    if (v === undefined) throw new SpecError(this.at(key), `is required (${ruleText(rule).replace("must be ", "")})`);
    return this.put(key, checkNum(this.at(key), v, rule));
  }

  /** A number or null (null kept in the canonical form). */
  numOrNull(key: string, rule: NumRule, dflt: number | null): number | null {
    const v = this.raw(key);
    noteField(this.path, key, { ...numDoc(rule, dflt), rule: `${ruleText(rule).replace("must be ", "")} or null` });
    if (v === undefined) return this.put(key, dflt);
    if (v === null) return this.put(key, null);
    return this.put(key, checkNum(this.at(key), v, rule));
  }

  bool(key: string, dflt: boolean): boolean {
    const v = this.raw(key);
    noteField(this.path, key, { kind: "boolean", required: false, default: dflt, rule: "true or false" });
    if (v === undefined || v === null) return this.put(key, dflt);
    if (typeof v !== "boolean") throw new SpecError(this.at(key), `must be true or false, got ${describe(v)}`);
    return this.put(key, v);
  }

  oneOf<T extends string>(key: string, options: readonly T[], dflt?: T): T {
    const v = this.raw(key);
    noteField(this.path, key, { kind: "choice", required: dflt === undefined, options, ...(dflt === undefined ? {} : { default: dflt }) });
    if ((v === undefined || v === null) && dflt !== undefined) return this.put(key, dflt);
    if (typeof v !== "string" || !options.includes(v as T)) {
      throw new SpecError(this.at(key), `must be one of ${options.map((o) => JSON.stringify(o)).join(", ")}, got ${describe(v)}`);
    }
    return this.put(key, v as T);
  }

  /** An array of numbers, each checked by `rule`. */
  nums(key: string, rule: NumRule, dflt?: number[]): number[] {
    const v = this.raw(key);
    noteField(this.path, key, { ...numDoc(rule, dflt), kind: rule.integer ? "integers" : "numbers" });
    if ((v === undefined || v === null) && dflt !== undefined) return this.put(key, dflt);
    if (!Array.isArray(v)) throw new SpecError(this.at(key), `must be an array of numbers, got ${describe(v)}`);
    return this.put(
      key,
      v.map((x, i) => checkNum(join(this.at(key), i), x, rule)),
    );
  }

  /** Reject unknown fields. */
  done(): Record<string, unknown> {
    for (const k of Object.keys(this.obj)) {
      if (!this.seen.has(k) && this.obj[k] !== undefined) throw new SpecError(this.at(k), "unknown field");
    }
    return this.canonical;
  }
}
