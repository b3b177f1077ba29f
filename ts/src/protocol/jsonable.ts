/**
 * JSON form of messages for the wire vectors: `bin` values become
 * `{"$bin_f64": [..]}` (little-endian float64), BigInt ints become numbers.
 * Used by the vector generator and the tests, never on the hot path.
 */
import { binToFloat64 } from "./codec";

export interface BinF64 {
  $bin_f64: number[];
}

export function toJsonable(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bin_f64: Array.from(binToFloat64(value)) };
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(toJsonable);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJsonable(v);
    return out;
  }
  return value;
}

function isBinF64(value: unknown): value is BinF64 {
  return (
    value !== null &&
    typeof value === "object" &&
    Object.keys(value).length === 1 &&
    Array.isArray((value as BinF64).$bin_f64)
  );
}

/** Inverse of toJsonable: `{"$bin_f64": [..]}` → Buffer of LE float64 bytes. */
export function fromJsonable(value: unknown): unknown {
  if (isBinF64(value)) {
    const bytes = Buffer.alloc(value.$bin_f64.length * 8);
    value.$bin_f64.forEach((x, i) => bytes.writeDoubleLE(x, i * 8));
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
