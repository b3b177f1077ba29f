/**
 * One suite, both stores: the SQLite file and a real Postgres behave the
 * same through the Store interface.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PostgresStore } from "../src/registry/postgres";
import { SqliteStore } from "../src/registry/sqlite";
import { MAX_LISTED_USES, MAX_RUN_USES, RegistryError, Store } from "../src/registry/store";
import { startPostgres, TestPostgres } from "./pg";

const SPEC_A = { type: "StepLR", step_size: 3, gamma: 0.5, last_epoch: -1 };
const SPEC_B = { type: "StepLR", step_size: 4, gamma: 0.5, last_epoch: -1 };
const pub = (name: string, canonical: unknown, hash: string, at = 1000) => ({ name, canonical, spec_hash: hash, message: "m", author: "ann", at });
const H = (c: string) => c.repeat(64);

async function refusal(p: Promise<unknown>): Promise<RegistryError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RegistryError) return err;
    throw err;
  }
  throw new Error("expected a RegistryError");
}

interface Backend {
  name: string;
  setup(): Promise<void>;
  open(): Promise<Store>;
  /** A second handle on the same store (another replica, another process). */
  openAgain(): Promise<Store>;
  teardown(): Promise<void>;
}

let pg: TestPostgres;
const opened: Store[] = [];

