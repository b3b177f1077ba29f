/** The live view's runs kept in the registry's store: batched writes, and a restart that keeps them. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Dealer } from "zeromq";
import { bind } from "../src/bind";
import { StoredRunTable } from "../src/live/stored_runs";
import { encodeBody } from "../src/protocol";
import { SqliteStore } from "../src/registry/sqlite";
import type { LiveRunDoc } from "../src/registry/store";
import { beat } from "./heartbeats";
import { ask, serve } from "./registry_helpers";

const dir = mkdtempSync(join(tmpdir(), "lrbridge-liveruns-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("StoredRunTable", () => {
  it("writes many heartbeats as one batch, then reads the rows back with their states", async () => {
    const store = await SqliteStore.open(join(dir, "batch.db"));
    const batches: LiveRunDoc[][] = [];
    const counted = {
      saveLiveRuns: (rows: LiveRunDoc[]) => (batches.push(rows), store.saveLiveRuns(rows)),
      liveRuns: (limit: number) => store.liveRuns(limit),
    };
    const table = await StoredRunTable.open(counted, { flushMs: 50, lostAfterS: 15 });
    for (let step = 1; step <= 500; step++) table.heartbeat(beat({ step }), 1000 + step / 100);
    table.heartbeat(beat({ run: { id: "r2", name: "done" }, state: "finished", step: 100 }), 1005);
    expect(batches).toHaveLength(0); // nothing on the heartbeat path
    await new Promise((r) => setTimeout(r, 200));
    expect(batches.map((b) => b.map((d) => d.id).sort())).toEqual([["r1", "r2"]]);
    table.heartbeat(beat({ step: 501 }), 1006);
    await table.close();
    expect(batches).toHaveLength(2);

    const again = await StoredRunTable.open(store, { lostAfterS: 15 });
    expect(again.list(1010).map((r) => [r.id, r.step, r.state])).toEqual([
      ["r1", 501, "running"],
      ["r2", 100, "finished"],
    ]);
    // Nothing heard from r1 since: lost; a finished run stays finished.
    expect(again.list(2000).map((r) => [r.id, r.state])).toEqual([
      ["r1", "lost"],
      ["r2", "finished"],
    ]);
    await again.close();
    await store.close();
  });
});

describe("serve --registry --http", () => {
  const V1 = { type: "CosineAnnealingLR", T_max: 100 };
  const GROUPS = [{ lr: 0.1 }];

  async function runs(web: string): Promise<Record<string, any>[]> {
    return ((await (await fetch(`${web}/api/runs`)).json()) as { runs: Record<string, any>[] }).runs;
  }

  it("lists the runs heartbeats reported, with ref and version, after a restart on the same store", async () => {
    const db = join(dir, "restart.db");
    const args = ["--registry", db, "--dev-admin", "--http", "127.0.0.1:0"];
    const first = await serve(args);
    try {
      const web = /lrbridge web view on (\S+)/.exec(first.stderr())![1];
      expect(await ask(first.endpoint, { type: "publish", name: "team/x", spec: V1 })).toMatchObject({ version: 1 });
      expect(await ask(first.endpoint, { type: "publish", name: "team/x", spec: { ...V1, T_max: 50 } })).toMatchObject({ version: 2 });
      const opened = await ask(first.endpoint, { type: "open", ref: "team/x@1", groups: GROUPS });
      expect(opened).toMatchObject({ type: "opened", resolved: { version: 1 } });
      const socket = new Dealer({ linger: 1000 });
      socket.connect(first.endpoint);
      const spec_hash = bind(V1, GROUPS).specHash;
      const hb = (id: string, step: number, state: string) =>
        socket.send(encodeBody({ v: 2, id: step, ...beat({ run: { id, name: id }, hash: opened.hash, spec_hash, step, state: state as "running", ref: "team/x@1" }) }));
      for (let step = 1; step <= 20; step++) await hb("alive", step, "running");
      await hb("done", 100, "finished");
      let listed: Record<string, any>[] = [];
      for (let tries = 0; tries < 100 && listed.length < 2; tries++) {
        await new Promise((r) => setTimeout(r, 50));
        listed = await runs(web);
      }
      expect(listed.find((r) => r.id === "alive")).toMatchObject({ step: 20, ref: "team/x@1", version: 1, state: "running" });
      socket.close();
    } finally {
      await first.stop();
    }

    const second = await serve(args);
    try {
      const web = /lrbridge web view on (\S+)/.exec(second.stderr())![1];
      const listed = await runs(web);
      expect(listed.map((r) => [r.id, r.step, r.state, r.ref, r.version]).sort()).toEqual([
        ["alive", 20, "running", "team/x@1", 1],
        ["done", 100, "finished", "team/x@1", 1],
      ]);
    } finally {
      await second.stop();
    }
  }, 60_000);
});
