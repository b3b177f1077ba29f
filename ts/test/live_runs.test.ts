/** The run table heartbeats feed, and `top`'s rendering of it. */
import { describe, expect, it } from "vitest";
import { bind } from "../src/bind";
import { renderStats } from "../src/commands/top";
import { MAX_CHANGE_VALUES, MemoryRunTable, RUN_CAPACITY, RUN_TABLE_BYTES } from "../src/live/runs";
import type { HeartbeatRequest, StatsReply } from "../src/protocol";
import { Handler } from "../src/server/handler";
import { beat } from "./heartbeats";

describe("MemoryRunTable", () => {
  it("keeps one row per run, most recently seen first, and marks a silent run lost", () => {
    const table = new MemoryRunTable(15);
    table.heartbeat(beat(), 1000);
    table.heartbeat(beat({ run: { id: "r2", name: "run two" } }), 1001);
    table.heartbeat(beat({ step: 20 }), 1002);
    expect(table.list(1003).map((r) => [r.id, r.step, r.state])).toEqual([
      ["r1", 20, "running"],
      ["r2", 10, "running"],
    ]);
    expect(table.get("r2", 1017)?.state).toBe("lost");
    table.heartbeat(beat({ state: "finished" }), 1003);
    expect(table.get("r1", 5000)?.state).toBe("finished"); // finished stays finished
  });

  it("records where a metric-driven schedule changed the lr", () => {
    const table = new MemoryRunTable();
    const metric = { type: "ReduceLROnPlateau", kind: "metric" as const };
    for (const [step, lr] of [[1, 0.1], [2, 0.1], [5, 0.05], [6, 0.05], [9, 0.025]] as const) {
      table.heartbeat(beat({ step, lr: [lr] }), step, metric);
    }
    expect(table.get("r1", 10)?.changes).toEqual([
      { step: 1, lr: [0.1] },
      { step: 5, lr: [0.05] },
      { step: 9, lr: [0.025] },
    ]);
  });

  it("keeps the lr changes a client reports, each at its own step, once", () => {
    const table = new MemoryRunTable();
    const metric = { type: "ReduceLROnPlateau", kind: "metric" as const };
    table.heartbeat(beat({ step: 7, lr: [0.025], changes: [{ step: 3, lr: [0.05] }, { step: 6, lr: [0.025] }] }), 1, metric);
    table.heartbeat(beat({ step: 9, lr: [0.0125], changes: [{ step: 6, lr: [0.025] }, { step: 9, lr: [0.0125] }] }), 2, metric);
    table.heartbeat(beat({ step: 10, lr: [0.0125], changes: [] }), 3, metric);
    expect(table.get("r1", 3)?.changes.map((c) => c.step)).toEqual([3, 6, 9]);
  });

  it("forgets the least recently seen run past its capacity", () => {
    const table = new MemoryRunTable(15, 2);
    for (const id of ["a", "b", "c"]) table.heartbeat(beat({ run: { id, name: id } }), 1);
    expect(table.list(1).map((r) => r.id)).toEqual(["c", "b"]);
  });

  // The heaviest heartbeat the protocol takes: 64 groups, 16 changes of 64 groups.
  const heavy = (id: string, step: number): HeartbeatRequest => {
    const lr = Array.from({ length: 64 }, (_, g) => 0.1 / (g + step + 1));
    const changes = Array.from({ length: 16 }, (_, k) => ({ step: step * 16 + k, lr }));
    return beat({ run: { id, name: "n".repeat(256), host: "h".repeat(256) }, step: step * 16 + 15, lr, momentum: lr, changes, ref: "r".repeat(256) });
  };

  it("keeps at most MAX_CHANGE_VALUES lr values of changes per run, the latest", () => {
    const table = new MemoryRunTable();
    for (let step = 0; step < 100; step++) table.heartbeat(heavy("r1", step), step);
    const changes = table.get("r1", 100)!.changes;
    expect(changes.reduce((n, c) => n + c.lr.length, 0)).toBeLessThanOrEqual(MAX_CHANGE_VALUES);
    expect(changes.length).toBe(MAX_CHANGE_VALUES / 64);
    expect(changes[changes.length - 1].step).toBe(99 * 16 + 15);
  });

  it("stays within its byte budget however many heavy runs report, forgetting the least recently seen", () => {
    const table = new MemoryRunTable();
    // Every run of a full table sends enough heartbeats to fill its changes.
    for (let step = 0; step < 6; step++) {
      for (let r = 0; r < RUN_CAPACITY; r++) table.heartbeat(heavy(`run-${r}`, step), step);
    }
    expect(table.bytes).toBeLessThanOrEqual(RUN_TABLE_BYTES);
    expect(table.size).toBeLessThan(RUN_CAPACITY);
    expect(table.size).toBeGreaterThan(100);
    const listed = table.list(6).map((row) => row.id);
    expect(listed[0]).toBe(`run-${RUN_CAPACITY - 1}`);
    expect(listed).not.toContain("run-0");
  });

  it("counts a run once however often it beats, and frees what a forgotten run held", () => {
    const table = new MemoryRunTable(15, 2, 1024 * 1024);
    for (let step = 0; step < 50; step++) table.heartbeat(beat({ step }), step);
    const one = table.bytes;
    table.heartbeat(beat({ run: { id: "r2", name: "two" } }), 50);
    table.heartbeat(beat({ run: { id: "r3", name: "three" } }), 51);
    expect(table.size).toBe(2);
    expect(table.bytes).toBeLessThan(2 * one + 1024);
    expect(table.bytes).toBeGreaterThan(one);
  });
});

