/**
 * Python float arithmetic where it differs from JS: torch's schedulers are
 * Python, so a division by zero raises instead of giving Infinity, `//` and
 * `%` floor toward -inf, and `**` refuses complex or overflowing results.
 */

/** A Python exception raised while simulating (ZeroDivisionError, ValueError...). */
export class PyError extends Error {
  constructor(
    readonly pyType: string,
    /** The exception's argument, verbatim: `str()` of it in Python (KeyError's str() adds quotes to it). */
    readonly pyMessage: string,
  ) {
    super(`${pyType}: ${pyMessage}`);
    this.name = "PyError";
  }
}

/**
 * `a / b` in an expression: Python says "division by zero" for int / int and
 * "float division by zero" otherwise. JS numbers do not say which operands
 * were ints; integral values are taken as ints (epoch is one).
 */
export function exprDiv(a: number, b: number): number {
  if (b === 0) {
    throw new PyError("ZeroDivisionError", Number.isInteger(a) ? "division by zero" : "float division by zero");
  }
  return a / b;
}

/** repr() of a Python float: the wire's floats print as Python prints them (-1.0, 0.5, 1e-07). */
export function pyFloatRepr(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return x.toFixed(1);
  return String(x).replace(/e([+-])(\d)$/, "e$10$2");
}

/** `a / b` (true division). */
export function pyDiv(a: number, b: number): number {
  if (b === 0) throw new PyError("ZeroDivisionError", "float division by zero");
  return a / b;
}

/** `a % b`: CPython's float_rem (result takes the divisor's sign). */
export function pyMod(a: number, b: number): number {
  if (b === 0) throw new PyError("ZeroDivisionError", "float modulo");
  let mod = a % b; // fmod
  if (mod !== 0) {
    if (b < 0 !== mod < 0) mod += b;
  } else {
    mod = b < 0 ? -0 : 0;
  }
  return mod;
}

/**
 * `a % b == 0`, as pyMod decides it (its sign fix-up only touches nonzero
 * results). Small integers take the int32 remainder, which V8 does in a
 * machine instruction where a float `%` calls fmod: same answer, exactly.
 */
export function pyModIsZero(a: number, b: number): boolean {
  if ((a | 0) === a && (b | 0) === b && b !== 0 && b !== -1) return (a | 0) % (b | 0) === 0;
  // The step counters are Python ints: int % 0 says so.
  if (b === 0 && Number.isInteger(a)) throw new PyError("ZeroDivisionError", "integer modulo by zero");
  return pyMod(a, b) === 0;
}

/** `a // b`: CPython's float_floor_div (via _float_div_mod). */
export function pyFloorDiv(a: number, b: number): number {
  if (b === 0) throw new PyError("ZeroDivisionError", "float floor division by zero");
  let mod = a % b;
  let div = (a - mod) / b;
  if (mod !== 0) {
    if (b < 0 !== mod < 0) {
      mod += b;
      div -= 1.0;
    }
  }
  if (div !== 0) {
    let floordiv = Math.floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
    return floordiv;
  }
  return a / b < 0 ? -0 : 0;
}

/** `a ** b` for floats: CPython's float_pow error rules around C pow(). */
export function pyPow(a: number, b: number): number {
  if (b === 0) return 1.0;
  if (Number.isNaN(a)) return a;
  if (Number.isNaN(b)) return a === 1 ? 1.0 : b;
  if (a === 1) return 1.0;
  if (!Number.isFinite(b)) {
    const absA = Math.abs(a);
    if (absA === 1) return 1.0;
    if ((b > 0) === absA > 1) return Infinity;
    return 0.0;
  }
  if (a === 0 && b < 0) {
    throw new PyError("ZeroDivisionError", "0.0 cannot be raised to a negative power");
  }
  if (a < 0 && Number.isFinite(a) && !Number.isInteger(b)) {
    // Python returns a complex number here; no schedule can use one.
    throw new PyError("ValueError", "negative number cannot be raised to a fractional power");
  }
  const r = Math.pow(a, b);
  if (!Number.isFinite(r) && Number.isFinite(a)) {
    throw new PyError("OverflowError", "(34, 'Numerical result out of range')");
  }
  return r;
}

/**
 * `c ** b` for a fixed base, as pyPow computes it. For a finite c > 0,
 * pyPow's answer is Math.pow's whenever that is finite (its special cases
 * only decide NaN, infinite and error results), so only those take pyPow.
 */
export function powOfBase(c: number): (b: number) => number {
  if (!(Number.isFinite(c) && c > 0)) return (b) => pyPow(c, b);
  return (b) => {
    const r = Math.pow(c, b);
    return Number.isFinite(r) ? r : pyPow(c, b);
  };
}

/** bisect.bisect_right on a list (need not be sorted: same probing as CPython). */
export function bisectRight(list: readonly number[], x: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x < list[mid]) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** math.floor: an int, or OverflowError/ValueError for inf/nan. */
export function pyFloor(x: number): number {
  if (Number.isNaN(x)) throw new PyError("ValueError", "cannot convert float NaN to integer");
  if (!Number.isFinite(x)) throw new PyError("OverflowError", "cannot convert float infinity to integer");
  return Math.floor(x);
}

/** math.log(x[, base]) = log(x) / log(base), with math's domain errors. */
export function pyLog(x: number, base?: number): number {
  const num = logHelper(x);
  if (base === undefined) return num;
  return pyDiv(num, logHelper(base));
}

function logHelper(x: number): number {
  if (Number.isNaN(x)) return x;
  if (x <= 0) throw new PyError("ValueError", "math domain error");
  return Math.log(x);
}
