/**
 * Math expressions with Python semantics, for `lr_lambda` (over `epoch`) and
 * CyclicLR's `scale_fn` (over `x`). The Python side evaluates the same text
 * with Python, so precedence, `**`, `//`, `%`, chained comparisons and
 * errors follow Python:
 *
 * the same subset as proto/vectors/generate.py's evaluator: numbers,
 * `+ - * / // % **`, chained comparisons, `and or not`, `a if c else b`,
 * `True False pi e` and min max abs floor ceil sqrt exp log log10 log2 cos
 * sin tan tanh (Python's builtins / math module).
 *
 * Numbers are floats; `epoch` is an int in
 * torch, and Python ints are exact, so results agree for ints below 2**53
 * (int ** int past float range is an error here, not a big int). `True`,
 * `False` and comparisons give 1/0 as Python bools do in arithmetic.
 */
import { SpecError } from "./api";
import { SPEC_LIMITS, overLimit } from "./limits";
import { PyError, exprDiv, powOfBase, pyDiv, pyFloor, pyFloorDiv, pyLog, pyMod, pyPow } from "./pymath";

export type Expr =
  | { kind: "num"; value: number }
  | { kind: "var"; name: string }
  | { kind: "unary"; op: "-" | "+" | "not"; arg: Expr }
  | { kind: "binary"; op: BinaryOp; left: Expr; right: Expr }
  | { kind: "compare"; ops: CompareOp[]; operands: Expr[] }
  | { kind: "and" | "or"; left: Expr; right: Expr }
  | { kind: "cond"; test: Expr; then: Expr; otherwise: Expr }
  | { kind: "call"; fn: string; args: Expr[] };

type CompareOp = "<" | "<=" | ">" | ">=" | "==" | "!=";
type BinaryOp = "+" | "-" | "*" | "/" | "//" | "%" | "**";

interface Token {
  type: "num" | "name" | "op" | "end";
  text: string;
  /** 1-based column of the token's first character. */
  column: number;
}

const CONSTANTS: Record<string, number> = { pi: Math.PI, e: Math.E };
const FUNCTION_ARITY: Record<string, [number, number]> = {
  min: [2, Infinity],
  max: [2, Infinity],
  abs: [1, 1],
  floor: [1, 1],
  ceil: [1, 1],
  sqrt: [1, 1],
  exp: [1, 1],
  log: [1, 2],
  log10: [1, 1],
  log2: [1, 1],
  cos: [1, 1],
  sin: [1, 1],
  tan: [1, 1],
  tanh: [1, 1],
};
const KEYWORDS = new Set(["and", "or", "not", "if", "else", "True", "False"]);
const OPERATORS = ["**", "//", "<=", ">=", "==", "!=", "+", "-", "*", "/", "%", "<", ">", "(", ")", ","];
const NUMBER_RE = /^(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/;
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*/;

class ParseError extends Error {
  constructor(
    message: string,
    readonly column: number,
  ) {
    super(message);
  }
}

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i];
    if (ch === " " || ch === "\t") {
      i++;
      continue;
    }
    const rest = src.slice(i);
    const num = NUMBER_RE.exec(rest);
    if (num) {
      // Python rejects 1_000-less suffixes (1abc) and leading-zero ints (007).
      if (NAME_RE.test(rest.slice(num[0].length)) || /^0+[1-9]\d*$/.test(num[0])) {
        throw new ParseError(`invalid number '${/^[\w.]+/.exec(rest)?.[0] ?? num[0]}'`, i + 1);
      }
      tokens.push({ type: "num", text: num[0], column: i + 1 });
      i += num[0].length;
      continue;
    }
    const name = NAME_RE.exec(rest);
    if (name) {
      tokens.push({ type: "name", text: name[0], column: i + 1 });
      i += name[0].length;
      continue;
    }
    const op = OPERATORS.find((o) => rest.startsWith(o));
    if (op) {
      tokens.push({ type: "op", text: op, column: i + 1 });
      i += op.length;
      continue;
    }
    throw new ParseError(`unexpected character '${ch}'`, i + 1);
  }
  tokens.push({ type: "end", text: "", column: src.length + 1 });
  return tokens;
}

