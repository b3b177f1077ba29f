/**
 * The sandbox schedule modules run in: QuickJS compiled to WebAssembly
 * (quickjs-emscripten), never the server's own JS realm (node:vm is not a
 * security boundary). Every evaluation gets a fresh runtime and context,
 * with a memory limit, a stack limit and an interrupt-handler deadline; the
 * context has no Date, Promise, Math.random, require, process, timers or
 * I/O: its only library is `lrbridge/schedules`, loaded from this package's
 * own compiled files (dist/) by a small CommonJS loader inside QuickJS.
 *
 * The wasm module loads asynchronously once (`loadSandbox()`); after that
 * everything here is synchronous, so a spec with a module binds like any other.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, posix, resolve } from "node:path";
import {
  DefaultIntrinsics,
  type QuickJSContext,
  type QuickJSHandle,
  type QuickJSRuntime,
  type QuickJSWASMModule,
  getQuickJS,
} from "quickjs-emscripten";
import { SPEC_LIMITS } from "../core/limits";

/** The import a module may have: the schedule library. */
export const LIBRARY_IMPORT = "lrbridge/schedules";

let quickjs: QuickJSWASMModule | null = null;
let loading: Promise<void> | null = null;

/** Load the QuickJS wasm module (once per process). */
export function loadSandbox(): Promise<void> {
  loading ??= getQuickJS().then((q) => {
    quickjs = q;
  });
  return loading;
}

export function sandboxLoaded(): boolean {
  return quickjs !== null;
}

/** Why a sandbox evaluation failed. `step` is the step being computed, when there was one. */
export class SandboxError extends Error {
  constructor(
    readonly reason: "threw" | "time" | "memory" | "result",
    message: string,
    readonly step?: number,
  ) {
    super(message);
    this.name = "SandboxError";
  }
}

// -- the library inside the sandbox ------------------------------------------------------------

/** dist/ of this package: next to this file when running compiled, else the checkout's build. */
export function distDir(): string {
  const compiled = resolve(__dirname, "..");
  if (existsSync(join(compiled, "schedules.js"))) return compiled;
  const checkout = resolve(__dirname, "..", "..", "..", "dist");
  if (existsSync(join(checkout, "schedules.js"))) return checkout;
  throw new Error(`the schedule library is not built (no schedules.js in ${compiled} or ${checkout}): run npx tsc`);
}

let bundle: string | null = null;

/**
 * `lrbridge/schedules` and the compiled files it requires, as one script
 * that evaluates to the library's exports inside QuickJS. Only relative
 * requires are followed; the library must not need anything outside itself.
 */
