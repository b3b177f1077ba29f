/**
 * `{"type": "module", "code": JS, "library": VERSION, "params": {...}}`: a
 * schedule written as code (compile.ts makes one from a TypeScript file).
 * The node is content: its canonical form is the code, the library version
 * it was built against and the params, so the handle's hash, the cache and
 * a registry version all cover exactly those.
 *
 * Binding one evaluates the code in the sandbox (sandbox.ts) with the params:
 *   - built only from library pieces, the default export describes a spec of
 *     the JSON grammar, which the host parses and computes itself: the values
 *     are those of the equivalent JSON spec, bit for bit;
 *   - with custom arithmetic (a plain function of the step), the values are
 *     computed inside the sandbox, a block of rows per evaluation, and cached
 *     by (hash, start, count). QuickJS's Math is its own (wasm libm), so such
 *     values may differ in the last bits from what V8 would compute; they are
 *     the same on every server.
 * Either way the schedule is probed when bound: every probe step must give a
 * finite value ≥ 0, and the same bits again when asked twice.
 */
import { Refusal, SpecError } from "../core/api";
import { contentHash } from "../core/canonical";
import { describe } from "../core/fields";
import { SPEC_LIMITS, checkSpecShape, overLimit } from "../core/limits";
import { noteField, unrecorded } from "../core/schema";
import { type Parsed, parseSchedule, setModuleParser } from "../library/parse";
import type { GroupSchedule } from "../library/types";
import { LIBRARY_IMPORT, Sandbox, SandboxError, libraryVersion } from "./sandbox";

/** Steps every module is probed at when bound. */
export const PROBE_STEPS: readonly number[] = [0, 1, 2, 3, 7, 10, 99, 100, 1000, 4097, 10_000, 100_000, 1_000_000, 10_000_000];

/** Rows one sandbox evaluation computes for a custom module (the cache's unit). */
export const BLOCK_ROWS = 1024;

const RESOLVED_CAPACITY = 256;
const BLOCK_CAPACITY = 1024;
/** Custom modules kept loaded, each in its own sandbox (a few MiB each). */
const SANDBOX_CAPACITY = 8;

interface Resolved {
  hash: string;
  code: string;
  params: string;
  /** the specs the module describes, when it is built only from library pieces */
  lr: Record<string, unknown> | null;
  momentum: Record<string, unknown> | null;
  hasMomentum: boolean;
}

/** Modules already evaluated, by content hash: a second open does not run the sandbox again. */
const resolvedCache = new Map<string, Resolved>();
/** Custom modules' blocks of rows, by `hash:start:count` (lr, then momentum). */
const blockCache = new Map<string, Float64Array>();
/** Live sandboxes of custom modules, by content hash, least recently used first. */
const sandboxes = new Map<string, Sandbox>();

/**
 * Run `use` on the module's live sandbox, loading it first if needed. A
 * sandbox that failed is dropped (its state is unknown); the next use loads
 * the module afresh.
 */
function inSandbox<T>(r: Resolved, use: (box: Sandbox) => T): T {
  let box = recall(sandboxes, r.hash);
  if (!box) {
    box = new Sandbox(r.code, r.params);
    sandboxes.set(r.hash, box);
    while (sandboxes.size > SANDBOX_CAPACITY) {
      const [oldest, old] = sandboxes.entries().next().value!;
      sandboxes.delete(oldest);
      old.dispose();
    }
  }
  try {
    return use(box);
  } catch (err) {
    sandboxes.delete(r.hash);
    box.dispose();
    throw err;
  }
}

function remember<V>(cache: Map<string, V>, key: string, value: V, capacity: number): V {
  cache.delete(key);
  cache.set(key, value);
  if (cache.size > capacity) cache.delete(cache.keys().next().value!);
  return value;
}

function recall<V>(cache: Map<string, V>, key: string): V | undefined {
  const v = cache.get(key);
  if (v !== undefined) {
    cache.delete(key);
    cache.set(key, v);
  }
  return v;
}

/** 0.x: same minor; from 1.0: same major (semver). */
function compatible(built: string, here: string): boolean {
  const a = built.split(".");
  const b = here.split(".");
  return a[0] === b[0] && (a[0] !== "0" || a[1] === b[1]);
}

