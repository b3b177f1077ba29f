import { describe, expect, it } from "vitest";
import { Packr } from "msgpackr";
import {
  MAX_DECODE_DEPTH,
  MAX_DECODE_NODES,
  MAX_WINDOW,
  ProtocolError,
  binToFloat64,
  decodeBody,
  encodeBody,
  float64ToBin,
  fromJsonable,
  isPlainMap,
  readRequest,
  toJsonable,
  wireInt,
} from "../src/protocol";
import { splitFrames } from "../src/server/envelope";
import { LruCache } from "../src/server/lru";

/** Reads a request expecting a refusal; returns the error so the test can check code and path. */
function refusal(body: Record<string, unknown>): ProtocolError {
  try {
    readRequest(body);
  } catch (err) {
    if (err instanceof ProtocolError) return err;
    throw err;
  }
  throw new Error(`accepted: ${JSON.stringify(body)}`);
}

const HASH = "ab".repeat(32);

describe("codec", () => {
  it("encodes maps, strings and ints to the bytes msgpack-python writes", () => {
    // Bytes from msgpack.packb(..., use_bin_type=True) in Python 3.11 / msgpack 1.x.
    expect(encodeBody({ type: "hello", v: 2, id: 0 }).toString("hex")).toBe("83a474797065a568656c6c6fa17602a2696400");
    expect(encodeBody({ a: "x".repeat(32) }).toString("hex")).toBe(`81a161d920${"78".repeat(32)}`);
    expect(encodeBody({ n: 70000 }).toString("hex")).toBe("81a16ece00011170");
    expect(encodeBody({ n: -33 }).toString("hex")).toBe("81a16ed0df");
    expect(encodeBody({ n: 0.1 }).toString("hex")).toBe("81a16ecb3fb999999999999a");
    expect(encodeBody({ b: Buffer.from([1, 2]) }).toString("hex")).toBe("81a162c4020102");
  });

  it("writes integer-valued floats as ints (documented: decoders apply float())", () => {
    expect(encodeBody({ n: 1.0 }).toString("hex")).toBe("81a16e01");
  });

  it("writes ints over 32 bits as msgpack ints once passed through wireInt", () => {
    expect(encodeBody({ n: wireInt(2 ** 40) }).toString("hex")).toBe("81a16ed30000010000000000");
    expect(wireInt(7)).toBe(7);
    expect(decodeBody(encodeBody({ n: wireInt(2 ** 40) }))).toEqual({ n: 2 ** 40 });
  });

  it("decodes maps as plain objects and bin as bytes", () => {
    const decoded = decodeBody(Buffer.from("82a161c4020102a16293c0c3cb3fb999999999999a", "hex")) as Record<string, unknown>;
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Buffer.from(decoded.a as Uint8Array)).toEqual(Buffer.from([1, 2]));
    expect(decoded.b).toEqual([null, true, 0.1]);
  });

  it("tells msgpack maps from arrays and bins", () => {
    expect(isPlainMap(decodeBody(Buffer.from("80", "hex")))).toBe(true);
    expect(isPlainMap(decodeBody(Buffer.from("9101", "hex")))).toBe(false);
    expect(isPlainMap(decodeBody(Buffer.from("c40101", "hex")))).toBe(false);
  });

  it("refuses everything that is not plain msgpack: extensions, records, references, 0xc1", () => {
    expect(() => decodeBody(Buffer.from("c1", "hex"))).toThrow(/0xc1/);
    expect(() => decodeBody(Buffer.from("d6ff00000001", "hex"))).toThrow(/0xd6/); // timestamp
    // msgpackr with records and structured clones (shared references) on: its own extensions.
    const fancy = new Packr({ useRecords: true, structuredClone: true });
    const shared = { type: "StepLR", step_size: 2 };
    expect(() => decodeBody(fancy.pack({ v: 1, id: 1, type: "open", spec: shared, again: shared }))).toThrow(/not plain msgpack/);
    expect(() => decodeBody(fancy.pack([{ a: 1 }, { a: 2 }]))).toThrow(/not plain msgpack/);
  });

  it("refuses map keys that are not strings", () => {
    expect(() => decodeBody(Buffer.from("810102", "hex"))).toThrow(/map key/);
    expect(decodeBody(Buffer.from("81a16101", "hex"))).toEqual({ a: 1 });
  });

  it("bounds nesting depth and the number of values, without recursion", () => {
    const nested = (depth: number) => Buffer.concat([Buffer.alloc(depth - 1, 0x91), Buffer.from([0x80])]);
    expect(() => decodeBody(nested(MAX_DECODE_DEPTH))).not.toThrow();
    expect(() => decodeBody(nested(MAX_DECODE_DEPTH + 1))).toThrow(/nesting deeper/);
    expect(() => decodeBody(nested(1_000_000))).toThrow(/nesting deeper/);
    const header = Buffer.from([0xdd, 0, 0, 0, 0]);
    header.writeUInt32BE(MAX_DECODE_NODES, 1); // the array and its entries: one value too many
    const wide = Buffer.concat([header, Buffer.alloc(MAX_DECODE_NODES, 0)]);
    expect(() => decodeBody(wide)).toThrow(/more than/);
    // A header claiming more entries than there are bytes is refused before anything is read.
    expect(() => decodeBody(Buffer.from("dfffffffff", "hex"))).toThrow(/longer than the body/);
  });

  it("refuses trailing bytes and truncated strings", () => {
    expect(() => decodeBody(Buffer.from("8001", "hex"))).toThrow(/after the value/);
    expect(() => decodeBody(Buffer.from("81a16101a5", "hex"))).toThrow();
    expect(() => decodeBody(Buffer.from("d9ff61", "hex"))).toThrow(/truncated/);
  });

  it("refuses truncated input", () => {
    expect(() => decodeBody(Buffer.from("83a474797065", "hex"))).toThrow();
  });

  it("round-trips float64 bins little-endian", () => {
    const values = new Float64Array([0.1, -2.5, 1e-300, 0]);
    const bin = float64ToBin(values);
    expect(bin.readDoubleLE(8)).toBe(-2.5);
    expect(Array.from(binToFloat64(bin))).toEqual([0.1, -2.5, 1e-300, 0]);
    // A bin inside a decoded message need not be 8-byte aligned.
    const decoded = decodeBody(encodeBody({ x: 1, lr: bin })) as { lr: Uint8Array };
    expect(Array.from(binToFloat64(decoded.lr))).toEqual([0.1, -2.5, 1e-300, 0]);
    expect(() => binToFloat64(new Uint8Array(7))).toThrow(RangeError);
  });

  it("maps bins to and from the vectors' JSON form", () => {
    const message = { v: 2, lr: float64ToBin(new Float64Array([0.5, 0.25])), nested: [{ m: null }] };
    const json = toJsonable(message);
    expect(json).toEqual({ v: 2, lr: { $bin_f64: [0.5, 0.25] }, nested: [{ m: null }] });
    expect(encodeBody(fromJsonable(json))).toEqual(encodeBody(message));
    const special = { best: Infinity, worst: -Infinity, lr: float64ToBin(new Float64Array([NaN])) };
    const specialJson = toJsonable(special);
    expect(specialJson).toEqual({ best: { $float: "inf" }, worst: { $float: "-inf" }, lr: { $bin_f64: [{ $float: "nan" }] } });
    expect(encodeBody(fromJsonable(JSON.parse(JSON.stringify(specialJson))))).toEqual(encodeBody(special));
  });
});

