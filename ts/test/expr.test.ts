/** The expression language: Python semantics, checked against Python itself where available. */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SpecError } from "../src/core/api";
import { compileFunction, evaluate, parseExpr } from "../src/core/expr";
import { PyError } from "../src/core/pymath";

const at = (src: string, epoch = 0) => compileFunction(src, "epoch", "lr_lambda")(epoch);

describe("Python precedence and operators", () => {
  it("** binds tighter than unary minus and is right-associative", () => {
    expect(at("-2**2")).toBe(-4);
    expect(at("2**3**2")).toBe(512);
    expect(at("2**-1")).toBe(0.5);
    expect(at("(-2)**2")).toBe(4);
    expect(at("-epoch ** 2", 3)).toBe(-9);
  });
  it("// and % floor toward -inf with the divisor's sign", () => {
    expect(at("-7 // 2")).toBe(-4);
    expect(at("-7 % 3")).toBe(2);
    expect(at("7 % -3")).toBe(-2);
    expect(at("7.5 // 2")).toBe(3);
    expect(at("epoch // 30", 59)).toBe(1);
  });
  it("* / // % share a level, left to right", () => {
    expect(at("8 / 2 * 4")).toBe(16);
    expect(at("7 // 2 * 2")).toBe(6);
    expect(at("1 + 2 * 3 - 4")).toBe(3);
  });
  it("comparisons chain, and/or return the deciding operand, not is boolean", () => {
    expect(at("0 < epoch <= 5", 3)).toBe(1);
    expect(at("0 < epoch <= 5", 6)).toBe(0);
    expect(at("1 < 3 > 2")).toBe(1);
    expect(at("(epoch >= 4 and 0.1) or 1", 5)).toBe(0.1);
    expect(at("(epoch >= 4 and 0.1) or 1", 2)).toBe(1);
    expect(at("0 or 0.5")).toBe(0.5);
    expect(at("not epoch", 0)).toBe(1);
    expect(at("not 0 < 1")).toBe(0);
  });
  it("conditional expressions nest to the right", () => {
    const f = compileFunction("1.0 if epoch < 5 else 0.1 if epoch < 10 else 0.01", "epoch", "p");
    expect([f(0), f(7), f(12)]).toEqual([1.0, 0.1, 0.01]);
  });
  it("functions and constants", () => {
    expect(at("min(1, (epoch + 1) / 10)", 4)).toBe(0.5);
    expect(at("max(0.05, min(1.0, 3, 2))")).toBe(1);
    expect(at("max(0.05, min(3, 2.5))")).toBe(2.5);
    expect(at("log(8, 2)")).toBe(Math.log(8) / Math.log(2));
    expect(at("floor(-0.5) + ceil(0.5)")).toBe(0);
    expect(at("cos(pi)")).toBe(-1);
    expect(at("e")).toBe(Math.E);
    expect(at("True + True")).toBe(2);
  });
});

describe("errors", () => {
  const parseError = (src: string) => {
    try {
      parseExpr(src, ["epoch"], "schedulers[0].lr_lambda");
    } catch (err) {
      expect(err).toBeInstanceOf(SpecError);
      return (err as SpecError).message;
    }
    throw new Error(`parsed: ${src}`);
  };
  it("unknown names and syntax errors name the path and the column", () => {
    expect(parseError("0.9 ** epochs")).toBe("schedulers[0].lr_lambda: unknown name 'epochs' at column 8");
    expect(parseError("1 +")).toMatch(/unexpected end of expression at column 4$/);
    expect(parseError("(1 + 2")).toMatch(/expected '\)' before the end at column 7$/);
    expect(parseError("1 if epoch")).toMatch(/expected 'else'/);
    expect(parseError("epoch = 1")).toMatch(/unexpected character '=' at column 7/);
    expect(parseError("__import__(1)")).toMatch(/unknown name '__import__'/);
    expect(parseError("007")).toMatch(/invalid number '007'/);
    expect(parseError("min(1)")).toMatch(/min\(\) takes at least 2 argument/);
    expect(parseError("cos")).toMatch(/'cos' is a function/);
    // Names of Object.prototype are names like any other.
    for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
      expect(parseError(`${name} + epoch`)).toBe(`schedulers[0].lr_lambda: unknown name '${name}' at column 1`);
      expect(parseError(`${name}(epoch)`)).toBe(`schedulers[0].lr_lambda: unknown name '${name}' at column 1`);
    }
  });
  it("Python's runtime errors surface when evaluated, not when parsed", () => {
    const ast = parseExpr("1 / (epoch - 5)", ["epoch"], "p");
    expect(evaluate(ast, { epoch: 4 })).toBe(-1);
    expect(() => evaluate(ast, { epoch: 5 })).toThrow(PyError);
    expect(() => at("epoch // 0")).toThrow(/ZeroDivisionError/);
    expect(() => at("epoch % 0")).toThrow(/ZeroDivisionError/);
    expect(() => at("0 ** -1")).toThrow(/ZeroDivisionError/);
    expect(() => at("sqrt(-1)")).toThrow(/math domain error/);
    expect(() => at("log(0)")).toThrow(/math domain error/);
    expect(() => at("(-8) ** 0.5")).toThrow(PyError);
    expect(() => at("10.0 ** 400")).toThrow(/OverflowError/);
  });
});

