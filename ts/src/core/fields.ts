/**
 * Reading one spec object field by field, for both families: each read
 * validates, fills the default and records the value in the canonical form;
 * `done()` rejects fields nobody read. Errors are SpecError(path, rule) with
 * one wording (`must be a number in [0, 1], got 1.5`); a rule may carry the
 * text torch raises for the same value, which the drop-in raises verbatim.
 */
import { type PyException, SpecError } from "./api";
import { type FieldDoc, noteField } from "./schema";

/** A value as an error message shows it: JSON when short, else its kind. */
export function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "number" || typeof v === "boolean" || v === null) return String(v);
  if (typeof v === "bigint") return `${v}n`;
  const json = JSON.stringify(v);
  if (json !== undefined && json.length <= 60) return json;
  return typeof v === "string" ? JSON.stringify(`${v.slice(0, 40)}…`) : Array.isArray(v) ? "an array" : "an object";
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
  /** a value the number must not be */
  ne?: number;
  integer?: boolean;
  /** torch's own ValueError text for a value it refuses (the drop-in raises it) */
  torch?: (v: number) => string;
}

/** torch raises ValueError with this text. */
export const valueError = (message: string): PyException => ({ type: "ValueError", message });

/** A number rule as the schema publishes it. */
function numDoc(r: NumRule, dflt: unknown): Partial<FieldDoc> {
  const doc: Partial<FieldDoc> = { kind: r.integer ? "integer" : "number", required: dflt === undefined, rule: ruleText(r).replace("must be ", "") };
  if (dflt !== undefined) doc.default = dflt;
  for (const k of ["min", "max", "gt", "lt"] as const) if (r[k] !== undefined) doc[k] = r[k];
  return doc;
}

export function ruleText(r: NumRule): string {
  const kind = r.ne === 0 ? (r.integer ? "a nonzero integer" : "a nonzero number") : r.integer ? "an integer" : "a number";
  if (r.integer && r.gt === 0 && r.min === undefined && r.max === undefined && r.lt === undefined) return "must be a positive integer";
  const lo = r.gt !== undefined ? `(${r.gt}` : r.min !== undefined ? `[${r.min}` : null;
  const hi = r.lt !== undefined ? `${r.lt})` : r.max !== undefined ? `${r.max}]` : null;
  if (lo && hi) return `must be ${kind} in ${lo}, ${hi}`;
  if (lo) return `must be ${kind} ${r.gt !== undefined ? ">" : ">="} ${r.gt ?? r.min}`;
  if (hi) return `must be ${kind} ${r.lt !== undefined ? "<" : "<="} ${r.lt ?? r.max}`;
  return `must be ${kind}`;
}

export function checkNum(path: string, v: unknown, r: NumRule): number {
  const isNumber = typeof v === "number" && Number.isFinite(v) && (!r.integer || Number.isInteger(v));
  const inRange =
    isNumber &&
    (r.min === undefined || v >= r.min) &&
    (r.max === undefined || v <= r.max) &&
    (r.gt === undefined || v > r.gt) &&
    (r.lt === undefined || v < r.lt) &&
    (r.ne === undefined || v !== r.ne);
  if (!inRange) {
    // torch's text only for a number it refuses: other values fail differently in Python.
    const py = isNumber && r.torch ? valueError(r.torch(v as number)) : undefined;
    throw new SpecError(path, `${ruleText(r)}, got ${describe(v)}`, py);
  }
  return v as number;
}

export class Fields {
  readonly canonical: Record<string, unknown> = {};
  protected readonly seen = new Set<string>();

  /**
   * `type` names the spec's type in messages. `nullIsDefault`: a null field
   * takes its default (the library's JSON grammar); torch's readers pass
   * false, since torch would take None as a value.
   */
  constructor(
    readonly path: string,
    readonly obj: Record<string, unknown>,
    readonly type?: string,
    protected readonly nullIsDefault = true,
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

  fail(key: string, rule: string, torch?: string): never {
    throw new SpecError(this.at(key), rule, torch === undefined ? undefined : valueError(torch));
  }

  /** The one wording of a missing required field. */
  protected missing(key: string, rule: string): never {
    throw new SpecError(this.at(key), `is required${this.type ? ` by ${this.type}` : ""} (${rule})`);
  }

  /** Absent, or null where null means the default. */
  protected absent(v: unknown): boolean {
    return v === undefined || (v === null && this.nullIsDefault);
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
    if (this.absent(v)) {
      if (dflt === undefined) this.missing(key, ruleText(rule).replace("must be ", ""));
      return this.put(key, dflt);
    }
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
    if (this.absent(v)) return this.put(key, dflt);
    if (typeof v !== "boolean") throw new SpecError(this.at(key), `must be true or false, got ${describe(v)}`);
    return this.put(key, v);
  }

  /** One of `options`; `torch` gives torch's text for another string. */
  oneOf<T extends string>(key: string, options: readonly T[], dflt?: T, torch?: (v: string) => string): T {
    const v = this.raw(key);
    const what = `one of ${options.map((o) => JSON.stringify(o)).join(", ")}`;
    noteField(this.path, key, { kind: "choice", required: dflt === undefined, options, rule: what, ...(dflt === undefined ? {} : { default: dflt }) });
    if (this.absent(v)) {
      if (dflt === undefined) this.missing(key, what);
      return this.put(key, dflt);
    }
    if (typeof v !== "string" || !options.includes(v as T)) {
      this.fail(key, `must be ${what}, got ${describe(v)}`, torch && typeof v === "string" ? torch(v) : undefined);
    }
    return this.put(key, v as T);
  }

  /** An array of numbers, each checked by `rule`. */
  nums(key: string, rule: NumRule, dflt?: number[]): number[] {
    const v = this.raw(key);
    noteField(this.path, key, { ...numDoc(rule, dflt), kind: rule.integer ? "integers" : "numbers" });
    if (this.absent(v) && dflt !== undefined) return this.put(key, dflt);
    if (!Array.isArray(v)) this.fail(key, `must be an array of ${rule.integer ? "integers" : "numbers"}, got ${describe(v)}`);
    return this.put(
      key,
      v.map((x, i) => checkNum(join(this.at(key), i), x, rule)),
    );
  }

  /** Reject unknown fields; `why` explains fields a user may expect to exist. */
  done(why: Record<string, string> = {}): Record<string, unknown> {
    for (const k of Object.keys(this.obj)) {
      if (!this.seen.has(k) && this.obj[k] !== undefined) this.fail(k, (Object.hasOwn(why, k) ? why[k] : undefined) ?? `unknown field${this.type ? ` for ${this.type}` : ""}`);
    }
    return this.canonical;
  }
}
