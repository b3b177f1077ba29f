/**
 * The wire vectors (proto/vectors/wire/*.json) against this code: requests
 * decode to their JSON form and re-encode to the same bytes; handle() on
 * each request gives the vector's reply byte for byte. Also the handler's
 * behaviour that no single vector shows (cache, limits, error isolation).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  ERROR_CODES,
  MAX_VALUES,
  REPLY_TYPES,
  REQUEST_TYPES,
  binToFloat64,
  decodeBody,
  encodeBody,
  fromJsonable,
  toJsonable,
} from "../src/protocol";
import { Handler } from "../src/server/handler";
import { VECTOR_CLOCK } from "../scripts/vector_clock";
import type { Reply } from "../src/protocol";
import { bind } from "../src/bind";

const WIRE_DIR = join(__dirname, "..", "..", "proto", "vectors", "wire");

interface Vector {
  name: string;
  setup?: Record<string, unknown>[];
  request: unknown;
  request_hex: string | null;
  request_size?: number;
  /** null: a message that gets no reply (heartbeat). */
  reply: Record<string, unknown> | null;
  reply_hex: string | null;
}

const vectors: Vector[] = readdirSync(WIRE_DIR)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(WIRE_DIR, f), "utf8")) as Vector);

function requestBytes(vector: Vector): Buffer | null {
  if (vector.request_hex !== null) return Buffer.from(vector.request_hex, "hex");
  if (vector.request_size !== undefined) return Buffer.alloc(vector.request_size);
  return null;
}

describe("wire vectors", () => {
  it("cover every request type, reply type, error code and optional reply field", () => {
    const requestTypes = new Set(vectors.map((v) => (v.request as { type?: string } | null)?.type));
    for (const type of REQUEST_TYPES) expect(requestTypes, type).toContain(type);
    const replyTypes = new Set(vectors.map((v) => v.reply?.type));
    for (const type of REPLY_TYPES) expect(replyTypes, type).toContain(type);
    const codes = new Set(vectors.map((v) => v.reply?.code));
    for (const code of ERROR_CODES) expect(codes, code).toContain(code);
    // Fields only some replies carry: each needs a vector that shows it.
    const has = (type: string, field: string) => vectors.some((v) => v.reply?.type === type && field in v.reply);
    for (const field of ["cycle_starts", "attrs", "stop"]) expect(has("window", field), `window.${field}`).toBe(true);
    for (const field of ["first_row", "group_keys", "attrs", "state"]) expect(has("opened", field), `opened.${field}`).toBe(true);
    expect(has("error", "py"), "error.py").toBe(true);
    const opens = vectors.filter((v) => (v.request as { type?: string } | null)?.type === "open").map((v) => v.request as Record<string, unknown>);
    expect(opens.some((o) => "last_epoch" in o), "open.last_epoch").toBe(true);
    const groupFields = new Set(opens.flatMap((o) => (o.groups as Record<string, unknown>[]).flatMap((g) => Object.keys(g))));
    for (const field of ["lr", "initial_lr", "momentum", "betas", "lr_dtype"]) expect(groupFields, `open.groups[].${field}`).toContain(field);
    const epochs = vectors.filter((v) => (v.request as { type?: string } | null)?.type === "epoch");
    expect(epochs.some((v) => "lr" in (v.request as object)), "epoch.lr").toBe(true);
  });

  describe.each(vectors.map((v) => [v.name, v] as const))("%s", (_name, vector) => {
    it("request bytes decode to the request, and the request encodes to those bytes", () => {
      if (vector.request === null) return; // undecodable or oversize on purpose
      const bytes = Buffer.from(vector.request_hex!, "hex");
      expect(toJsonable(decodeBody(bytes))).toEqual(vector.request);
      expect(encodeBody(fromJsonable(vector.request)).toString("hex")).toBe(vector.request_hex);
    });

    it("reply bytes decode to the reply, and the reply encodes to those bytes", () => {
      if (vector.reply === null || vector.reply_hex === null) return; // no reply to this message
      expect(toJsonable(decodeBody(Buffer.from(vector.reply_hex, "hex")))).toEqual(vector.reply);
      expect(encodeBody(fromJsonable(vector.reply)).toString("hex")).toBe(vector.reply_hex);
    });

    it("handle() answers the request with the vector's reply bytes", () => {
      const bytes = requestBytes(vector);
      if (bytes === null) return; // reply-only vector (INTERNAL)
      const handler = new Handler({ bind, now: VECTOR_CLOCK });
      for (const setup of vector.setup ?? []) expect(handler.handle(setup).type).not.toBe("error");
      if (vector.reply_hex === null) {
        const handled = handler.handleBytes(bytes);
        expect(handled.silent).toBe(true);
        expect(handled.reply.type).toBe("none"); // accepted, and nothing goes back
        return;
      }
      expect(handler.handleBytes(bytes).bytes.toString("hex")).toBe(vector.reply_hex);
      if (vector.request !== null) {
        // A fresh handler: `stats` counts the requests answered.
        const again = new Handler({ bind, now: VECTOR_CLOCK });
        for (const setup of vector.setup ?? []) again.handle(setup);
        expect(toJsonable(again.handle(fromJsonable(vector.request)))).toEqual(vector.reply);
      }
    });
  });
});