export function libraryBundle(): string {
  if (bundle !== null) return bundle;
  const root = distDir();
  const sources = new Map<string, string>();
  const queue = ["schedules"];
  while (queue.length > 0) {
    const id = queue.pop()!;
    if (sources.has(id)) continue;
    const text = readFileSync(join(root, `${id}.js`), "utf8").replace(/\n\/\/# sourceMappingURL=.*$/m, "");
    sources.set(id, text);
    for (const m of text.matchAll(/require\("([^"]+)"\)/g)) {
      if (!m[1].startsWith(".")) throw new Error(`library file ${id}.js requires '${m[1]}': the sandbox library must be self-contained`);
      queue.push(posix.normalize(posix.join(posix.dirname(id), m[1])));
    }
  }
  const defs = [...sources.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([id, text]) => `${JSON.stringify(id)}: function (exports, require, module) {\n${text}\n}`)
    .join(",\n");
  bundle = `(function () {
  "use strict";
  var defs = {${defs}};
  var cache = {};
  function resolve(from, spec) {
    var parts = from.split("/");
    parts.pop();
    spec.split("/").forEach(function (p) {
      if (p === "..") parts.pop();
      else if (p !== ".") parts.push(p);
    });
    return parts.join("/");
  }
  function load(id) {
    if (cache[id]) return cache[id].exports;
    if (!defs[id]) throw new Error("no library file " + id);
    var m = { exports: {} };
    cache[id] = m;
    defs[id](m.exports, function (spec) { return load(resolve(id, spec)); }, m);
    return m.exports;
  }
  return load("schedules");
})()`;
  return bundle;
}

/**
 * What runs in the sandbox around the module: its require (the library
 * only), reading the default export, and computing values into a
 * Float64Array. `__at` is the step being computed, read by the host when an
 * evaluation is killed.
 */
const PRELUDE = `
delete Math.random;
(function () {
  // QuickJS's native fill runs without reaching the interrupt handler (and, on a
  // large sparse array under memory pressure, for seconds): this one can be stopped.
  function fill(value, start, end) {
    var n = this.length >>> 0;
    var i = start === undefined ? 0 : start < 0 ? Math.max(n + start, 0) : Math.min(start, n);
    var stop = end === undefined ? n : end < 0 ? Math.max(n + end, 0) : Math.min(end, n);
    for (; i < stop; i++) this[i] = value;
    return this;
  }
  Object.defineProperty(Array.prototype, "fill", { value: fill, writable: true, configurable: true });
})();
var __lib = /*LIBRARY*/;
var __at = -1;
var __value = null;
function __require(name) {
  if (name === ${JSON.stringify(LIBRARY_IMPORT)}) return __lib;
  throw new Error("only ${LIBRARY_IMPORT} can be imported, got '" + String(name) + "'");
}
function __evaluate(code, paramsJson) {
  var module = { exports: {} };
  new Function("exports", "require", "module", code)(module.exports, __require, module);
  var d = module.exports && module.exports.default !== undefined ? module.exports.default : module.exports;
  var v = d;
  if (typeof d === "function" && !("spec" in d)) v = d(JSON.parse(paramsJson));
  if (typeof v === "function") __value = { lr: v, momentum: null };
  else if (v !== null && typeof v === "object" && typeof v.lr === "function") {
    if (v.momentum !== undefined && v.momentum !== null && typeof v.momentum !== "function") {
      throw new TypeError("momentum must be a schedule, got " + typeof v.momentum);
    }
    __value = { lr: v.lr, momentum: typeof v.momentum === "function" ? v.momentum : null };
  } else {
    throw new TypeError("the default export must be a schedule, {lr, momentum}, or a function of params returning one; got " + (v === null ? "null" : typeof v));
  }
  var lrSpec = __value.lr.spec;
  var momSpec = __value.momentum ? __value.momentum.spec : undefined;
  var described = lrSpec !== undefined && (__value.momentum === null || momSpec !== undefined);
  return JSON.stringify({
    described: described,
    lr: described ? lrSpec : null,
    momentum: described && __value.momentum ? momSpec : null,
    hasMomentum: __value.momentum !== null
  });
}
function __values(steps) {
  var n = steps.length;
  var out = new Float64Array(__value.momentum ? 2 * n : n);
  for (var k = 0; k < n; k++) {
    __at = steps[k];
    var v = __value.lr(steps[k]);
    out[k] = typeof v === "number" ? v : NaN;
  }
  if (__value.momentum) {
    for (var k = 0; k < n; k++) {
      __at = steps[k];
      var m = __value.momentum(steps[k]);
      out[n + k] = typeof m === "number" ? m : NaN;
    }
  }
  __at = -1;
  return out.buffer;
}
function __range(start, count) {
  var steps = new Array(count);
  for (var k = 0; k < count; k++) steps[k] = start + k;
  return __values(steps);
}
`;

function prelude(): string {
  return PRELUDE.replace("/*LIBRARY*/", () => libraryBundle());
}

// -- sandbox time per request ------------------------------------------------------------------

/** Sandbox time spent in the current synchronous job (a server handles one request per job). */
let turnSpentMs = 0;
let resetQueued = false;

function charge(ms: number): void {
  turnSpentMs += ms;
  if (!resetQueued) {
    resetQueued = true;
    queueMicrotask(() => {
      turnSpentMs = 0;
      resetQueued = false;
    });
  }
}

// -- evaluating a module -----------------------------------------------------------------------

/** What the module's default export came to. */
export interface Description {
  /** built only from library pieces: `lr` (and `momentum`) are specs the host computes */
  described: boolean;
  lr: unknown;
  momentum: unknown;
  hasMomentum: boolean;
}

/** Time the library itself may take to load in a fresh context (trusted code, not the module's). */
const LIBRARY_LOAD_MS = 5000;

/**
 * One module loaded in its own fresh QuickJS runtime and context. The
 * library and the module are evaluated once; each later call of `values` or
 * `range` is one evaluation within module_eval_ms (and what is left of
 * module_request_ms for this turn). After a failure the sandbox is spent:
 * dispose it.
 */
export class Sandbox {
  readonly description: Description;
  private readonly runtime: QuickJSRuntime;
  private readonly ctx: QuickJSContext;
  private deadline = 0;
  private interrupted = false;
  private readonly per: number;
  private disposed = false;

  constructor(code: string, paramsJson: string) {
    if (!quickjs) throw new Error("the sandbox is not loaded (await loadSandbox() first)");
    this.runtime = quickjs.newRuntime();
    this.runtime.setMemoryLimit(SPEC_LIMITS.module_memory_bytes);
    this.runtime.setMaxStackSize(SPEC_LIMITS.module_stack_bytes);
    this.runtime.setInterruptHandler(() => {
      if (performance.now() > this.deadline) this.interrupted = true;
      return this.interrupted;
    });
    this.ctx = this.runtime.newContext({ intrinsics: { ...DefaultIntrinsics, Date: false, Promise: false } });
    try {
      this.deadline = performance.now() + LIBRARY_LOAD_MS;
      const setup = this.ctx.evalCode(prelude(), "prelude.js");
      if (setup.error) this.fail(setup.error, undefined);
      else setup.value.dispose();
      const codeH = this.ctx.newString(code);
      const paramsH = this.ctx.newString(paramsJson);
      try {
        const d = this.call("__evaluate", [codeH, paramsH], undefined);
        try {
          this.description = JSON.parse(this.ctx.getString(d)) as Description;
        } finally {
          d.dispose();
        }
      } finally {
        codeH.dispose();
        paramsH.dispose();
      }
      this.per = this.description.hasMomentum ? 2 : 1;
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  /** lr values at `steps`, then momentum values when the module has momentum. */
  values(steps: number[]): Float64Array {
    const arr = this.ctx.newArray();
    try {
      steps.forEach((s, i) => {
        const n = this.ctx.newNumber(s);
        this.ctx.setProp(arr, i, n);
        n.dispose();
      });
      return this.floats(this.call("__values", [arr], steps[0]), steps.length * this.per, steps[0]);
    } finally {
      arr.dispose();
    }
  }

  /** The same for the steps start, …, start + count − 1. */
  range(start: number, count: number): Float64Array {
    const a = this.ctx.newNumber(start);
    const b = this.ctx.newNumber(count);
    try {
      return this.floats(this.call("__range", [a, b], start), count * this.per, start);
    } finally {
      a.dispose();
      b.dispose();
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.ctx.dispose();
    this.runtime.dispose();
  }

  private timed<R>(step: number | undefined, run: () => R): R {
    const budget = Math.min(SPEC_LIMITS.module_eval_ms, SPEC_LIMITS.module_request_ms - turnSpentMs);
    if (budget <= 0) throw new SandboxError("time", `over the limit module_request_ms = ${SPEC_LIMITS.module_request_ms}`, step);
    const t0 = performance.now();
    this.deadline = t0 + budget;
    this.interrupted = false;
    try {
      return run();
    } finally {
      charge(performance.now() - t0);
    }
  }

  private fail(errHandle: QuickJSHandle, step: number | undefined): never {
    const at = atStep(this.ctx) ?? step;
    let detail: string;
    try {
      const e = this.ctx.dump(errHandle) as unknown;
      detail =
        e !== null && typeof e === "object" && "message" in e
          ? `${String((e as { name?: unknown }).name ?? "Error")}: ${String((e as { message: unknown }).message)}`
          : String(e);
    } catch {
      detail = "an exception";
    } finally {
      errHandle.dispose();
    }
    if (this.interrupted) throw new SandboxError("time", `over the limit module_eval_ms = ${SPEC_LIMITS.module_eval_ms}`, at);
    if (/out of memory/i.test(detail)) throw new SandboxError("memory", `over the limit module_memory_bytes = ${SPEC_LIMITS.module_memory_bytes}`, at);
    if (/stack overflow/i.test(detail)) throw new SandboxError("memory", `over the limit module_stack_bytes = ${SPEC_LIMITS.module_stack_bytes}`, at);
    throw new SandboxError("threw", `threw ${detail.slice(0, 500)}`, at);
  }

  private call(fn: string, args: QuickJSHandle[], step: number | undefined): QuickJSHandle {
    if (this.disposed) throw new Error("sandbox used after dispose");
    const f = this.ctx.getProp(this.ctx.global, fn);
    try {
      const r = this.timed(step, () => this.ctx.callFunction(f, this.ctx.undefined, ...args));
      if (r.error) return this.fail(r.error, step);
      return r.value;
    } finally {
      f.dispose();
    }
  }

  private floats(h: QuickJSHandle, expected: number, step: number | undefined): Float64Array {
    try {
      if (this.ctx.typeof(h) !== "object") throw new SandboxError("result", "returned no values", step);
      const buf = this.ctx.getArrayBuffer(h);
      try {
        if (buf.value.byteLength !== expected * 8) throw new SandboxError("result", "returned the wrong number of values", step);
        return new Float64Array(buf.value.slice().buffer);
      } finally {
        buf.dispose();
      }
    } finally {
      h.dispose();
    }
  }
}

/** Load a module in a fresh sandbox, run `use` on it, dispose it whatever happens. */
export function withModule<T>(code: string, paramsJson: string, use: (m: Sandbox) => T): T {
  const box = new Sandbox(code, paramsJson);
  try {
    return use(box);
  } finally {
    box.dispose();
  }
}

/** The step the sandbox was computing (`__at`), if any. */
function atStep(ctx: QuickJSContext): number | undefined {
  try {
    const h = ctx.getProp(ctx.global, "__at");
    try {
      const v = ctx.typeof(h) === "number" ? ctx.getNumber(h) : -1;
      return Number.isInteger(v) && v >= 0 ? v : undefined;
    } finally {
      h.dispose();
    }
  } catch {
    return undefined;
  }
}

/** The package version: the library version modules are built against. */
let version: string | null = null;
export function libraryVersion(): string {
  version ??= (JSON.parse(readFileSync(join(dirname(distDir()), "package.json"), "utf8")) as { version: string }).version;
  return version;
}
