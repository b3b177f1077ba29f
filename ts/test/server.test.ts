/**
 * The real server process (`lrbridge serve`, run from source with ts-node)
 * over real ZeroMQ sockets: round trips, garbage that must get an error reply
 * without hurting later requests, and a clean SIGTERM.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Dealer, Request } from "zeromq";
import { binToFloat64, decodeBody, encodeBody, MAX_REQUEST_BYTES } from "../src/protocol";
import type { StatsReply } from "../src/protocol";
import { parseServeArgs } from "../src/commands/serve";
import { bind } from "../src/bind";
import { ROOT, serve } from "./registry_helpers";

const STEP = { type: "StepLR", step_size: 30, gamma: 0.1 };
const GROUPS = [{ lr: 0.1, momentum: 0.9 }, { lr: 0.01 }];

type Served = Awaited<ReturnType<typeof serve>> & { ipcPath: string };

/** Starts `lrbridge serve` on a fresh ipc path and waits for its ready line. */
async function startServer(dir: string, extra: string[] = []): Promise<Served> {
  const ipcPath = join(dir, "lrbridge.sock");
  return { ...(await serve(extra, `ipc://${ipcPath}`)), ipcPath };
}

let served: Served;
let dir: string;
let nextId = 1;

async function requestOver(socket: Request, message: Record<string, unknown>): Promise<Record<string, unknown>> {
  await socket.send(encodeBody(message));
  const [body] = await socket.receive();
  return decodeBody(body) as Record<string, unknown>;
}

/** One lock-step REQ round trip on a fresh socket (a REQ is unusable after a lost reply). */
async function roundTrip(message: Record<string, unknown>): Promise<Record<string, unknown>> {
  const socket = new Request({ linger: 0, receiveTimeout: 10_000, sendTimeout: 10_000 });
  socket.connect(served.endpoint);
  try {
    return await requestOver(socket, message);
  } finally {
    socket.close();
  }
}

/** Sends raw frames from a DEALER and returns the reply frames. */
async function rawDealer(frames: Buffer[]): Promise<Buffer[]> {
  const socket = new Dealer({ linger: 0, receiveTimeout: 10_000, sendTimeout: 10_000 });
  socket.connect(served.endpoint);
  try {
    await socket.send(frames);
    return await socket.receive();
  } finally {
    socket.close();
  }
}

async function expectStillServing(): Promise<void> {
  const id = nextId++;
  const reply = await roundTrip({ v: 2, id, type: "hello" });
  expect(reply).toMatchObject({ v: 2, id, type: "hello", protocol: 2 });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lrbridge-server-test-"));
  served = await startServer(dir);
}, 60_000);