/** Recursive descent over Python's expression grammar (the subset above). */
class Parser {
  private pos = 0;
  /** Recursion depth of the descent: bounded so nesting is an error, not a stack overflow. */
  private depth = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly variables: readonly string[],
  ) {}

  parse(): Expr {
    const e = this.conditional();
    const t = this.peek();
    if (t.type !== "end") throw new ParseError(`unexpected '${t.text}'`, t.column);
    return e;
  }

  private peek(): Token {
    return this.tokens[this.pos];
  }
  private next(): Token {
    return this.tokens[this.pos++];
  }
  private isOp(text: string): boolean {
    const t = this.peek();
    return (t.type === "op" || t.type === "name") && t.text === text;
  }
  private expectOp(text: string): void {
    const t = this.next();
    if (t.text !== text || t.type === "num" || t.type === "end") {
      throw new ParseError(t.type === "end" ? `expected '${text}' before the end` : `expected '${text}', got '${t.text}'`, t.column);
    }
  }

  // conditional: or_test ['if' or_test 'else' conditional]
  private nested<T>(parse: () => T): T {
    if (++this.depth > SPEC_LIMITS.expr_depth) throw new DepthError();
    try {
      return parse();
    } finally {
      this.depth -= 1;
    }
  }

  private conditional(): Expr {
    return this.nested(() => this.conditionalBody());
  }
  private conditionalBody(): Expr {
    const then = this.orTest();
    if (!this.isOp("if")) return then;
    this.next();
    const test = this.orTest();
    this.expectOp("else");
    const otherwise = this.conditional();
    return { kind: "cond", test, then, otherwise };
  }
  private orTest(): Expr {
    let left = this.andTest();
    while (this.isOp("or")) {
      this.next();
      left = { kind: "or", left, right: this.andTest() };
    }
    return left;
  }
  private andTest(): Expr {
    let left = this.notTest();
    while (this.isOp("and")) {
      this.next();
      left = { kind: "and", left, right: this.notTest() };
    }
    return left;
  }
  private notTest(): Expr {
    if (this.isOp("not")) {
      this.next();
      return { kind: "unary", op: "not", arg: this.nested(() => this.notTest()) };
    }
    return this.comparison();
  }
  private comparison(): Expr {
    const first = this.arith();
    const ops: CompareOp[] = [];
    const operands: Expr[] = [first];
    for (;;) {
      const t = this.peek();
      if (t.type !== "op" || !["<", "<=", ">", ">=", "==", "!="].includes(t.text)) break;
      this.next();
      ops.push(t.text as CompareOp);
      operands.push(this.arith());
    }
    return ops.length === 0 ? first : { kind: "compare", ops, operands };
  }
  private arith(): Expr {
    let left = this.term();
    while (this.isOp("+") || this.isOp("-")) {
      const op = this.next().text as "+" | "-";
      left = { kind: "binary", op, left, right: this.term() };
    }
    return left;
  }
  private term(): Expr {
    let left = this.factor();
    while (this.isOp("*") || this.isOp("/") || this.isOp("//") || this.isOp("%")) {
      const op = this.next().text as "*" | "/" | "//" | "%";
      left = { kind: "binary", op, left, right: this.factor() };
    }
    return left;
  }
  // factor: ('+'|'-') factor | power   — so -2**2 is -(2**2)
  private factor(): Expr {
    if (this.isOp("-") || this.isOp("+")) {
      const op = this.next().text as "-" | "+";
      return { kind: "unary", op, arg: this.nested(() => this.factor()) };
    }
    return this.power();
  }
  // power: atom ['**' factor]   — right-associative, and 2**-1 is allowed
  private power(): Expr {
    const base = this.atom();
    if (!this.isOp("**")) return base;
    this.next();
    return { kind: "binary", op: "**", left: base, right: this.nested(() => this.factor()) };
  }
  private atom(): Expr {
    const t = this.next();
    if (t.type === "num") return { kind: "num", value: Number(t.text) };
    if (t.type === "op" && t.text === "(") {
      const e = this.conditional();
      this.expectOp(")");
      return e;
    }
    if (t.type === "name") return this.named(t);
    if (t.type === "end") throw new ParseError("unexpected end of expression", t.column);
    throw new ParseError(`unexpected '${t.text}'`, t.column);
  }
  private named(t: Token): Expr {
    const name = t.text;
    if (name === "True" || name === "False") return { kind: "num", value: name === "True" ? 1 : 0 };
    if (KEYWORDS.has(name)) throw new ParseError(`unexpected '${name}'`, t.column);
    if (this.variables.includes(name)) return { kind: "var", name };
    // Own keys only: "constructor" or "__proto__" must not reach Object.prototype.
    if (Object.hasOwn(CONSTANTS, name)) return { kind: "num", value: CONSTANTS[name] };
    const arity = Object.hasOwn(FUNCTION_ARITY, name) ? FUNCTION_ARITY[name] : undefined;
    if (!arity) throw new ParseError(`unknown name '${name}'`, t.column);
    if (!this.isOp("(")) throw new ParseError(`'${name}' is a function: call it`, t.column);
    this.next();
    const args: Expr[] = [];
    if (!this.isOp(")")) {
      args.push(this.conditional());
      while (this.isOp(",")) {
        this.next();
        args.push(this.conditional());
      }
    }
    this.expectOp(")");
    const [lo, hi] = arity;
    if (args.length < lo || args.length > hi) {
      const want = lo === hi ? `${lo}` : hi === Infinity ? `at least ${lo}` : `${lo} or ${hi}`;
      throw new ParseError(`${name}() takes ${want} argument(s), got ${args.length}`, t.column);
    }
    return { kind: "call", fn: name, args };
  }
}

