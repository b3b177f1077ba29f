/**
 * The registry through real `lrbridge serve` processes and real sockets, on
 * a SQLite file and on a real Postgres: admin and serving endpoints, every
 * message, open by ref with a run, a replica that never saw a handle, and a
 * server killed in the middle of publishes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Dealer } from "zeromq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { binToFloat64, decodeBody, encodeBody } from "../src/protocol";
import { contentHash } from "../src/core/canonical";
import { bind } from "../src/bind";
import { openStore } from "../src/registry/store";
import { parseServeArgs } from "../src/commands/serve";
import { startPostgres, TestPostgres } from "./pg";
import { ask, serve, Served } from "./registry_helpers";

const V1 = { type: "CosineAnnealingLR", T_max: 100 };
const V2 = { type: "CosineAnnealingLR", T_max: 80 };
const GROUPS = [{ lr: 0.1, momentum: 0.9 }];

let pg: TestPostgres;
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "lrbridge-regsrv-"));
  pg = startPostgres();
}, 60_000);
afterAll(() => {
  pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

let stores = 0;
const backends = [
  { name: "sqlite", store: async () => join(dir, `r${++stores}.sqlite`) },
  { name: "postgres", store: () => pg.database() },
];

describe.each(backends)("registry server on $name", (backend) => {
  let store: string;
  let a: Served;
  let b: Served;
  beforeAll(async () => {
    store = await backend.store();
    [a, b] = await Promise.all([serve(["--registry", store, "--admin", "tcp://127.0.0.1:0"]), serve(["--registry", store])]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it("says registry and admin in hello; tcp serving endpoints refuse admin messages", async () => {
    expect(a.admin).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    const hello = await ask(a.endpoint, { type: "hello" });
    expect(hello.capabilities).toContain("registry");
    expect(hello.admin).toBe(false);
    expect((await ask(a.admin!, { type: "hello" })).admin).toBe(true);
    const refused = await ask(a.endpoint, { type: "publish", name: "team/x", spec: V1 });
    expect(refused).toMatchObject({ type: "error", code: "FORBIDDEN", path: "type" });
    expect(await ask(b.endpoint, { type: "alias", name: "team/x", alias: "prod", version: 1 })).toMatchObject({ code: "FORBIDDEN" });
    expect(await ask(a.endpoint, { type: "resolve", ref: "team/x" })).toMatchObject({ code: "UNKNOWN_REF", path: "ref" });
  });

  it("publishes versions, idempotently, and refuses an invalid spec without writing", async () => {
    const v1 = await ask(a.admin!, { type: "publish", name: "team/x", spec: V1, message: "first", author: "ann" });
    expect(v1).toMatchObject({ type: "published", name: "team/x", version: 1, created: true, spec_hash: bind(V1, GROUPS).specHash });
    expect(await ask(a.admin!, { type: "publish", name: "team/x", spec: { T_max: 100, type: "CosineAnnealingLR", eta_min: 0 } })).toMatchObject({
      version: 1,
      created: false,
    });
    const invalid = await ask(a.admin!, { type: "publish", name: "team/x", spec: { type: "CosineAnnealingLR", T_max: "long" } });
    expect(invalid).toMatchObject({ type: "error", code: "SPEC_INVALID", path: "T_max" });
    expect(await ask(a.admin!, { type: "publish", name: "Team/x", spec: V1 })).toMatchObject({ code: "BAD_REF", path: "name" });
    expect((await ask(a.endpoint, { type: "history", name: "team/x" })).versions).toHaveLength(1);
  });

  it("moves aliases with compare-and-set; typed errors leave the store as it was", async () => {
    expect(await ask(a.admin!, { type: "alias", name: "team/x", alias: "prod", version: 1, expect: null, who: "ann", why: "launch" })).toMatchObject({
      type: "aliased",
      from: null,
      to: 1,
    });
    expect(await ask(a.admin!, { type: "alias", name: "team/x", alias: "prod", version: 7 })).toMatchObject({ code: "UNKNOWN_REF", path: "version" });
    expect(await ask(a.admin!, { type: "alias", name: "team/x", alias: "prod", version: 1, expect: 3 })).toMatchObject({ code: "ALIAS_CONFLICT", path: "expect" });
    expect(await ask(a.admin!, { type: "alias", name: "team/x", alias: "latest", version: 1 })).toMatchObject({ code: "BAD_REF", path: "alias" });
    const history = await ask(b.endpoint, { type: "history", name: "team/x" });
    expect(history.aliases).toEqual({ prod: 1 });
    expect(history.events).toHaveLength(1);
  });

  it("resolves every kind of ref, on either replica", async () => {
    const hash = bind(V1, GROUPS).specHash;
    for (const ref of ["team/x", "team/x@latest", "team/x@1", "team/x@prod", `team/x@sha256:${hash}`]) {
      const r = await ask(b.endpoint, { type: "resolve", ref });
      expect(r, ref).toMatchObject({ type: "resolved", ref, name: "team/x", version: 1, spec_hash: hash, message: "first", author: "ann" });
      expect(r.pinned, ref).toBe(ref.endsWith("@1") || ref.includes("sha256"));
    }
    expect(await ask(b.endpoint, { type: "resolve", ref: "team/x@2" })).toMatchObject({ code: "UNKNOWN_REF" });
    expect(await ask(b.endpoint, { type: "resolve", ref: "team/x@canary" })).toMatchObject({ code: "UNKNOWN_REF" });
    expect(await ask(b.endpoint, { type: "resolve", ref: `team/x@sha256:${"0".repeat(64)}` })).toMatchObject({ code: "UNKNOWN_REF" });
    expect(await ask(b.endpoint, { type: "resolve", ref: "team/x@0" })).toMatchObject({ code: "BAD_REF", path: "ref" });
  });

  it("opens by ref with a run, records its inputs, and a replica serves the handle it never saw", async () => {
    const opened = await ask(a.endpoint, { type: "open", ref: "team/x@prod", groups: GROUPS, run: { id: "run-a", name: "alpha", rank: 0, world_size: 1 } });
    expect(opened).toMatchObject({ type: "opened", spec_hash: bind(V1, GROUPS).specHash, resolved: { ref: "team/x@prod", name: "team/x", version: 1 } });
    expect(await ask(a.endpoint, { type: "open", ref: "team/x@prod", spec: V1, groups: GROUPS })).toMatchObject({ code: "BAD_REQUEST", path: "ref" });
    expect(await ask(a.endpoint, { type: "open", ref: "team/x@prod", groups: GROUPS, run: { name: "no id" } })).toMatchObject({ code: "BAD_REQUEST", path: "run.id" });

    // b never saw this handle: it loads it from the store.
    const window = await ask(b.endpoint, { type: "window", hash: opened.hash, start: 0, count: 10, run: "run-a" });
    expect(window.type).toBe("window");
    expect(Array.from(binToFloat64(window.lr))).toEqual(Array.from(bind(V1, GROUPS).rows(0, 10).lr));
    const rebased = await ask(b.endpoint, { type: "rebase", hash: opened.hash, start: 21, count: 5, origin: { step: 20, lr: [0.05] }, run: "run-a" });
    expect(rebased.type).toBe("window");
    expect(await ask(b.endpoint, { type: "window", hash: "f".repeat(64), start: 0, count: 1 })).toMatchObject({ code: "UNKNOWN_HASH" });

    const runs = await ask(b.endpoint, { type: "runs", ref: "team/x@prod" });
    expect(runs.runs.map((r: { id: string }) => r.id)).toEqual(["run-a"]);
    expect(runs.runs[0]).toMatchObject({ name: "alpha", world_size: 1, last_step: 20 });
    expect(runs.runs[0].uses[0]).toMatchObject({ ref: "team/x@prod", version: 1, step: 0 });
    const one = await ask(b.endpoint, { type: "runs", run: "run-a" });
    expect(one.runs[0].events).toMatchObject([{ kind: "origin", step: 20, data: { lr: [0.05] } }]);
    expect(one.runs[0].uses[0]).toMatchObject({ groups: GROUPS, last_epoch: -1 });
  });

  it("sees another replica's alias move, and diffs two versions", async () => {
    await ask(a.admin!, { type: "publish", name: "team/x", spec: V2, message: "shorter" });
    await ask(a.admin!, { type: "alias", name: "team/x", alias: "prod", version: 2, expect: 1, why: "v2" });
    let resolved: Record<string, any> = {};
    for (let i = 0; i < 50 && resolved.version !== 2; i++) {
      resolved = await ask(b.endpoint, { type: "resolve", ref: "team/x@prod" });
      if (resolved.version !== 2) await new Promise((r) => setTimeout(r, 20));
    }
    expect(resolved.version).toBe(2);
    const diff = await ask(b.endpoint, { type: "diff", a: "team/x@1", b: "team/x@prod", steps: 200 });
    expect(diff).toMatchObject({ type: "diff", a: { version: 1 }, b: { version: 2 }, paths: [{ path: "T_max", a: 100, b: 80 }], first_step: 1 });
    expect(diff.max_abs).toBeGreaterThan(0.01);
    expect(await ask(b.endpoint, { type: "diff", a: "team/x@1", b: "team/x@1", steps: 50 })).toMatchObject({ paths: [], first_step: null, max_abs: 0 });
    expect(await ask(b.endpoint, { type: "diff", a: "team/x@1", b: "team/x@2", steps: 0 })).toMatchObject({ code: "BAD_REQUEST", path: "steps" });
    const runs = await ask(b.endpoint, { type: "runs", ref: "team/x@prod" });
    expect(runs.runs).toEqual([]);
    expect((await ask(b.endpoint, { type: "runs", ref: "team/x" })).runs).toHaveLength(1);
  });
});

describe("lrbridge serve registry options", () => {
  it("parses --registry, --admin and --dev-admin, and refuses admin without a store", async () => {
    expect(parseServeArgs(["--registry", "/tmp/r.sqlite", "--admin", "tcp://127.0.0.1:0", "--dev-admin"])).toMatchObject({
      registry: "/tmp/r.sqlite",
      admin: "tcp://127.0.0.1:0",
      devAdmin: true,
    });
    expect((parseServeArgs(["--registry", "default"]) as { registry: string }).registry).toMatch(/lrbridge\/registry\.sqlite$/);
    expect(parseServeArgs(["--admin", "http://x"])).toHaveProperty("error");
    await expect(serve(["--dev-admin"])).rejects.toThrow(/exited with 2/);
  });
});

describe("store failures", () => {
  it("serves refs it has cached when Postgres goes away, and says so", async () => {
    const own = startPostgres();
    let server: Served | undefined;
    try {
      const url = await own.database();
      server = await serve(["--registry", url, "--dev-admin"]);
      await ask(server.endpoint, { type: "publish", name: "team/c", spec: V1 });
      await ask(server.endpoint, { type: "alias", name: "team/c", alias: "prod", version: 1 });
      expect((await ask(server.endpoint, { type: "open", ref: "team/c@prod", groups: GROUPS })).resolved.cached).toBeUndefined();
      own.stop();
      const opened = await ask(server.endpoint, { type: "open", ref: "team/c@prod", groups: [{ lr: 0.2 }], run: { id: "offline" } });
      expect(opened).toMatchObject({ type: "opened", resolved: { version: 1, cached: true } });
      expect(await ask(server.endpoint, { type: "resolve", ref: "team/c@prod" })).toMatchObject({ version: 1, cached: true });
      expect(await ask(server.endpoint, { type: "resolve", ref: "team/c@1" })).toMatchObject({ version: 1 });
      expect(await ask(server.endpoint, { type: "resolve", ref: "team/c@canary" })).toMatchObject({ code: "STORE_UNAVAILABLE" });
      expect(await ask(server.endpoint, { type: "publish", name: "team/c", spec: V2 })).toMatchObject({ code: "STORE_UNAVAILABLE" });
      expect(await ask(server.endpoint, { type: "hello" })).toMatchObject({ type: "hello" });
    } finally {
      await server?.stop();
      try {
        own.stop();
      } catch {
        // already stopped above
      }
    }
  }, 60_000);

  it.each(["sqlite", "postgres"])("holds whole versions or none after SIGKILL in the middle of publishes (%s)", async (kind) => {
    const where = kind === "sqlite" ? join(dir, "killed.sqlite") : await pg.database();
    const server = await serve(["--registry", where, "--dev-admin"]);
    const socket = new Dealer({ linger: 0, sendTimeout: 10_000 });
    socket.connect(server.endpoint);
    let answered = 0;
    const receiving = (async () => {
      try {
        for await (const [body] of socket) if ((decodeBody(body) as { type: string }).type === "published") answered++;
      } catch {
        // closed
      }
    })();
    const total = 20_000;
    for (let i = 1; i <= total; i++) {
      await socket.send(encodeBody({ v: 2, id: i, type: "publish", name: "team/k", spec: { type: "StepLR", step_size: i, gamma: 0.5 }, message: `v${i}` }));
    }
    while (answered < 50) await new Promise((r) => setTimeout(r, 1));
    server.process.kill("SIGKILL");
    await server.exited;
    socket.close();
    await receiving;
    expect(answered).toBeGreaterThanOrEqual(50);

    const store = await openStore(where);
    try {
      const history = await store.history("team/k");
      // Every publish that was answered is there; numbers have no gaps; each row is whole.
      expect(history.versions.length).toBeGreaterThanOrEqual(answered);
      expect(history.versions.length).toBeLessThan(total);
      for (const [i, info] of history.versions.entries()) {
        expect(info.version).toBe(i + 1);
        const version = (await store.version("team/k", info.version))!;
        expect(version.message).toBe(`v${info.version}`);
        expect(contentHash(version.canonical)).toBe(version.spec_hash);
        expect((version.canonical as { step_size: number }).step_size).toBe(info.version);
      }
    } finally {
      await store.close();
    }
  }, 60_000);
});
