/**
 * Schedules written as TypeScript modules: compile (imports, type check),
 * the spec node's hash, bit-for-bit equality with the equivalent JSON spec,
 * and the sandbox's limits against hostile code (given as the JavaScript a
 * server would receive, since a server never sees the TypeScript).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bind } from "../src/bind";
import { SpecError } from "../src/core/api";
import { contentHash } from "../src/core/canonical";
import { SPEC_LIMITS } from "../src/core/limits";
import { CompileError, ModuleFailure, libraryVersion, loadSandbox } from "../src/modules";
import { compileModule } from "../src/modules/compile";

let dir: string;

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function node(code: string, params: Record<string, unknown> = {}) {
  return { type: "module", code, library: libraryVersion(), params };
}

const GROUPS = [{ lr: 0.1, momentum: 0.9 }, { lr: 0.02, momentum: 0.8 }];

function rows(spec: unknown, count: number, groups = GROUPS) {
  return bind(spec, groups).rows(0, count);
}

function expectSameBits(a: Float64Array | null, b: Float64Array | null): void {
  expect(a === null).toBe(b === null);
  if (!a || !b) return;
  expect(a.length).toBe(b.length);
  const differ = Array.from(a).findIndex((v, i) => !Object.is(v, b[i]));
  expect(differ, `first difference at ${differ}: ${a[differ]} vs ${b[differ]}`).toBe(-1);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lrbridge-modules-"));
  await loadSandbox();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a module built from library pieces", () => {
  const cases: [string, string, Record<string, unknown>, Record<string, unknown>][] = [
    [
      "join of a warmup ramp and REX (a factory of params)",
      `import { join, warmup, rex } from "lrbridge/schedules";
export default (p: { total: number; warm: number }) => join([warmup.linear(p.warm), rex(p.total - p.warm)], [p.warm]);`,
      { total: 1000, warm: 100 },
      { type: "join", schedules: [{ type: "linear", total_steps: 100, start: 0, end: 1 }, { type: "rex", total_steps: 900 }], boundaries: [100] },
    ],
    [
      "warmup, sample, multiply and cycles",
      `import { warmup, sample, multiply, cycles, cosine, step } from "lrbridge/schedules";
export default warmup(50, multiply([sample(cosine(2000, { end: 0.1 }), { every: 25 }), cycles(300, { shape: "rex", cycleDecay: 0.7, end: 0.05 })]), { shape: "cosine" });`,
      {},
      {
        type: "warmup",
        steps: 50,
        shape: "cosine",
        then: {
          type: "multiply",
          schedules: [
            { type: "sample", schedule: { type: "cosine", total_steps: 2000, end: 0.1 }, every: 25 },
            { type: "cycles", t_initial: 300, shape: "rex", cycle_decay: 0.7, end: 0.05 },
          ],
        },
      },
    ],
    [
      "an lr schedule with its momentum",
      `import { oneMinusSqrt, piecewise, wsd } from "lrbridge/schedules";
export default (p: { total: number }) => ({ lr: wsd({ warmupSteps: 10, decaySteps: p.total / 5, totalSteps: p.total }), momentum: piecewise([100], [0.85, 0.95]) });`,
      { total: 1500 },
      { type: "wsd", warmup_steps: 10, decay_steps: 300, total_steps: 1500, momentum: { type: "piecewise", boundaries: [100], values: [0.85, 0.95] } },
    ],
    [
      "a recipe with its own momentum (one_cycle)",
      `import { oneCycle } from "lrbridge/schedules";
export default oneCycle(1200, { pctStart: 0.3 });`,
      {},
      { type: "one_cycle", total_steps: 1200, pct_start: 0.3 },
    ],
  ];
  for (const [name, source, params, json] of cases) {
    it(`gives the JSON spec's values bit for bit: ${name}`, () => {
      const spec = compileModule(file(`${contentHash(name).slice(0, 8)}.ts`, source), params);
      const a = rows(spec, 3000);
      const b = rows(json, 3000);
      expectSameBits(a.lr, b.lr);
      expectSameBits(a.momentum, b.momentum);
    });
  }

  it("is content: the same source twice has the same hash, a one-character change another", () => {
    const source = `import { cosine } from "lrbridge/schedules";\nexport default cosine(1000, { end: 0.01 });\n`;
    const a = bind(compileModule(file("h1.ts", source)), GROUPS);
    const b = bind(compileModule(file("h2.ts", source)), GROUPS);
    const c = bind(compileModule(file("h3.ts", source.replace("0.01", "0.02"))), GROUPS);
    const d = bind(compileModule(file("h4.ts", source + "// v2\n")), GROUPS);
    expect(a.specHash).toBe(b.specHash);
    expect(c.specHash).not.toBe(a.specHash);
    expect(d.specHash).not.toBe(a.specHash);
    expect(bind(compileModule(file("h1.ts", source), { x: 1 }), GROUPS).specHash).not.toBe(a.specHash);
    expect(a.canonical).toMatchObject({ type: "module", library: libraryVersion(), params: {} });
  });
});

describe("custom arithmetic", () => {
  it("runs in the sandbox, close to V8's arithmetic, and names its failures' steps", () => {
    const spec = compileModule(
      file(
        "custom.ts",
        `import { cosine } from "lrbridge/schedules";
export default (p: { total: number }) => {
  const c = cosine(p.total);
  return { lr: (t: number) => 0.5 * c(t) + 0.5 * Math.exp(-t / p.total), momentum: (t: number) => 0.9 - 0.05 * Math.sin(t / 100) ** 2 };
};`,
      ),
      { total: 5000 },
    );
    const r = rows(spec, 2500);
    for (const k of [0, 1, 999, 1024, 2499]) {
      const want = 0.5 * (0.5 * (1 + Math.cos((Math.PI * k) / 5000))) + 0.5 * Math.exp(-k / 5000);
      expect(r.lr[k * 2] / 0.1).toBeCloseTo(want, 12);
      expect(r.momentum![k * 2 + 1]).toBeCloseTo(0.9 - 0.05 * Math.sin(k / 100) ** 2, 12);
    }
    // a step where the module throws: a typed failure naming the step, at serving time
    const bound = bind(node(`exports.default = function () { return function (t) { if (t >= 1500 && t < 2000) throw new Error("boom"); return 1; }; };`), GROUPS);
    expect(() => bound.rows(1024, 1024)).toThrow(ModuleFailure);
    expect(() => bound.rows(1024, 1024)).toThrow(/step 1500: threw Error: boom/);
    expect(Array.from(bound.rows(0, 3).lr)).toEqual([0.1, 0.02, 0.1, 0.02, 0.1, 0.02]);
  });
});

describe("compile", () => {
  it("refuses any import but lrbridge/schedules, with file:line:col", () => {
    expect(() => compileModule(file("fs.ts", `import * as fs from "fs";\nexport default () => 1;`))).toThrow(/fs.ts:1:1: only lrbridge\/schedules can be imported, got 'fs'/);
    expect(() => compileModule(file("req.ts", `const fs = require("fs");\nexport default () => 1;`))).toThrow(CompileError);
    expect(() => compileModule(file("dyn.ts", `export default async () => (await import("node:os")).cpus().length;`))).toThrow(/got 'node:os'/);
    expect(() => compileModule(file("reexp.ts", `export * from "./other";`))).toThrow(/got '.\/other'/);
  });

  it("type-checks against the library and without Node's globals", () => {
    expect(() => compileModule(file("proc.ts", `export default () => (t: number) => process.pid;`))).toThrow(/Cannot find name 'process'/);
    expect(() => compileModule(file("typo.ts", `import { cosine } from "lrbridge/schedules";\nexport default cosine("1000");`))).toThrow(/not assignable to parameter of type 'number'/);
  });

  it("refuses arguments the library refuses, naming the field", () => {
    const spec = compileModule(file("neg.ts", `import { cosine } from "lrbridge/schedules";\nexport default cosine(-5);`));
    expect(() => bind(spec, GROUPS)).toThrow(/total_steps: must be an integer >= 1/);
  });
});

describe("the probe and the sandbox's limits", () => {
  const refused: [string, string, RegExp][] = [
    ["an infinite loop when loaded", `while (true) {}`, /over the limit module_eval_ms/],
    ["an infinite loop in the schedule", `exports.default = function () { return function (t) { for (;;) {} }; };`, /over the limit module_eval_ms = \d+ at step 0/],
    ["an allocation bomb", `var a = []; for (;;) a.push(new Array(1e6).fill(1.5));`, /over the limit module_(memory_bytes|eval_ms)/],
    ["a string bomb", `var s = "x"; for (;;) s = s + s;`, /over the limit module_memory_bytes|threw RangeError|threw InternalError/],
    ["deep recursion", `function f(n) { return f(n + 1) + 1; } exports.default = function () { return function (t) { return f(t); }; };`, /module_stack_bytes|stack/],
    ["require('fs')", `var fs = require("fs"); exports.default = function () { return function () { return 1; }; };`, /only lrbridge\/schedules can be imported, got 'fs'/],
    ["Date.now()", `exports.default = function () { var t0 = Date.now(); return function () { return 1; }; };`, /'Date' is not defined/],
    ["Math.random()", `exports.default = function () { return function () { return Math.random(); }; };`, /not a function/],
    ["a process escape through constructors", `exports.default = function () { var p = (function () {}).constructor("return process")(); return function () { return p.pid; }; };`, /'process' is not defined/],
    ["a require escape through the prototype chain", `exports.default = function () { var r = ({}).constructor.constructor("return this")().require; return function () { return r("fs") ? 1 : 0; }; };`, /not a function/],
    ["a timer", `exports.default = function () { setTimeout(function () {}, 0); return function () { return 1; }; };`, /'setTimeout' is not defined/],
    ["fetch", `exports.default = function () { fetch("http://example.com"); return function () { return 1; }; };`, /'fetch' is not defined/],
    ["a stateful (non-repeatable) schedule", `var n = 0; exports.default = function () { return function (t) { n += 1; return 1 / n; }; };`, /not repeatable/],
    ["a negative value", `exports.default = function () { return function (t) { return t > 50 ? -1 : 1; }; };`, /at step 99 is -1: values must be finite and >= 0/],
    ["a NaN value", `exports.default = function () { return function (t) { return "0.1"; }; };`, /at step 0 is NaN/],
    ["an infinite value", `exports.default = function () { return function (t) { return t === 3 ? 1 / 0 : 1; }; };`, /at step 3 is Infinity/],
    ["a default export that is not a schedule", `exports.default = 42;`, /default export must be a schedule/],
  ];
  for (const [name, code, why] of refused) {
    it(`refuses ${name}`, () => {
      let err: unknown;
      const t0 = performance.now();
      try {
        bind(node(code), GROUPS);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SpecError);
      expect((err as SpecError).path).toBe("code");
      expect((err as Error).message).toMatch(why);
      // killed within its limit (generous bound: a loaded CI machine, plus loading the library)
      expect(performance.now() - t0).toBeLessThan(SPEC_LIMITS.module_request_ms + 5000);
    });
  }

  it("refuses a described spec that holds another module", () => {
    const inner = JSON.stringify(node(`exports.default = function () { return function () { return 1; }; };`));
    const code = `var s = function () { return 1; }; Object.defineProperty(s, "spec", { value: ${inner} }); exports.default = s;`;
    expect(() => bind(node(code), GROUPS)).toThrow(/cannot contain another module/);
  });

  it("refuses code over module_code_length and a library of another version", () => {
    expect(() => bind(node("//" + "x".repeat(SPEC_LIMITS.module_code_length)), GROUPS)).toThrow(/module_code_length/);
    expect(() => bind({ ...node(`exports.default = 1;`), library: "99.0.0" }, GROUPS)).toThrow(/library: the module was built against lrbridge\/schedules 99.0.0/);
  });
});

describe("lrbridge/schedules on the host", () => {
  it("is the package's schedules export, and each schedule is its JSON spec", async () => {
    const S = await import("lrbridge/schedules");
    const s = S.join([S.warmup.linear(10), S.cosine(90, { end: 0.1 })], [10]);
    expect(s.spec).toEqual({
      type: "join",
      schedules: [{ type: "linear", total_steps: 10, start: 0, end: 1 }, { type: "cosine", total_steps: 90, end: 0.1 }],
      boundaries: [10],
    });
    const json = bind(s.spec, [{ lr: 1 }]).rows(0, 120).lr;
    for (let t = 0; t < 120; t++) expect(Object.is(s(t), json[t])).toBe(true);
    expect(s(5)).toBe(0.5);
  });

  it("refuses what the grammar refuses, and custom functions inside combinators", async () => {
    const S = await import("lrbridge/schedules");
    expect(() => S.piecewise([10], [1])).toThrow(/values: must have one more entry than boundaries/);
    expect(() => S.rex(100, { w: 1 })).toThrow(/w: must be/);
    expect(() => S.multiply([S.constant(), ((t: number) => t) as never])).toThrow(/custom functions cannot be combined/);
  });
});