/** Nesting of module evaluation: a module's spec may not hold another module. */
let inModule = 0;

function parseModule(f: import("../core/fields").Fields): Parsed {
  if (inModule > 0) throw new SpecError(f.at("type"), "a module's schedule cannot contain another module");
  noteField(f.path, "code", { kind: "string", required: true, rule: `JavaScript whose only import is ${LIBRARY_IMPORT} (lrbridge compile makes it from TypeScript)` });
  const code = f.raw("code");
  if (typeof code !== "string" || code.length === 0) throw new SpecError(f.at("code"), `must be the module's JavaScript, got ${describe(code)}`);
  if (code.length > SPEC_LIMITS.module_code_length) overLimit(f.at("code"), "module_code_length", `${code.length} characters of code`);
  f.put("code", code);
  noteField(f.path, "library", { kind: "string", required: true, rule: "the lrbridge version the module was built against" });
  const library = f.raw("library");
  if (typeof library !== "string" || !/^\d+\.\d+\.\d+/.test(library)) throw new SpecError(f.at("library"), `must be a version like "0.1.0", got ${describe(library)}`);
  const here = libraryVersion();
  if (!compatible(library, here)) {
    throw new SpecError(f.at("library"), `the module was built against ${LIBRARY_IMPORT} ${library}; this server has ${here}: build it again`);
  }
  f.put("library", library);
  noteField(f.path, "params", { kind: "object", required: false, default: {}, rule: "an object, passed to the module's default export when it is a function" });
  const raw = f.raw("params");
  if (raw !== undefined && (raw === null || typeof raw !== "object" || Array.isArray(raw))) {
    throw new SpecError(f.at("params"), `must be an object, got ${describe(raw)}`);
  }
  const params = (raw ?? {}) as Record<string, unknown>;
  f.put("params", params);
  const canonical = f.done();
  const r = resolve(f.at("code"), canonical, code, params);
  // the spec a module describes is the module's content, not fields of this node
  const parsed = unrecorded(() => (r.lr ? described(f.at("code"), r) : custom(r)));
  if (f.path !== "" && parsed.momentum) throw new SpecError(f.at("code"), "a module with momentum must be the whole spec (momentum is set at the top level)");
  probe(f.at("code"), parsed, r);
  return { ...parsed, canonical };
}

function sandboxSpecError(path: string, err: unknown): never {
  if (err instanceof SandboxError) {
    throw new SpecError(path, `the module ${err.message}${err.step === undefined ? "" : ` at step ${err.step}`}`);
  }
  throw err;
}

/** Evaluate the module's default export (once per content hash). */
function resolve(path: string, canonical: Record<string, unknown>, code: string, params: Record<string, unknown>): Resolved {
  const hash = contentHash(canonical);
  const hit = recall(resolvedCache, hash);
  if (hit) return hit;
  const paramsJson = JSON.stringify(params);
  let d;
  try {
    d = inSandbox({ hash, code, params: paramsJson, lr: null, momentum: null, hasMomentum: false }, (box) => box.description);
  } catch (err) {
    sandboxSpecError(path, err);
  }
  if (d.described) {
    // computed by the host from now on: its sandbox is not needed
    sandboxes.get(hash)?.dispose();
    sandboxes.delete(hash);
  }
  const asSpec = (v: unknown, what: string): Record<string, unknown> | null => {
    if (!d.described) return null;
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new SpecError(path, `the module's ${what} is not a spec, got ${describe(v)}`);
    const n = checkSpecShape(v, 1, `${path}(${what})`);
    if (n > SPEC_LIMITS.module_schedules) overLimit(path, "module_schedules", `a module of ${n} schedules`);
    return v as Record<string, unknown>;
  };
  return remember(
    resolvedCache,
    hash,
    { hash, code, params: paramsJson, lr: asSpec(d.lr, "lr"), momentum: d.hasMomentum ? asSpec(d.momentum, "momentum") : null, hasMomentum: d.hasMomentum },
    RESOLVED_CAPACITY,
  );
}