describe("readRequest", () => {
  const head = { v: 2, id: 3 };

  it("accepts every message type", () => {
    expect(readRequest({ ...head, type: "hello", client: "x" })).toEqual({ type: "hello", client: "x" });
    expect(readRequest({ ...head, type: "window", hash: HASH, start: 0, count: 1 })).toEqual({
      type: "window",
      hash: HASH,
      start: 0,
      count: 1,
    });
    expect(readRequest({ ...head, type: "rebase", hash: HASH, start: 5, count: 2, origin: { step: 4, lr: [0.1] } })).toEqual({
      type: "rebase",
      hash: HASH,
      start: 5,
      count: 2,
      origin: { step: 4, lr: [0.1] },
    });
    expect(readRequest({ ...head, type: "epoch", hash: HASH, epochs: [0, 1.5] })).toEqual({ type: "epoch", hash: HASH, epochs: [0, 1.5] });
    expect(readRequest({ ...head, type: "metric", hash: HASH, state: {}, metric: NaN })).toMatchObject({ type: "metric", state: {} });
  });

  it("normalizes groups so null and absent momentum give the same handle", () => {
    const open = readRequest({
      ...head,
      type: "open",
      spec: { type: "StepLR" },
      groups: [{ lr: 0.1, momentum: null, betas: null }, { lr: 1, betas: [0.9, 0.999] }],
    });
    expect(open).toEqual({ type: "open", spec: { type: "StepLR" }, groups: [{ lr: 0.1 }, { lr: 1, betas: [0.9, 0.999] }], last_epoch: -1 });
  });

  it.each([
    ["v (BAD_VERSION)", { id: 1, type: "hello" }, "BAD_VERSION", "v"],
    ["v (BAD_VERSION)", { v: 1, id: 1, type: "hello" }, "BAD_VERSION", "v"],
    ["v (BAD_VERSION)", { v: 1n, id: 1, type: "hello" }, "BAD_VERSION", "v"],
    ["id (BAD_REQUEST)", { v: 2, type: "hello" }, "BAD_REQUEST", "id"],
    ["id (BAD_REQUEST)", { v: 2, id: -1, type: "hello" }, "BAD_REQUEST", "id"],
    ["id (BAD_REQUEST)", { v: 2, id: 1.5, type: "hello" }, "BAD_REQUEST", "id"],
    ["type (UNKNOWN_TYPE)", { v: 2, id: 1, type: "dance" }, "UNKNOWN_TYPE", "type"],
    ["type (UNKNOWN_TYPE)", { v: 2, id: 1 }, "UNKNOWN_TYPE", "type"],
    ["client (BAD_REQUEST)", { v: 2, id: 1, type: "hello", client: 5 }, "BAD_REQUEST", "client"],
    ["spec (BAD_REQUEST)", { v: 2, id: 1, type: "open", spec: [], groups: [{ lr: 0.1 }] }, "BAD_REQUEST", "spec"],
    ["groups (BAD_REQUEST)", { v: 2, id: 1, type: "open", spec: {}, groups: [] }, "BAD_REQUEST", "groups"],
    ["groups[0].lr (BAD_REQUEST)", { v: 2, id: 1, type: "open", spec: {}, groups: [{ lr: "0.1" }] }, "BAD_REQUEST", "groups[0].lr"],
    ["groups[1].lr (BAD_REQUEST)", { v: 2, id: 1, type: "open", spec: {}, groups: [{ lr: 0.1 }, { lr: Infinity }] }, "BAD_REQUEST", "groups[1].lr"],
    ["groups[0].betas (BAD_REQUEST)", { v: 2, id: 1, type: "open", spec: {}, groups: [{ lr: 0.1, betas: [0.9] }] }, "BAD_REQUEST", "groups[0].betas"],
    ["groups[0].max_lr (BAD_REQUEST)", { v: 2, id: 1, type: "open", spec: {}, groups: [{ lr: 0.1, max_lr: "0.5" }] }, "BAD_REQUEST", "groups[0].max_lr"],
    ["groups[0].base_momentum (BAD_REQUEST)", { v: 2, id: 1, type: "open", spec: {}, groups: [{ lr: 0.1, base_momentum: NaN }] }, "BAD_REQUEST", "groups[0].base_momentum"],
    ["hash (BAD_REQUEST)", { v: 2, id: 1, type: "window", hash: 5, start: 0, count: 1 }, "BAD_REQUEST", "hash"],
    ["start (BAD_REQUEST)", { v: 2, id: 1, type: "window", hash: HASH, start: -1, count: 1 }, "BAD_REQUEST", "start"],
    ["start (BAD_REQUEST)", { v: 2, id: 1, type: "window", hash: HASH, start: 0.5, count: 1 }, "BAD_REQUEST", "start"],
    ["count (BAD_REQUEST)", { v: 2, id: 1, type: "window", hash: HASH, start: 0, count: 0 }, "BAD_REQUEST", "count"],
    ["count (BAD_REQUEST)", { v: 2, id: 1, type: "window", hash: HASH, start: 0, count: 2.5 }, "BAD_REQUEST", "count"],
    ["count (WINDOW_TOO_LARGE)", { v: 2, id: 1, type: "window", hash: HASH, start: 0, count: MAX_WINDOW + 1 }, "WINDOW_TOO_LARGE", "count"],
    ["start (BAD_REQUEST)", { v: 2, id: 1, type: "window", hash: HASH, start: 2 ** 53 - 2, count: 5 }, "BAD_REQUEST", "start"],
    ["start (BAD_REQUEST)", { v: 2, id: 1, type: "window", hash: HASH, start: 3, count: 1, origin: { step: 3, lr: [0.1] } }, "BAD_REQUEST", "start"],
    ["origin.lr (BAD_REQUEST)", { v: 2, id: 1, type: "window", hash: HASH, start: 3, count: 1, origin: { step: 1, lr: [] } }, "BAD_REQUEST", "origin.lr"],
    ["origin (BAD_REQUEST)", { v: 2, id: 1, type: "rebase", hash: HASH, start: 3, count: 1 }, "BAD_REQUEST", "origin"],
    ["origin.attrs.T_cur (BAD_REQUEST)", { v: 2, id: 1, type: "rebase", hash: HASH, start: 3, count: 1, origin: { step: 1, lr: [0.1], attrs: { T_cur: "0" } } }, "BAD_REQUEST", "origin.attrs.T_cur"],
    ["epochs (BAD_REQUEST)", { v: 2, id: 1, type: "epoch", hash: HASH, epochs: [] }, "BAD_REQUEST", "epochs"],
    ["epochs[1] (BAD_REQUEST)", { v: 2, id: 1, type: "epoch", hash: HASH, epochs: [0, NaN] }, "BAD_REQUEST", "epochs[1]"],
    ["epochs (WINDOW_TOO_LARGE)", { v: 2, id: 1, type: "epoch", hash: HASH, epochs: new Array(MAX_WINDOW + 1).fill(0) }, "WINDOW_TOO_LARGE", "epochs"],
    ["metric (BAD_REQUEST)", { v: 2, id: 1, type: "metric", hash: HASH, state: {}, metric: "0.5" }, "BAD_REQUEST", "metric"],
    ["state (BAD_REQUEST)", { v: 2, id: 1, type: "metric", hash: HASH, state: [], metric: 0.5 }, "BAD_REQUEST", "state"],
  ])("refuses bad %s", (_name, body, code, path) => {
    const err = refusal(body as Record<string, unknown>);
    expect(err.code).toBe(code);
    expect(err.path).toBe(path);
  });
});

describe("splitFrames", () => {
  const identity = Buffer.from([0, 1, 2, 3, 4]);
  const body = Buffer.from([0x80]);
  const empty = Buffer.alloc(0);

  it("recognizes REQ and DEALER envelopes", () => {
    expect(splitFrames([identity, empty, body])).toEqual({ head: [identity, empty], body });
    expect(splitFrames([identity, body])).toEqual({ head: [identity], body });
  });

  it("answers malformed envelopes with the head it can recover", () => {
    expect(splitFrames([identity, empty, body, body])).toMatchObject({ head: [identity, empty], malformed: expect.any(String) });
    expect(splitFrames([identity, body, body])).toMatchObject({ head: [identity], malformed: expect.any(String) });
  });
});

describe("LruCache", () => {
  it("evicts the least recently used entry", () => {
    const cache = new LruCache<string, number>(2);
    cache.set("a", 1);
    cache.set("b", 2);
    expect(cache.get("a")).toBe(1); // a is now the most recent
    cache.set("c", 3);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBe(1);
    expect(cache.get("c")).toBe(3);
    expect(cache.size).toBe(2);
  });

  it("refuses a capacity below 1", () => {
    expect(() => new LruCache(0)).toThrow(RangeError);
  });
});