const sqlite: Backend = (() => {
  let dir = "";
  let path = "";
  return {
    name: "sqlite",
    async setup() {
      dir = mkdtempSync(join(tmpdir(), "lrbridge-store-"));
    },
    async open() {
      path = join(dir, `${opened.length}.sqlite`);
      return SqliteStore.open(path);
    },
    async openAgain() {
      return SqliteStore.open(path);
    },
    async teardown() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
})();

const postgres: Backend = (() => {
  let url = "";
  return {
    name: "postgres",
    async setup() {
      pg = startPostgres();
    },
    async open() {
      url = await pg.database();
      return PostgresStore.open(url);
    },
    async openAgain() {
      return PostgresStore.open(url);
    },
    async teardown() {
      pg?.stop();
    },
  };
})();

describe.each([sqlite, postgres])("$name store", (backend) => {
  let store: Store;
  const open = async () => {
    const s = await backend.open();
    opened.push(s);
    return s;
  };
  const again = async () => {
    const s = await backend.openAgain();
    opened.push(s);
    return s;
  };

  beforeAll(() => backend.setup(), 60_000);
  afterEach(async () => {
    while (opened.length) await opened.pop()!.close();
  });
  afterAll(() => backend.teardown());

  it("numbers versions from 1 per name, and publishing the same content returns that version", async () => {
    store = await open();
    const v1 = await store.publish(pub("team/a", SPEC_A, H("a")));
    const v2 = await store.publish(pub("team/a", SPEC_B, H("b")));
    const other = await store.publish(pub("team/b", SPEC_A, H("a")));
    const again1 = await store.publish({ ...pub("team/a", SPEC_A, H("a")), message: "again" });
    expect([v1.version.version, v1.created]).toEqual([1, true]);
    expect([v2.version.version, v2.created]).toEqual([2, true]);
    expect([other.version.version, other.created]).toEqual([1, true]);
    expect(again1.created).toBe(false);
    expect(again1.version).toEqual(v1.version);
    expect((await store.version("team/a", 2))?.canonical).toEqual(SPEC_B);
    expect((await store.latest("team/a"))?.version).toBe(2);
    expect((await store.versionByHash("team/a", H("a")))?.version).toBe(1);
    expect(await store.version("team/a", 3)).toBeNull();
    expect(await store.latest("team/none")).toBeNull();
    expect(await store.versionByHash("team/b", H("b"))).toBeNull();
  });

  it("concurrent publishes of one name get distinct numbers; identical ones one version", async () => {
    store = await open();
    const other = await again();
    const specs = Array.from({ length: 12 }, (_, i) => ({ ...SPEC_A, step_size: i + 1 }));
    const results = await Promise.all(specs.map((s, i) => (i % 2 ? store : other).publish(pub("team/c", s, (i + 10).toString(16).repeat(32)))));
    expect(results.map((r) => r.version.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    const same = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? store : other).publish(pub("team/d", SPEC_A, H("d")))));
    expect(new Set(same.map((r) => r.version.version))).toEqual(new Set([1]));
    expect(same.filter((r) => r.created)).toHaveLength(1);
  });

  it("moves aliases with compare-and-set and keeps every move as an event", async () => {
    store = await open();
    await store.publish(pub("team/x", SPEC_A, H("a")));
    await store.publish(pub("team/x", SPEC_B, H("b")));
    const first = await store.moveAlias({ name: "team/x", alias: "prod", to: 1, expect: null, who: "ann", why: "first", at: 100 });
    expect(first).toEqual({ alias: "prod", from: null, to: 1, who: "ann", why: "first", at: 100 });
    expect(await store.aliasTarget("team/x", "prod")).toBe(1);

    const exists = await refusal(store.moveAlias({ name: "team/x", alias: "prod", to: 2, expect: null, who: "bob", why: "", at: 101 }));
    expect(exists.code).toBe("ALIAS_CONFLICT");
    expect(exists.message).toContain("points at version 1");
    const stale = await refusal(store.moveAlias({ name: "team/x", alias: "prod", to: 2, expect: 2, who: "bob", why: "", at: 102 }));
    expect(stale.code).toBe("ALIAS_CONFLICT");
    const missing = await refusal(store.moveAlias({ name: "team/x", alias: "prod", to: 9, who: "bob", why: "", at: 103 }));
    expect([missing.code, missing.path]).toEqual(["UNKNOWN_REF", "version"]);
    // Refused moves wrote nothing.
    expect(await store.aliasTarget("team/x", "prod")).toBe(1);
    expect((await store.history("team/x")).events).toHaveLength(1);

    await store.moveAlias({ name: "team/x", alias: "prod", to: 2, expect: 1, who: "bob", why: "v2 is better", at: 200 });
    await store.moveAlias({ name: "team/x", alias: "prod", to: 1, who: "ann", why: "rollback", at: 300 });
    const history = await store.history("team/x");
    expect(history.versions.map((v) => v.version)).toEqual([1, 2]);
    expect(history.versions[0]).not.toHaveProperty("canonical");
    expect(history.aliases).toEqual({ prod: 1 });
    expect(history.events.map((e) => [e.from, e.to, e.why])).toEqual([
      [null, 1, "first"],
      [1, 2, "v2 is better"],
      [2, 1, "rollback"],
    ]);
    // What was prod at T.
    expect((await store.history("team/x", 250)).aliases).toEqual({ prod: 2 });
    expect((await store.history("team/x", 250)).events).toHaveLength(2);
    expect((await store.history("team/x", 50)).aliases).toEqual({});
  });

  it("lets exactly one of several concurrent compare-and-set moves win", async () => {
    store = await open();
    const other = await again();
    for (const s of [SPEC_A, SPEC_B]) await store.publish(pub("team/y", s, contentOf(s)));
    await store.moveAlias({ name: "team/y", alias: "prod", to: 1, who: "a", why: "", at: 1 });
    const tries = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => (i % 2 ? store : other).moveAlias({ name: "team/y", alias: "prod", to: 2, expect: 1, who: `w${i}`, why: "", at: 2 + i })),
    );
    expect(tries.filter((t) => t.status === "fulfilled")).toHaveLength(1);
    for (const t of tries) if (t.status === "rejected") expect((t.reason as RegistryError).code).toBe("ALIAS_CONFLICT");
    const creators = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => (i % 2 ? store : other).moveAlias({ name: "team/y", alias: "canary", to: 2, expect: null, who: `w${i}`, why: "", at: 20 + i })),
    );
    expect(creators.filter((t) => t.status === "fulfilled")).toHaveLength(1);
    expect((await store.history("team/y")).events).toHaveLength(3);
  });

  it("records runs: uses, events and the handle's inputs", async () => {
    store = await open();
    await store.publish(pub("team/r", SPEC_A, H("a")));
    await store.publish(pub("team/r", SPEC_B, H("b")));
    const handle = { hash: H("e"), canonical: SPEC_A, groups: [{ lr: 0.1, momentum: 0.9 }], last_epoch: -1 };
    const use = { ref: "team/r@prod", name: "team/r", version: 1, spec_hash: H("a"), step: 0, at: 10, hash: H("e"), groups: handle.groups, last_epoch: -1 };
    await store.recordUse({ id: "run-1", name: "first", rank: 0, world_size: 2, host: "h", pid: 7 }, use, handle);
    await store.recordUse({ id: "run-1", rank: 1, pid: 8 }, { ...use, at: 11 }, handle);
    await store.recordUse({ id: "run-2" }, { ...use, version: 2, spec_hash: H("b"), ref: "team/r@2", at: 12, step: 5, hash: H("f"), last_epoch: 4 }, { ...handle, hash: H("f"), last_epoch: 4 });
    await store.recordEvent("run-1", { kind: "origin", step: 7, data: { lr: [0.05] }, at: 13 });
    await store.recordEvent("run-1", { kind: "metric", step: 9, data: { metric: 1.5 }, at: 14 });
    await store.touchRun("run-2", 40, 15);

    expect(await store.handle(H("e"))).toEqual(handle);
    expect(await store.handle(H("0"))).toBeNull();

    const all = await store.runs({ name: "team/r" });
    expect(all.map((r) => r.id)).toEqual(["run-2", "run-1"]);
    expect(all[1]).toMatchObject({ name: "first", world_size: 2, host: "h", last_step: 9, first_seen: 10, last_seen: 14 });
    expect(all[1].uses).toHaveLength(2);
    expect(all[1]).not.toHaveProperty("events");
    expect(all[0]).toMatchObject({ last_step: 40, name: null });
    expect((await store.runs({ name: "team/r", version: 1 })).map((r) => r.id)).toEqual(["run-1"]);
    expect(await store.runs({ name: "team/none" })).toEqual([]);

    const [one] = await store.runs({ run: "run-1" });
    expect(one.events).toEqual([
      { kind: "origin", step: 7, data: { lr: [0.05] }, at: 13 },
      { kind: "metric", step: 9, data: { metric: 1.5 }, at: 14 },
    ]);
    expect(one.uses[0]).toEqual(use);
    expect([one.uses_total, all[0].uses_total]).toEqual([2, 1]);
  });

  it("keeps the first MAX_RUN_USES uses of a run, and a listing carries the first MAX_LISTED_USES of each", async () => {
    store = await open();
    await store.publish(pub("team/u", SPEC_A, H("a")));
    const handle = { hash: H("e"), canonical: SPEC_A, groups: [{ lr: 0.1 }], last_epoch: -1 };
    const use = (step: number) => ({ ref: "team/u@1", name: "team/u", version: 1, spec_hash: H("a"), step, at: 10 + step, hash: H("e"), groups: handle.groups, last_epoch: -1 });
    for (let step = 0; step < MAX_RUN_USES + 5; step++) await store.recordUse({ id: "busy" }, use(step), handle);
    await store.recordUse({ id: "quiet" }, use(0), handle);

    const listed = await store.runs({ name: "team/u" });
    expect(listed.map((r) => [r.id, r.uses.length, r.uses_total])).toEqual([
      ["busy", MAX_LISTED_USES, MAX_RUN_USES],
      ["quiet", 1, 1],
    ]);
    expect(listed[0].uses.map((u) => u.step)).toEqual(Array.from({ length: MAX_LISTED_USES }, (_, i) => i));
    const [busy] = await store.runs({ run: "busy" });
    expect(busy.uses.map((u) => u.step)).toEqual(Array.from({ length: MAX_RUN_USES }, (_, i) => i));
    // the run itself still moves on past the uses it keeps
    expect(busy.last_step).toBe(MAX_RUN_USES + 4);
  }, 60_000);

  it("shows one process's writes to another", async () => {
    store = await open();
    const other = await again();
    await store.publish(pub("team/s", SPEC_A, H("a")));
    await store.moveAlias({ name: "team/s", alias: "prod", to: 1, who: "a", why: "", at: 1 });
    expect((await other.latest("team/s"))?.version).toBe(1);
    expect(await other.aliasTarget("team/s", "prod")).toBe(1);
  });

  it("keeps the live view's run rows across a reopen, newest first, and lists published names", async () => {
    store = await open();
    await store.publish(pub("zz/live-b", SPEC_A, H("a")));
    await store.publish(pub("zz/live-a", SPEC_A, H("a")));
    await store.saveLiveRuns([
      { id: "r1", last_seen: 10, row: '{"step":1}' },
      { id: "r2", last_seen: 20, row: '{"step":2}' },
    ]);
    await store.saveLiveRuns([{ id: "r1", last_seen: 30, row: '{"step":3}' }]);
    await store.saveLiveRuns([]);
    const reopened = await again();
    expect(await reopened.liveRuns(10)).toEqual([
      { id: "r1", last_seen: 30, row: '{"step":3}' },
      { id: "r2", last_seen: 20, row: '{"step":2}' },
    ]);
    expect((await reopened.liveRuns(1)).map((d) => d.id)).toEqual(["r1"]);
    const names = await reopened.names();
    expect(names).toEqual([...names].sort());
    expect(names.slice(-2)).toEqual(["zz/live-a", "zz/live-b"]);
  });
});