/** Library pieces only: the host parses the spec the module describes. */
function described(path: string, r: Resolved): Omit<Parsed, "canonical"> {
  inModule++;
  try {
    const lr = parseSchedule("", r.lr);
    const momentum = r.momentum ? parseSchedule("", r.momentum).schedule.lr(1) : lr.momentum;
    return { schedule: lr.schedule, momentum };
  } catch (err) {
    if (err instanceof SpecError) throw new SpecError(path, `the module's schedule is invalid: ${err.message}`);
    throw err;
  } finally {
    inModule--;
  }
}

/** A module failed while serving rows: REFUSED, naming the module and the step. */
export class ModuleFailure extends Refusal {
  constructor(hash: string, step: number | undefined, what: string) {
    const text = `module ${hash.slice(0, 12)}${step === undefined ? "" : ` at step ${step}`}: ${what}`;
    super("spec", { type: "RuntimeError", message: text }, step);
    this.message = `spec: ${text}`;
  }
}

/** Custom arithmetic: rows computed in the sandbox, one block per evaluation. */
function custom(r: Resolved): Omit<Parsed, "canonical"> {
  const per = r.hasMomentum ? 2 : 1;
  const block = (t: number): [Float64Array, number] => {
    const start = Math.floor(t / BLOCK_ROWS) * BLOCK_ROWS;
    const key = `${r.hash}:${start}:${BLOCK_ROWS}`;
    let values = recall(blockCache, key);
    if (!values) {
      try {
        values = inSandbox(r, (box) => box.range(start, BLOCK_ROWS));
      } catch (err) {
        if (err instanceof SandboxError) throw new ModuleFailure(r.hash, err.step, err.message);
        throw err;
      }
      const bad = firstBad(values, BLOCK_ROWS, per);
      if (bad !== null) throw new ModuleFailure(r.hash, start + bad.row, `gave ${bad.value} (values must be finite and >= 0)`);
      remember(blockCache, key, values, BLOCK_CAPACITY);
    }
    return [values, t - start];
  };
  const lrAt = (t: number): number => {
    const [v, k] = block(t);
    return v[k];
  };
  const schedule: GroupSchedule = { lr: (base) => (t) => base * lrAt(t) };
  const momentum = r.hasMomentum
    ? (t: number): number => {
        const [v, k] = block(t);
        return v[BLOCK_ROWS + k];
      }
    : undefined;
  return { schedule, momentum };
}

function firstBad(values: Float64Array, n: number, per: number): { row: number; value: number } | null {
  for (let j = 0; j < per; j++) {
    for (let k = 0; k < n; k++) {
      const v = values[j * n + k];
      if (!(Number.isFinite(v) && v >= 0)) return { row: k, value: v };
    }
  }
  return null;
}

/** Every probe step gives a finite value ≥ 0, and the same bits when asked again in another order. */
function probe(path: string, parsed: Omit<Parsed, "canonical">, r: Resolved): void {
  const steps = [...PROBE_STEPS];
  const check = (what: string, values: ArrayLike<number>): void => {
    for (let i = 0; i < steps.length; i++) {
      const v = values[i];
      if (!(Number.isFinite(v) && v >= 0)) throw new SpecError(path, `the module's ${what} at step ${steps[i]} is ${v}: values must be finite and >= 0`);
    }
  };
  if (r.lr) {
    const lr = parsed.schedule.lr(1);
    check("lr", steps.map(lr));
    if (parsed.momentum) check("momentum", steps.map(parsed.momentum));
    return;
  }
  let forward: Float64Array;
  let backward: Float64Array;
  try {
    [forward, backward] = inSandbox(r, (box) => [box.values(steps), box.values([...steps].reverse())]);
  } catch (err) {
    sandboxSpecError(path, err);
  }
  const n = steps.length;
  check("lr", forward.subarray(0, n));
  if (r.hasMomentum) check("momentum", forward.subarray(n, 2 * n));
  for (let j = 0; j < (r.hasMomentum ? 2 : 1); j++) {
    for (let i = 0; i < n; i++) {
      const a = forward[j * n + i];
      const b = backward[j * n + (n - 1 - i)];
      if (!Object.is(a, b)) {
        throw new SpecError(path, `the module's ${j ? "momentum" : "lr"} is not repeatable: step ${steps[i]} gave ${a}, then ${b}`);
      }
    }
  }
}

setModuleParser(parseModule);