describe("heartbeat through the handler", () => {
  it("gets no reply, and stats lists the run with its schedule's type", () => {
    const handler = new Handler({ bind, now: () => 5_000_000 });
    const opened = handler.handle({ v: 2, id: 1, type: "open", spec: { type: "StepLR", step_size: 3 }, groups: [{ lr: 0.1 }] });
    if (opened.type !== "opened") throw new Error(JSON.stringify(opened));
    const bytes = Buffer.from(
      // msgpack of a heartbeat, as the client sends it
      require("msgpackr").pack({ v: 2, id: 2, type: "heartbeat", run: { id: "x", name: "<script>" }, hash: opened.hash, spec_hash: opened.spec_hash, step: 4, lr: [0.05], momentum: null, total: null, state: "running" }),
    );
    const handled = handler.handleBytes(bytes);
    expect(handled.silent).toBe(true);
    expect(handled.bytes.length).toBe(0);
    const bad = handler.handleBytes(Buffer.from(require("msgpackr").pack({ v: 2, id: 3, type: "heartbeat", step: -1 })));
    expect(bad.silent).toBe(true); // a malformed heartbeat is dropped too: nobody reads a reply
    const stats = handler.handle({ v: 2, id: 4, type: "stats" }) as StatsReply;
    expect(stats.runs.map((r) => [r.name, r.type, r.kind, r.step])).toEqual([["<script>", "StepLR", "deterministic", 4]]);
    expect(stats.errors).toBe(1);
  });
});

describe("top", () => {
  it("prints one row per run with its real step and state, control characters made visible", () => {
    const table = new MemoryRunTable();
    table.heartbeat(beat({ run: { id: "r1", name: "evil\x1b]0;pwned\x07 run" }, step: 42, total: 3000 }), 100);
    table.heartbeat(beat({ run: { id: "r2", name: "done run" }, state: "finished" }), 100);
    const stats = {
      type: "stats", v: 2, id: 1, server: "s", uptime_s: 1, requests: 1, errors: 0,
      cache_size: 0, cache_capacity: 1, cache_bytes: 0, cache_max_bytes: 1,
      schedules: [], runs: table.list(101),
    } as StatsReply;
    const text = renderStats(stats, "tcp://x", 101);
    expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    expect(text).toContain("evil\\x1b]0;pwned\\x07 run");
    expect(text).toMatch(/evil.*running\s+42 \/ 3000\s+0\.1\s/);
    expect(text).toMatch(/done run\s+finished\s+10 \/ 100/);
  });
});
