/**
 * JSON form of messages for the wire vectors: `bin` values become
 * `{"$bin_f64": [..]}` (little-endian float64), non-finite floats become
 * `{"$float": "inf" | "-inf" | "nan"}` (JSON has no literal for them),
 * BigInt ints become numbers. Used by the vector generator and the tests,
 * never on the hot path.
 */
import { binToFloat64 } from "./codec";

export interface BinF64 {
  $bin_f64: (number | NonFinite)[];
}

export interface NonFinite {
  $float: "inf" | "-inf" | "nan";
}

function nonFinite(x: number): NonFinite {
  return { $float: Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf" };
}

const NON_FINITE: Record<NonFinite["$float"], number> = { inf: Infinity, "-inf": -Infinity, nan: NaN };

export function toJsonable(value: unknown): unknown {
  if (typeof value === "number") return Number.isFinite(value) ? value : nonFinite(value);
  if (value instanceof Uint8Array) {
    return { $bin_f64: Array.from(binToFloat64(value), (x) => (Number.isFinite(x) ? x : nonFinite(x))) };
  }
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(toJsonable);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJsonable(v);
    return out;
  }
  return value;
}

function isMarker(value: unknown, key: string): boolean {
  return value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 1 && key in value;
}

function fromNumberLike(value: unknown): number {
  return isMarker(value, "$float") ? NON_FINITE[(value as NonFinite).$float] : (value as number);
}

/** Inverse of toJsonable: `{"$bin_f64": [..]}` → Buffer of LE float64 bytes. */
export function fromJsonable(value: unknown): unknown {
  if (isMarker(value, "$float")) return fromNumberLike(value);
  if (isMarker(value, "$bin_f64")) {
    const values = (value as BinF64).$bin_f64;
    const bytes = Buffer.alloc(values.length * 8);
    values.forEach((x, i) => bytes.writeDoubleLE(fromNumberLike(x), i * 8));
    return bytes;
  }
  if (Array.isArray(value)) return value.map(fromJsonable);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = fromJsonable(v);
    return out;
  }
  return value;
}