/** Parses `source`; errors are SpecErrors at `path` naming the column. */
export function parseExpr(source: string, variables: readonly string[], path: string): Expr {
  if (source.length > SPEC_LIMITS.expr_length) overLimit(path, "expr_length", `an expression of ${source.length} characters`);
  let expr: Expr;
  try {
    expr = new Parser(tokenize(source), variables).parse();
  } catch (err) {
    if (err instanceof ParseError) throw new SpecError(path, `${err.message} at column ${err.column}`);
    if (err instanceof DepthError) overLimit(path, "expr_depth", "the expression's nesting");
    throw err;
  }
  // Left-associative chains (1+1+1+…) nest without deep parsing; evaluation recurses on the tree.
  if (treeDepth(expr, SPEC_LIMITS.expr_depth) > SPEC_LIMITS.expr_depth) overLimit(path, "expr_depth", "the expression's nesting");
  return expr;
}

class DepthError extends Error {}

/** Depth of an expression tree, counting no further than `cap` + 1. */
function treeDepth(e: Expr, cap: number): number {
  if (cap < 0) return 1;
  const sub = (xs: Expr[]) => xs.reduce((d, x) => Math.max(d, treeDepth(x, cap - 1)), 0);
  switch (e.kind) {
    case "num":
    case "var":
      return 1;
    case "unary":
      return 1 + sub([e.arg]);
    case "binary":
    case "and":
    case "or":
      return 1 + sub([e.left, e.right]);
    case "compare":
      return 1 + sub(e.operands);
    case "cond":
      return 1 + sub([e.test, e.then, e.otherwise]);
    case "call":
      return 1 + sub(e.args);
  }
}

const truthy = (v: number): boolean => v !== 0;

function mathDomain(ok: boolean): void {
  if (!ok) throw new PyError("ValueError", "math domain error");
}

function finiteOrOverflow(v: number): number {
  if (!Number.isFinite(v) && !Number.isNaN(v)) throw new PyError("OverflowError", "math range error");
  return v;
}

/** A one-argument builtin with Python's error rules (math domain, range). */
function unaryBuiltin(fn: string): (x: number) => number {
  switch (fn) {
    case "abs":
      return Math.abs;
    case "floor":
      return pyFloor;
    case "ceil":
      return (x) => -pyFloor(-x) || 0;
    case "sqrt":
      return (x) => {
        mathDomain(!(x < 0));
        return Math.sqrt(x);
      };
    case "exp":
      return (x) => (Number.isFinite(x) ? finiteOrOverflow(Math.exp(x)) : Math.exp(x));
    case "log":
      return (x) => pyLog(x);
    case "log10":
      return (x) => {
        mathDomain(!(x <= 0));
        return Math.log10(x);
      };
    case "log2":
      return (x) => {
        mathDomain(!(x <= 0));
        return Math.log2(x);
      };
    case "cos":
      return (x) => {
        mathDomain(Number.isFinite(x) || Number.isNaN(x));
        return Math.cos(x);
      };
    case "sin":
      return (x) => {
        mathDomain(Number.isFinite(x) || Number.isNaN(x));
        return Math.sin(x);
      };
    case "tan":
      return (x) => {
        mathDomain(Number.isFinite(x) || Number.isNaN(x));
        return Math.tan(x);
      };
    case "tanh":
      return Math.tanh;
  }
  throw new Error(`unknown function ${fn}`);
}