describe("postgres store across replicas", () => {
  let local: TestPostgres;
  beforeAll(() => {
    local = startPostgres();
  }, 60_000);
  afterAll(() => local?.stop());

  it("tells other replicas when an alias moves (LISTEN/NOTIFY)", async () => {
    const url = await local.database();
    const writer = await PostgresStore.open(url);
    const replica = await PostgresStore.open(url);
    try {
      const heard: ({ name: string; alias: string } | null)[] = [];
      let ready!: () => void;
      const listening = new Promise<void>((r) => (ready = r));
      replica.watch((moved) => {
        heard.push(moved);
        if (moved === null) ready();
      });
      await listening;
      await writer.publish(pub("team/n", SPEC_A, H("a")));
      await writer.moveAlias({ name: "team/n", alias: "prod", to: 1, who: "a", why: "", at: 1 });
      for (let i = 0; i < 100 && !heard.some((m) => m?.alias === "prod"); i++) await new Promise((r) => setTimeout(r, 20));
      expect(heard).toContainEqual({ name: "team/n", alias: "prod" });
    } finally {
      await writer.close();
      await replica.close();
    }
  });

  it("answers STORE_UNAVAILABLE, not a crash, when the server is gone", async () => {
    const url = await local.database();
    const store = await PostgresStore.open(url.replace(/:\d+\//, ":1/"))
      .then(() => null)
      .catch((err: unknown) => err);
    expect((store as RegistryError).code).toBe("STORE_UNAVAILABLE");
  });
});

function contentOf(spec: unknown): string {
  return require("node:crypto").createHash("sha256").update(JSON.stringify(spec)).digest("hex");
}
