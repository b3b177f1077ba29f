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

/** Deepest nesting of maps and arrays a body may have (the body map is depth 1). */
export const MAX_DECODE_DEPTH = 32;
/**
 * Most values (maps, arrays, scalars, map keys included) one body may hold:
 * the largest honest body is an `epoch` request of max_window (65536) epochs.
 */
export const MAX_DECODE_NODES = 100_000;

/**
 * Decodes one message body; throws on anything that is not exactly one
 * plain msgpack value within the depth and node budgets (checkPlainMsgpack).
 */
export function decodeBody(bytes: Uint8Array): unknown {
  checkPlainMsgpack(bytes);
  return unpackr.unpack(bytes);
}

/**
 * Walks the bytes before msgpackr sees them, so its extensions (records,
 * shared references, typed arrays, dates) never reach the handler and the
 * decoded value is a tree of plain maps, arrays, strings, numbers, bools,
 * nil and bin of bounded depth and size. Iterative: no recursion to exhaust.
 * Throws a RangeError naming the byte offset.
 */
export function checkPlainMsgpack(bytes: Uint8Array): void {
  const n = bytes.byteLength;
  const view = new DataView(bytes.buffer, bytes.byteOffset, n);
  // Per open container: items still to read (a map of k entries has 2k), and whether it is a map.
  const remaining: number[] = [];
  const isMap: boolean[] = [];
  let pos = 0;
  let nodes = 0;
  const fail = (what: string): never => {
    throw new RangeError(`${what} at byte ${pos}`);
  };
  const need = (k: number): void => {
    if (pos + k > n) fail("truncated value");
  };
  const len = (size: 1 | 2 | 4): number => {
    need(1 + size);
    const v = size === 1 ? bytes[pos + 1] : size === 2 ? view.getUint16(pos + 1) : view.getUint32(pos + 1);
    pos += 1 + size;
    return v;
  };
  const skip = (k: number): void => {
    need(k);
    pos += k;
  };
  do {
    if (pos >= n) fail("truncated value");
    if (++nodes > MAX_DECODE_NODES) fail(`more than ${MAX_DECODE_NODES} values`);
    const b = bytes[pos];
    const top = remaining.length - 1;
    // In a map the items alternate key, value from an even count: even left = a key comes.
    const asKey = top >= 0 && isMap[top] && remaining[top] % 2 === 0;
    let open = -1; // entries of a container this byte opens
    let map = false;
    if (asKey && !((b >= 0xa0 && b <= 0xbf) || b === 0xd9 || b === 0xda || b === 0xdb)) fail("map key that is not a string");
    if (b <= 0x7f || b >= 0xe0) pos += 1; // fixint
    else if (b >= 0x80 && b <= 0x8f) [open, map, pos] = [b & 0x0f, true, pos + 1];
    else if (b >= 0x90 && b <= 0x9f) [open, pos] = [b & 0x0f, pos + 1];
    else if (b >= 0xa0 && b <= 0xbf) skip(1 + (b & 0x1f));
    else {
      switch (b) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          pos += 1;
          break;
        case 0xc4: // bin 8/16/32
        case 0xd9: // str 8/16/32
          skip(len(1));
          break;
        case 0xc5:
        case 0xda:
          skip(len(2));
          break;
        case 0xc6:
        case 0xdb:
          skip(len(4));
          break;
        case 0xca: // float32
          skip(5);
          break;
        case 0xcb: // float64
          skip(9);
          break;
        case 0xcc: // uint / int 8..64
        case 0xd0:
          skip(2);
          break;
        case 0xcd:
        case 0xd1:
          skip(3);
          break;
        case 0xce:
        case 0xd2:
          skip(5);
          break;
        case 0xcf:
        case 0xd3:
          skip(9);
          break;
        case 0xdc: // array 16/32
          open = len(2);
          break;
        case 0xdd:
          open = len(4);
          break;
        case 0xde: // map 16/32
          [open, map] = [len(2), true];
          break;
        case 0xdf:
          [open, map] = [len(4), true];
          break;
        default: // 0xc1 (never used) and every extension type (0xc7-0xc9, 0xd4-0xd8)
          fail(`msgpack type 0x${b.toString(16)} is not plain msgpack (no extensions, records or references)`);
      }
    }
    if (top >= 0) remaining[top] -= 1;
    if (open >= 0) {
      const entries = map ? open * 2 : open;
      // Every entry is at least one byte: a header claiming more cannot be honest.
      if (entries > n - pos) fail("container longer than the body");
      if (remaining.length + 1 > MAX_DECODE_DEPTH) fail(`nesting deeper than ${MAX_DECODE_DEPTH}`);
      if (entries > 0) {
        remaining.push(entries);
        isMap.push(map);
      }
    }
    while (remaining.length > 0 && remaining[remaining.length - 1] === 0) {
      remaining.pop();
      isMap.pop();
    }
  } while (remaining.length > 0);
  if (pos !== n) fail("bytes after the value");
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