/** Python's min/max over already evaluated arguments: the first extreme wins. */
const pickMin = (m: number, v: number): number => (v < m ? v : m);
const pickMax = (m: number, v: number): number => (v > m ? v : m);

function callFunction(fn: string, a: number[]): number {
  switch (fn) {
    case "min":
      return a.reduce(pickMin);
    case "max":
      return a.reduce(pickMax);
    case "log":
      return pyLog(a[0], a[1]);
  }
  return unaryBuiltin(fn)(a[0]);
}

function compare(op: CompareOp, a: number, b: number): boolean {
  switch (op) {
    case "<":
      return a < b;
    case "<=":
      return a <= b;
    case ">":
      return a > b;
    case ">=":
      return a >= b;
    case "==":
      return a === b;
    case "!=":
      return a !== b;
  }
}

/** Tree-walking evaluation; Python exceptions surface as PyError. */
export function evaluate(e: Expr, vars: Readonly<Record<string, number>>): number {
  switch (e.kind) {
    case "num":
      return e.value;
    case "var":
      return vars[e.name];
    case "unary": {
      const v = evaluate(e.arg, vars);
      if (e.op === "not") return truthy(v) ? 0 : 1;
      return e.op === "-" ? -v : v;
    }
    case "binary": {
      const a = evaluate(e.left, vars);
      const b = evaluate(e.right, vars);
      switch (e.op) {
        case "+":
          return a + b;
        case "-":
          return a - b;
        case "*":
          return a * b;
        case "/":
          return exprDiv(a, b);
        case "//":
          return pyFloorDiv(a, b);
        case "%":
          return pyMod(a, b);
        case "**":
          return pyPow(a, b);
      }
      break;
    }
    case "compare": {
      let left = evaluate(e.operands[0], vars);
      for (let i = 0; i < e.ops.length; i++) {
        const right = evaluate(e.operands[i + 1], vars);
        if (!compare(e.ops[i], left, right)) return 0;
        left = right;
      }
      return 1;
    }
    case "and": {
      const l = evaluate(e.left, vars);
      return truthy(l) ? evaluate(e.right, vars) : l;
    }
    case "or": {
      const l = evaluate(e.left, vars);
      return truthy(l) ? l : evaluate(e.right, vars);
    }
    case "cond":
      return truthy(evaluate(e.test, vars)) ? evaluate(e.then, vars) : evaluate(e.otherwise, vars);
    case "call":
      return callFunction(
        e.fn,
        e.args.map((a) => evaluate(a, vars)),
      );
  }
  throw new Error("unreachable");
}

type Compiled = (v: number) => number;

/**
 * The tree turned into nested closures once, so a call does no tree walk,
 * no switch and no allocation. Same operations in the same order as
 * `evaluate`, so the same bits and the same Python errors.
 */
