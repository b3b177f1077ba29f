/**
 * The registry's wire vectors (proto/vectors/wire/registry/*.json) against this code: a front on a fresh store
 * with the vectors' clock, setup through an admin endpoint, then the
 * request's bytes on the vector's endpoint give the reply's bytes.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { bind } from "../src/bind";
import { encodeBody, fromJsonable } from "../src/protocol";
import { REGISTRY_ERROR_CODES, REGISTRY_REPLY_TYPES, REGISTRY_REQUEST_TYPES } from "../src/registry/messages";
import { Registry } from "../src/registry/registry";
import { SqliteStore } from "../src/registry/sqlite";
import { Handler } from "../src/server/handler";
import { RegistryFront } from "../src/server/registry_handler";
import { VECTOR_CLOCK } from "../scripts/vector_clock";
import { loadSandbox } from "../src/modules";

const WIRE_DIR = join(__dirname, "..", "..", "proto", "vectors", "wire", "registry");

interface Vector {
  name: string;
  registry?: { admin: boolean };
  setup?: Record<string, unknown>[];
  request: Record<string, unknown> | null;
  request_hex: string | null;
  reply: Record<string, unknown>;
  reply_hex: string;
}

const all: Vector[] = readdirSync(WIRE_DIR)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(WIRE_DIR, f), "utf8")) as Vector);
const vectors = all.filter((v) => v.request !== null);

describe("registry wire vectors", () => {
  beforeAll(loadSandbox); // the module vectors bind a module

  it("cover every registry request and reply type, and open by ref, runs by run", () => {
    const requests = new Set(vectors.map((v) => v.request?.type));
    for (const type of REGISTRY_REQUEST_TYPES) expect(requests, type).toContain(type);
    const replies = new Set(vectors.map((v) => v.reply.type));
    for (const type of REGISTRY_REPLY_TYPES) expect(replies, type).toContain(type);
    expect(vectors.some((v) => v.request?.type === "open" && "ref" in v.request && "run" in v.request)).toBe(true);
    expect(vectors.some((v) => v.reply.type === "opened" && "resolved" in v.reply)).toBe(true);
    expect(vectors.some((v) => v.request?.type === "open" && "params" in v.request && v.reply.type === "opened")).toBe(true);
    expect(vectors.some((v) => v.request?.type === "publish" && "params" in v.request && v.reply.type === "published")).toBe(true);
    expect(vectors.some((v) => v.request?.type === "alias" && v.request.expect === null)).toBe(true);
    expect(vectors.some((v) => v.reply.type === "hello" && "admin" in v.reply)).toBe(true);
    const codes = new Set(all.map((v) => v.reply.code));
    for (const code of REGISTRY_ERROR_CODES) expect(codes, code).toContain(code);
  });

  describe.each(vectors.map((v) => [v.name, v] as const))("%s", (_name, vector) => {
    it("is answered with the vector's reply bytes", async () => {
      const store = await SqliteStore.open(":memory:");
      try {
        const registry = new Registry(store, { bind, now: VECTOR_CLOCK });
        const handler = new Handler({ bind, now: VECTOR_CLOCK });
        const admin = new RegistryFront({ handler, registry, admin: true });
        const front = new RegistryFront({ handler, registry, admin: vector.registry!.admin });
        for (const setup of vector.setup ?? []) expect((await admin.handle(fromJsonable(setup))).type).not.toBe("error");
        const bytes = Buffer.from(vector.request_hex!, "hex");
        expect(encodeBody(fromJsonable(vector.request)).toString("hex")).toBe(vector.request_hex);
        expect((await front.handleBytes(bytes)).bytes.toString("hex")).toBe(vector.reply_hex);
      } finally {
        await store.close();
      }
    });
  });
});