/** The same expressions through proto/vectors/generate.py's evaluator, with real Python. */
const PY = join(__dirname, "..", "..", ".venv", "bin", "python");
const EXPRESSIONS = [
  "0.95 ** epoch",
  "min(1, (epoch + 1) / 10)",
  "1 / sqrt(epoch + 1)",
  "0.5 * (1 + cos(pi * epoch / 20))",
  "-2 ** 2 + epoch",
  "2 ** 3 ** 0.5",
  "(epoch - 7) // 3 + (epoch - 7) % 3 / 4",
  "-epoch % 7 - 0.1 * (epoch % -4)",
  "1 if 2 < epoch < 9 else 0.5 if not epoch else 0.25",
  "(epoch > 2 and epoch < 8) or 0.5",
  "exp(-0.1 * epoch) * tanh(log(epoch + 2)) + log10(epoch + 1) / log2(epoch + 2)",
  "max(0.05, min(1.0, (epoch + 1) / 4, 10 / (epoch + 1)))",
  "abs(sin(epoch) * tan(0.1) / e) + floor(epoch / 3) - ceil(epoch / 4)",
  "log(epoch + 3, 2) ** -1.5",
];
const EPOCHS = [0, 1, 2, 3, 5, 7, 8, 13, 100, 1234];

describe.skipIf(!existsSync(PY))("agreement with Python", () => {
  it("gives Python's values for every expression and epoch", () => {
    const script = [
      "import json, sys",
      "sys.path.insert(0, 'proto/vectors')",
      "from generate import compile_expression",
      "exprs, epochs = json.loads(sys.stdin.read())",
      "print(json.dumps([[float(compile_expression(s, 'epoch')(t)) for t in epochs] for s in exprs]))",
    ].join("\n");
    const res = spawnSync(PY, ["-c", script], {
      cwd: join(__dirname, "..", ".."),
      input: JSON.stringify([EXPRESSIONS, EPOCHS]),
      encoding: "utf8",
    });
    expect(res.status, res.stderr).toBe(0);
    const want = JSON.parse(res.stdout) as number[][];
    let worst = 0;
    EXPRESSIONS.forEach((src, i) => {
      const f = compileFunction(src, "epoch", "lr_lambda");
      EPOCHS.forEach((t, j) => {
        const got = f(t);
        const rel = Math.abs(got - want[i][j]) / Math.max(Math.abs(want[i][j]), 1e-300);
        worst = Math.max(worst, rel);
        expect(rel, `${src} at epoch ${t}: ${got} vs Python ${want[i][j]}`).toBeLessThanOrEqual(1e-15);
      });
    });
    console.log(`expr vs Python: ${EXPRESSIONS.length * EPOCHS.length} values, worst relative difference ${worst}`);
  });
});

describe("compiled closures agree with the tree walk", () => {
  const sources = [
    "0.9999 ** epoch",
    "-epoch ** 2 + 3 * epoch - 1 // (epoch + 1) % 7",
    "min(1, (epoch + 1) / 10, 0.5 + epoch / 100)",
    "max(epoch - 3, 0) and 1 / (epoch - 3) or 7",
    "0.1 if 2 < epoch <= 8 != 5 else (not epoch) + floor(epoch / 3) - ceil(-epoch / 4)",
    "sqrt(epoch) + exp(-epoch) + log(epoch + 1) + log(epoch + 2, 3) + log10(epoch + 1) + log2(epoch + 1)",
    "cos(epoch) * sin(epoch) + tan(epoch / 10) + tanh(epoch) + abs(3 - epoch) + pi * e",
    "1 / (epoch - 4)",
    "(epoch - 6) ** 0.5",
    "log(epoch - 2)",
    "10.0 ** (epoch * 100)",
    "1e300 ** epoch",
    "1 ** epoch + 0.5 ** epoch + 0 ** epoch",
  ];
  const outcome = (f: () => number): unknown => {
    try {
      return f();
    } catch (err) {
      return err instanceof PyError ? `${err.pyType}: ${err.message}` : err;
    }
  };
  it("on every expression and epoch: same bits, same Python errors", () => {
    let errors = 0;
    for (const src of sources) {
      const compiled = compileFunction(src, "epoch", "lr_lambda");
      const ast = parseExpr(src, ["epoch"], "lr_lambda");
      for (let epoch = 0; epoch < 12; epoch++) {
        const want = outcome(() => evaluate(ast, { epoch }));
        if (typeof want === "string") errors++;
        const got = outcome(() => compiled(epoch));
        expect(Object.is(got, want), `${src} at ${epoch}: ${String(got)} vs ${String(want)}`).toBe(true);
      }
    }
    expect(errors).toBeGreaterThan(5);
  });
});