function compileExpr(e: Expr, variable: string): Compiled {
  switch (e.kind) {
    case "num": {
      const value = e.value;
      return () => value;
    }
    case "var":
      if (e.name !== variable) throw new Error(`unbound variable ${e.name}`);
      return (v) => v;
    case "unary": {
      const arg = compileExpr(e.arg, variable);
      if (e.op === "not") return (v) => (truthy(arg(v)) ? 0 : 1);
      return e.op === "-" ? (v) => -arg(v) : arg;
    }
    case "binary":
      return compileBinary(e, variable);
    case "compare": {
      const ops = e.ops;
      const operands = e.operands.map((o) => compileExpr(o, variable));
      return (v) => {
        let left = operands[0](v);
        for (let i = 0; i < ops.length; i++) {
          const right = operands[i + 1](v);
          if (!compare(ops[i], left, right)) return 0;
          left = right;
        }
        return 1;
      };
    }
    case "and": {
      const left = compileExpr(e.left, variable);
      const right = compileExpr(e.right, variable);
      return (v) => {
        const l = left(v);
        return truthy(l) ? right(v) : l;
      };
    }
    case "or": {
      const left = compileExpr(e.left, variable);
      const right = compileExpr(e.right, variable);
      return (v) => {
        const l = left(v);
        return truthy(l) ? l : right(v);
      };
    }
    case "cond": {
      const test = compileExpr(e.test, variable);
      const then = compileExpr(e.then, variable);
      const otherwise = compileExpr(e.otherwise, variable);
      return (v) => (truthy(test(v)) ? then(v) : otherwise(v));
    }
    case "call":
      return compileCall(
        e.fn,
        e.args.map((a) => compileExpr(a, variable)),
      );
  }
}

/**
 * A constant operand is captured, not called: in a server holding many
 * specs every call site here sees many closures (no inlining), so each call
 * saved counts. `c ** epoch` and `epoch * c` are the common lr_lambda shapes.
 */
function compileBinary(e: Extract<Expr, { kind: "binary" }>, variable: string): Compiled {
  // `c ** epoch`, the usual exponential decay, is one call.
  if (e.op === "**" && e.left.kind === "num" && e.right.kind === "var") return powOfBase(e.left.value);
  if (e.left.kind === "num") return withConstantLeft(e.op, e.left.value, compileExpr(e.right, variable));
  if (e.right.kind === "num") return withConstantRight(e.op, compileExpr(e.left, variable), e.right.value);
  const a = compileExpr(e.left, variable);
  const b = compileExpr(e.right, variable);
  switch (e.op) {
    case "+":
      return (v) => a(v) + b(v);
    case "-":
      return (v) => a(v) - b(v);
    case "*":
      return (v) => a(v) * b(v);
    case "/":
      return (v) => exprDiv(a(v), b(v));
    case "//":
      return (v) => pyFloorDiv(a(v), b(v));
    case "%":
      return (v) => pyMod(a(v), b(v));
    case "**":
      return (v) => pyPow(a(v), b(v));
  }
}

function withConstantLeft(op: BinaryOp, c: number, b: Compiled): Compiled {
  switch (op) {
    case "+":
      return (v) => c + b(v);
    case "-":
      return (v) => c - b(v);
    case "*":
      return (v) => c * b(v);
    case "/":
      return (v) => exprDiv(c, b(v));
    case "//":
      return (v) => pyFloorDiv(c, b(v));
    case "%":
      return (v) => pyMod(c, b(v));
    case "**":
      return (v) => pyPow(c, b(v));
  }
}

function withConstantRight(op: BinaryOp, a: Compiled, c: number): Compiled {
  switch (op) {
    case "+":
      return (v) => a(v) + c;
    case "-":
      return (v) => a(v) - c;
    case "*":
      return (v) => a(v) * c;
    case "/":
      return (v) => exprDiv(a(v), c);
    case "//":
      return (v) => pyFloorDiv(a(v), c);
    case "%":
      return (v) => pyMod(a(v), c);
    case "**":
      return (v) => pyPow(a(v), c);
  }
}

function compileCall(fn: string, args: Compiled[]): Compiled {
  if (fn === "min" || fn === "max") {
    // Every argument is evaluated, in order, as Python does before the call.
    const pick = fn === "min" ? pickMin : pickMax;
    return (v) => {
      let m = args[0](v);
      for (let i = 1; i < args.length; i++) m = pick(m, args[i](v));
      return m;
    };
  }
  if (fn === "log" && args.length === 2) {
    const [x, base] = args;
    return (v) => {
      const xv = x(v);
      return pyLog(xv, base(v));
    };
  }
  const f = unaryBuiltin(fn);
  const x = args[0];
  return (v) => f(x(v));
}

/**
 * A one-variable function from an expression string, e.g. lr_lambda:
 * `compileFunction("0.95 ** epoch", "epoch", "lr_lambda")(3)`.
 */
export function compileFunction(source: string, variable: string, path: string): (v: number) => number {
  return compileExpr(parseExpr(source, [variable], path), variable);
}
