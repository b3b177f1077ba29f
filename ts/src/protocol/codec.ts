import { endianness } from "node:os";
import { Packr, Unpackr } from "msgpackr";

/**
 * msgpack settings shared by the server, the tests and the vector generator.
 * - useRecords:false: msgpackr records are an extension Python cannot read.
 * - variableMapSize:true: smallest map header (fixmap), as msgpack-python
 *   writes it, so a request encodes to the same bytes on both sides.
 * - int64AsType:'auto': 64-bit ints decode to numbers while they are safe
 *   integers, to BigInt beyond (which validation then refuses).
 */
const packr = new Packr({
  useRecords: false,
  encodeUndefinedAsNil: true,
  variableMapSize: true,
});
const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  // 'auto' is in msgpackr 2.1's unpack.js but missing from its typings.
  int64AsType: "auto" as "number",
});

/** Encodes one message body. Uint8Array/Buffer values become msgpack `bin`. */
export function encodeBody(message: unknown): Buffer {
  return packr.pack(message);
}

/** Decodes one message body; throws on anything that is not exactly one msgpack value. */
export function decodeBody(bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes);
}

const HOST_IS_LITTLE_ENDIAN = endianness() === "LE";

/**
 * Float64Array → little-endian float64 bytes. On a little-endian host this
 * is a view (no copy); elsewhere the bytes are rewritten in LE order.
 */
export function float64ToBin(values: Float64Array): Buffer {
  if (HOST_IS_LITTLE_ENDIAN) {
    return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  }
  const out = Buffer.allocUnsafe(values.length * 8);
  for (let i = 0; i < values.length; i++) out.writeDoubleLE(values[i], i * 8);
  return out;
}

/** Little-endian float64 bytes → numbers (copies, so alignment never matters). */
export function binToFloat64(bytes: Uint8Array): Float64Array {
  if (bytes.byteLength % 8 !== 0) throw new RangeError(`bin of ${bytes.byteLength} bytes is not float64s`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(bytes.byteLength / 8);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(i * 8, true);
  return out;
}

/**
 * msgpackr writes integers beyond 32 bits as float64; msgpack-python reads
 * those as floats. Echoed integers (ids, starts) above 2^32-1 therefore go
 * out as BigInt, which msgpackr writes as a msgpack int.
 */
export function wireInt(n: number): number | bigint {
  return n > 0xffffffff || n < -0x80000000 ? BigInt(n) : n;
}
