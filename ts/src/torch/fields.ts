/**
 * torch's constructor arguments on the shared field reader (core/fields.ts):
 * torch's names, defaults and the ValueError texts it raises.
 */
import { SpecError } from "../core/api";
import { parseExpr } from "../core/expr";
import { checkListLimit } from "../core/limits";
import { type FieldDoc, noteField } from "../core/schema";
import { Fields, type NumRule, checkNum, describe, join as joinPath, ruleText } from "../core/fields";

export const NOT_SPEC_FIELDS: Record<string, string> = {
  optimizer: "the optimizer is given by the groups, not the spec",
  last_epoch: "resume through state_dict, not last_epoch",
  verbose: "removed from torch; not part of a spec",
};

/** torch's readers on the shared field reader: None is a value to torch, never "use the default". */
export class TorchFields extends Fields {
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

export const inUnit: NumRule = { min: 0, max: 1 };

/** A Python number as an f-string prints it (ints as ints: JSON cannot tell 5.0 from 5). */
export const pyNum = (v: number): string => (Number.isInteger(v) ? String(v) : String(v).replace(/e([+-])(\d)$/, "e$10$2"));
export const positiveInt: NumRule = { integer: true, gt: 0 };
export const nonZero: NumRule = { ne: 0 };