afterAll(() => {
  if (served.process.exitCode === null) served.process.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("lrbridge serve", () => {
  it("prints the endpoint it bound and answers hello", async () => {
    expect(served.endpoint).toBe(`ipc://${served.ipcPath}`);
    expect(existsSync(served.ipcPath)).toBe(true);
    const reply = await roundTrip({ v: 2, id: 42, type: "hello", client: "vitest" });
    expect(reply).toMatchObject({
      v: 2,
      id: 42,
      type: "hello",
      protocol: 2,
      max_window: 65536,
      capabilities: ["window", "metric", "rebase", "epoch", "stats", "heartbeat"],
    });
  });

  it("serves window values equal to bind().rows(), over REQ and DEALER", async () => {
    const opened = await roundTrip({ v: 2, id: nextId++, type: "open", spec: STEP, groups: GROUPS });
    expect(opened).toMatchObject({ type: "opened", kind: "deterministic", groups: 2, chainable: true });
    const expected = bind(STEP, GROUPS).rows(10, 1024);

    const reply = await roundTrip({ v: 2, id: 77, type: "window", hash: opened.hash, start: 10, count: 1024 });
    expect(reply).toMatchObject({ v: 2, id: 77, type: "window", start: 10, count: 1024, groups: 2, momentum: null });
    expect(binToFloat64(reply.lr as Uint8Array)).toEqual(expected.lr);

    // DEALER envelope: [body] out, [body] back.
    const [body] = await rawDealer([encodeBody({ v: 2, id: 78, type: "window", hash: opened.hash, start: 10, count: 1024 })]);
    const dealerReply = decodeBody(body) as Record<string, unknown>;
    expect(dealerReply.id).toBe(78);
    expect(binToFloat64(dealerReply.lr as Uint8Array)).toEqual(expected.lr);
  });

  it("reports cycle starts with the windows of a cyclic schedule, and none for others", async () => {
    const snapshot = { type: "snapshot", total_steps: 100, snapshots: 4 };
    const opened = await roundTrip({ v: 2, id: nextId++, type: "open", spec: snapshot, groups: [{ lr: 0.1 }] });
    const reply = await roundTrip({ v: 2, id: nextId++, type: "window", hash: opened.hash, start: 20, count: 60 });
    expect(reply.cycle_starts).toEqual([25, 50, 75]);
    const step = await roundTrip({ v: 2, id: nextId++, type: "open", spec: STEP, groups: GROUPS });
    const plain = await roundTrip({ v: 2, id: nextId++, type: "window", hash: step.hash, start: 0, count: 8 });
    expect(plain).not.toHaveProperty("cycle_starts");
  });

  it("stats shows each schedule in use, who opened it and how far it was served; lrbridge top renders it", async () => {
    const spec = { type: "OneCycleLR", max_lr: 0.3, total_steps: 5000 };
    const opened = await roundTrip({ v: 2, id: nextId++, type: "open", spec, groups: [{ lr: 0.1, momentum: 0.9 }], client: "box:42 train.py" });
    await roundTrip({ v: 2, id: nextId++, type: "window", hash: opened.hash, start: 0, count: 1024 });
    await roundTrip({ v: 2, id: nextId++, type: "window", hash: opened.hash, start: 1024, count: 1024 });
    const stats = (await roundTrip({ v: 2, id: 9, type: "stats" })) as unknown as StatsReply;
    expect(stats).toMatchObject({ v: 2, id: 9, type: "stats", server: "lrbridge-ts/0.1.0" });
    expect(stats.requests).toBeGreaterThanOrEqual(4);
    const mine = stats.schedules.find((s) => s.hash === opened.hash);
    expect(mine).toMatchObject({
      type: "OneCycleLR",
      spec_hash: opened.spec_hash,
      groups: 1,
      kind: "deterministic",
      clients: ["box:42 train.py"],
      opens: 1,
      windows: 2,
      rows_served: 2048,
      row_end: 5001,
    });
    expect(stats.schedules[0].hash).toBe(opened.hash); // most recently active first

    const top = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", join(ROOT, "ts/src/cli.ts"), "top", "--once", "--connect", served.endpoint], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    top.stdout!.on("data", (chunk) => (out += chunk));
    expect(await new Promise((done) => top.on("exit", done))).toBe(0);
    expect(out).toMatch(/^lrbridge-ts\/0\.1\.0 at ipc:\/\//);
    expect(out).toMatch(new RegExp(`OneCycleLR\\s+${String(opened.spec_hash).slice(0, 12)}\\s+1\\s+2048 / 5001 rows\\s+2\\s+\\d+s ago\\s+box:42 train\\.py`));
  });

  it("logs one line per open to stderr", async () => {
    const opened = await roundTrip({ v: 2, id: nextId++, type: "open", spec: STEP, groups: [{ lr: 0.5 }] });
    await expect.poll(() => served.stderr()).toContain(`type=StepLR spec=${(opened.spec_hash as string).slice(0, 12)} groups=1`);
  });

  it("answers an unknown hash with UNKNOWN_HASH", async () => {
    const reply = await roundTrip({ v: 2, id: 5, type: "window", hash: "f".repeat(64), start: 0, count: 4 });
    expect(reply).toMatchObject({ v: 2, id: 5, type: "error", code: "UNKNOWN_HASH", path: "hash" });
  });

  it("answers a bad spec with SPEC_INVALID and its path", async () => {
    const reply = await roundTrip({ v: 2, id: 6, type: "open", spec: { type: "StepLR", gamma: 0.1 }, groups: GROUPS });
    expect(reply).toMatchObject({ id: 6, type: "error", code: "SPEC_INVALID" });
    expect(typeof reply.path).toBe("string");
  });

  it.each([
    ["random bytes", [Buffer.from("c1d9ff00deadbeef", "hex")], "BAD_FRAME"],
    ["an empty body", [Buffer.alloc(0)], "BAD_FRAME"],
    ["a msgpack array", [encodeBody([1, 2, 3])], "BAD_FRAME"],
    ["a msgpack string", [encodeBody("hello")], "BAD_FRAME"],
    ["two body frames", [encodeBody({ v: 2, id: 1, type: "hello" }), Buffer.from("x")], "BAD_FRAME"],
    ["a body over 1 MiB", [Buffer.alloc(MAX_REQUEST_BYTES + 1, 0x80)], "TOO_LARGE"],
    ["an absurd window", [encodeBody({ v: 2, id: 9, type: "window", hash: "0".repeat(64), start: -5, count: 1e9 })], "BAD_REQUEST"],
    ["a huge count", [encodeBody({ v: 2, id: 9, type: "window", hash: "0".repeat(64), start: 0, count: 1e9 })], "WINDOW_TOO_LARGE"],
    ["a fractional start", [encodeBody({ v: 2, id: 9, type: "window", hash: "0".repeat(64), start: 0.5, count: 3 })], "BAD_REQUEST"],
    ["a wrong version", [encodeBody({ v: 9, id: 9, type: "hello" })], "BAD_VERSION"],
    ["an unknown type", [encodeBody({ v: 2, id: 9, type: "launch" })], "UNKNOWN_TYPE"],
  ])("answers %s with an error and keeps serving", async (_what, frames, code) => {
    const reply = await rawDealer(frames as Buffer[]);
    expect(reply).toHaveLength(1);
    expect(decodeBody(reply[0])).toMatchObject({ v: 2, type: "error", code });
    await expectStillServing();
  });

  it("answers a REQ peer's empty body with BAD_FRAME in the REQ envelope", async () => {
    const socket = new Request({ linger: 0, receiveTimeout: 10_000 });
    socket.connect(served.endpoint);
    try {
      await socket.send(Buffer.alloc(0));
      const [body] = await socket.receive();
      expect(decodeBody(body)).toMatchObject({ v: 2, id: null, type: "error", code: "BAD_FRAME" });
      // The same REQ socket is still in step: the server answered exactly once.
      expect(await requestOver(socket, { v: 2, id: 3, type: "hello" })).toMatchObject({ id: 3, type: "hello" });
    } finally {
      socket.close();
    }
  });

  it("answers many pipelined DEALER requests, each once, in order", async () => {
    const socket = new Dealer({ linger: 0, receiveTimeout: 10_000 });
    socket.connect(served.endpoint);
    try {
      const n = 200;
      for (let id = 0; id < n; id++) await socket.send(encodeBody({ v: 2, id, type: "hello" }));
      const ids: unknown[] = [];
      for (let i = 0; i < n; i++) ids.push((decodeBody((await socket.receive())[0]) as { id: unknown }).id);
      expect(ids).toEqual(Array.from({ length: n }, (_, id) => id));
    } finally {
      socket.close();
    }
  });

  // Last: it stops the server.
  it("exits 0 on SIGTERM and removes its ipc socket file", async () => {
    served.process.kill("SIGTERM");
    expect(await served.exited).toBe(0);
    expect(existsSync(served.ipcPath)).toBe(false);
  });
});

describe("lrbridge serve options", () => {
  it("parses --bind and --cache, with defaults", () => {
    expect(parseServeArgs([])).toEqual({
      endpoint: "tcp://127.0.0.1:5555",
      cacheSize: 65536,
      cacheBytes: 512 * 2 ** 20,
      exitOnStdinEof: false,
    });
    expect(parseServeArgs(["--bind", "ipc:///tmp/x.sock", "--cache=16", "--cache-mib", "8", "--exit-on-stdin-eof"])).toEqual({
      endpoint: "ipc:///tmp/x.sock",
      cacheSize: 16,
      cacheBytes: 8 * 2 ** 20,
      exitOnStdinEof: true,
    });
    expect(parseServeArgs(["--cache-mib", "0"])).toHaveProperty("error");
    expect(parseServeArgs(["--cache", "0"])).toHaveProperty("error");
    expect(parseServeArgs(["--bind", "udp://x"])).toHaveProperty("error");
    expect(parseServeArgs(["--bind"])).toHaveProperty("error");
    expect(parseServeArgs(["--watch", "./schedules", "--watch-namespace", "lab"])).toMatchObject({ watch: "./schedules", watchNamespace: "lab" });
    expect(parseServeArgs(["--watch-namespace", "Lab"])).toHaveProperty("error");
    expect(parseServeArgs(["--watch"])).toHaveProperty("error");
  });

  it("with --exit-on-stdin-eof, shuts down cleanly when its parent's pipe closes", async () => {
    const own = mkdtempSync(join(tmpdir(), "lrb-eof-"));
    const child = await startServer(own, ["--exit-on-stdin-eof"]);
    child.process.stdin!.end();
    expect(await child.exited).toBe(0);
    expect(existsSync(child.ipcPath)).toBe(false);
  });

  it("exits 2 on an unknown option", async () => {
    const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", join(ROOT, "ts/src/cli.ts"), "serve", "--frobnicate"], {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (chunk) => (stderr += chunk));
    const code = await new Promise((done) => child.on("exit", done));
    expect(code).toBe(2);
    expect(stderr).toContain("unknown option --frobnicate");
  });

  it("exits 0 on SIGINT too", async () => {
    const other = await startServer(dir);
    other.process.kill("SIGINT");
    expect(await other.exited).toBe(0);
    expect(existsSync(other.ipcPath)).toBe(false);
  }, 60_000);
});