describe("handle()", () => {
  const STEP = { type: "StepLR", step_size: 3, gamma: 0.5 };
  const GROUPS = [{ lr: 0.1 }, { lr: 0.3 }];

  function openStep(handler: Handler, spec: Record<string, unknown> = STEP, groups = GROUPS): string {
    const reply = handler.handle({ v: 2, id: 1, type: "open", spec, groups });
    if (reply.type !== "opened") throw new Error(JSON.stringify(reply));
    return reply.hash;
  }

  function window(handler: Handler, fields: Record<string, unknown>): Reply {
    return handler.handle({ v: 2, id: 2, type: "window", start: 0, count: 1, ...fields });
  }

  it("answers windows with the values of bind().rows()", () => {
    const handler = new Handler({ bind });
    const hash = openStep(handler);
    const reply = window(handler, { hash, start: 7, count: 50 });
    if (reply.type !== "window") throw new Error(JSON.stringify(reply));
    expect(binToFloat64(reply.lr)).toEqual(bind(STEP, GROUPS).rows(7, 50).lr);
  });

  it("gives the same handle for the same spec and groups, another for other groups", () => {
    const handler = new Handler({ bind });
    const first = openStep(handler);
    expect(openStep(handler, { gamma: 0.5, step_size: 3, type: "StepLR" })).toBe(first);
    expect(openStep(handler, STEP, [{ lr: 0.1 }])).not.toBe(first);
  });

  it("forgets the least recently used handle beyond the cache size", () => {
    const handler = new Handler({ bind, cacheSize: 1 });
    const first = openStep(handler);
    openStep(handler, STEP, [{ lr: 0.2 }]);
    expect(window(handler, { hash: first })).toMatchObject({ type: "error", code: "UNKNOWN_HASH" });
    openStep(handler);
    expect(window(handler, { hash: first }).type).toBe("window");
  });

  it("refuses windows whose rows × groups exceed max_values", () => {
    const handler = new Handler({ bind });
    const groups = Array.from({ length: 32 }, () => ({ lr: 0.1 }));
    const hash = openStep(handler, STEP, groups);
    const count = Math.floor(MAX_VALUES / groups.length) + 1;
    expect(window(handler, { hash, count })).toMatchObject({ type: "error", code: "WINDOW_TOO_LARGE", path: "count" });
  });

  it("refuses an origin whose lr list does not match the groups", () => {
    const handler = new Handler({ bind });
    const hash = openStep(handler);
    const reply = window(handler, { hash, start: 2, origin: { step: 1, lr: [0.1] } });
    expect(reply).toMatchObject({ type: "error", code: "BAD_REQUEST", path: "origin.lr" });
  });

  it("echoes ids beyond 32 bits as msgpack ints", () => {
    const handler = new Handler({ bind });
    const id = 2 ** 40 + 1;
    const { bytes } = handler.handleBytes(encodeBody({ v: 2, id: BigInt(id), type: "hello" }));
    expect((decodeBody(bytes) as { id: unknown }).id).toBe(id);
    expect(bytes.includes(Buffer.from("a26964d3", "hex"))).toBe(true); // "id": int64
  });

  it("rebuilds metric states from their known fields: keys a client adds are not sent back", () => {
    const handler = new Handler({ bind });
    for (const spec of [{ type: "ReduceLROnPlateau" }, { type: "range_test", num_steps: 10 }]) {
      const opened = handler.handle({ v: 2, id: 1, type: "open", spec, groups: [{ lr: 0.1 }] });
      if (opened.type !== "opened") throw new Error(JSON.stringify(opened));
      const state = { ...(opened.state as Record<string, unknown>), extra: new Array(1000).fill(1) };
      const reply = handler.handle({ v: 2, id: 2, type: "metric", hash: opened.hash, state, metric: 1.0 });
      expect(reply.type).toBe("metric");
      expect(Object.keys((reply as { state: object }).state)).not.toContain("extra");
    }
  });

  it("turns an exception inside a handler into INTERNAL and keeps answering", () => {
    // Fault injection: a bind that breaks (not a stand-in for the real one) shows the isolation.
    const errors: unknown[] = [];
    const handler = new Handler({
      bind: () => {
        throw new TypeError("broken on purpose");
      },
      onInternalError: (err) => errors.push(err),
    });
    const reply = handler.handle({ v: 2, id: 4, type: "open", spec: STEP, groups: GROUPS });
    expect(reply).toMatchObject({ v: 2, id: 4, type: "error", code: "INTERNAL" });
    expect(errors).toHaveLength(1);
    expect(handler.handle({ v: 2, id: 5, type: "hello" })).toMatchObject({ id: 5, type: "hello" });
  });
});
