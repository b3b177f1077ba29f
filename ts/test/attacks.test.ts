/**
 * Every request that once stalled or crashed the server, sent to a real
 * `lrbridge serve` over real sockets while an honest client keeps asking for
 * windows: each attack gets its bounded answer, the honest client gets every
 * reply with the right values, and the server never answers INTERNAL.
 * A fuzzer (valid messages with mutated fields, and random bytes) runs last.
 */
import { ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Dealer, Request } from "zeromq";
import { binToFloat64, decodeBody, encodeBody } from "../src/protocol";
import { bind } from "../src/bind";
import { ATTACKS } from "./attack_catalogue";
import { FUZZ_GROUPS, FUZZ_SPECS, fuzzFrames } from "./fuzz";

const ROOT = resolve(__dirname, "..", "..");

type Msg = Record<string, unknown>;

let server: ChildProcess;
let endpoint: string;
let dir: string;

async function startServer(): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), "lrbridge-attacks-"));
  server = spawn(
    process.execPath,
    ["-r", "ts-node/register/transpile-only", join(ROOT, "ts/src/cli.ts"), "serve", "--bind", `ipc://${join(dir, "s.sock")}`, "--cache-mib", "64"],
    { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] },
  );
  let stderr = "";
  server.stderr!.on("data", (c) => (stderr += c));
  endpoint = await new Promise<string>((ready, fail) => {
    let out = "";
    server.stdout!.on("data", (c) => {
      out += c;
      const m = /^lrbridge serving on (\S+)$/m.exec(out);
      if (m) ready(m[1]);
    });
    server.on("exit", (code) => fail(new Error(`server exited with ${code}: ${stderr}`)));
  });
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * A client that asks for windows of a StepLR in a loop and checks every
 * value against bind(); collects its latencies and anything that went wrong.
 */
class Honest {
  latencies: number[] = [];
  problems: string[] = [];
  private stopped = false;
  private done: Promise<void> | null = null;
  private readonly spec = { type: "StepLR", step_size: 5, gamma: 0.5 };
  private readonly groups = [{ lr: 0.1 }];
  private readonly expected = bind(this.spec, this.groups);

  start(): void {
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  private async ask(socket: Request, msg: Msg): Promise<Msg> {
    const t = performance.now();
    await socket.send(encodeBody(msg));
    const [body] = await socket.receive();
    this.latencies.push(performance.now() - t);
    return decodeBody(body) as Msg;
  }

  private async loop(): Promise<void> {
    const socket = new Request({ linger: 0, receiveTimeout: 5000, sendTimeout: 5000 });
    socket.connect(endpoint);
    try {
      let hash = "";
      for (let i = 0; !this.stopped; i++) {
        if (!hash) {
          const opened = await this.ask(socket, { v: 2, id: i, type: "open", spec: this.spec, groups: this.groups });
          if (opened.type !== "opened") this.problems.push(`open: ${JSON.stringify(opened)}`);
          hash = opened.hash as string;
        }
        const start = (i * 37) % 5000;
        const reply = await this.ask(socket, { v: 2, id: i, type: "window", hash, start, count: 16 });
        if (reply.type === "error" && reply.code === "UNKNOWN_HASH") {
          hash = "";
          continue;
        }
        if (reply.type !== "window") {
          this.problems.push(`window: ${JSON.stringify(reply).slice(0, 200)}`);
          continue;
        }
        const got = binToFloat64(reply.lr as Uint8Array);
        const want = this.expected.rows(start, 16).lr;
        if (!got.every((v, k) => v === want[k])) this.problems.push(`wrong values at ${start}`);
        await new Promise((r) => setTimeout(r, 2));
      }
    } catch (err) {
      this.problems.push(`no reply: ${String(err)}`);
    } finally {
      socket.close();
    }
  }
}

/** One DEALER per attack: sends the setup, then the attack `repeat` times; returns the last reply. */
async function attack(setup: Msg[], body: (s: Msg[]) => Buffer, repeat: number): Promise<{ replies: Msg[]; setupReplies: Msg[] }> {
  const socket = new Dealer({ linger: 0, receiveTimeout: 20_000 });
  socket.connect(endpoint);
  try {
    const setupReplies: Msg[] = [];
    for (const msg of setup) {
      await socket.send(encodeBody(msg));
      setupReplies.push(decodeBody((await socket.receive())[0]) as Msg);
    }
    const replies: Msg[] = [];
    for (let i = 0; i < repeat; i++) {
      let reply: Msg = {};
      // A big setup may be evicted by the byte-bounded cache before its use: re-open, as a client does.
      for (let tries = 0; tries < 3; tries++) {
        await socket.send(body(setupReplies));
        reply = decodeBody((await socket.receive())[0]) as Msg;
        if (reply.code !== "UNKNOWN_HASH" || setup.length === 0) break;
        for (const msg of setup) {
          await socket.send(encodeBody(msg));
          await socket.receive();
        }
      }
      replies.push(reply);
    }
    return { replies, setupReplies };
  } finally {
    socket.close();
  }
}

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0;
}

beforeAll(startServer, 60_000);

afterAll(() => {
  if (server.exitCode === null) server.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("attacks against a real server, an honest client served throughout", () => {
  it.each(ATTACKS.map((a) => [a.name, a] as const))("%s", async (_name, a) => {
    const honest = new Honest();
    honest.start();
    try {
      const { replies, setupReplies } = await attack(a.setup ?? [], a.body, a.repeat ?? 1);
      for (const r of setupReplies) expect(r.type, JSON.stringify(r)).not.toBe("error");
      for (const reply of replies) {
        expect(reply.code).not.toBe("INTERNAL");
        expect(reply.type, JSON.stringify(reply).slice(0, 300)).toBe(a.expect.type);
        if (a.expect.code) expect(reply.code).toBe(a.expect.code);
        if (a.expect.mentions) expect(reply.message).toMatch(a.expect.mentions);
      }
    } finally {
      await honest.stop();
    }
    expect(honest.problems).toEqual([]);
    expect(honest.latencies.length).toBeGreaterThan(0);
  });

  it("a client that never reads its replies costs the server a bounded amount of memory", async () => {
    const before = rssMiB(server.pid!);
    const honest = new Honest();
    honest.start();
    const greedy = new Dealer({ linger: 0, receiveHighWaterMark: 1 });
    greedy.connect(endpoint);
    try {
      const groups = Array.from({ length: 16 }, () => ({ lr: 1 }));
      await greedy.send(encodeBody({ v: 2, id: 1, type: "open", spec: { type: "cosine", total_steps: 100 }, groups }));
      const { hash } = decodeBody((await greedy.receive())[0]) as { hash: string };
      // 200 windows of 8 MiB each (65536 rows × 16 groups) that nobody reads: 1.6 GB if the server kept them all.
      for (let id = 0; id < 200; id++) await greedy.send(encodeBody({ v: 2, id, type: "window", hash, start: 0, count: 65536 }));
      await new Promise((r) => setTimeout(r, 1500));
      // Keeping them all would cost 1600 MiB; what stays is the per-peer outbox and
      // libzmq's queue, plus garbage the server's GC has not returned yet.
      const grown = rssMiB(server.pid!) - before;
      expect(grown).toBeLessThan(800);
    } finally {
      greedy.close();
      await honest.stop();
    }
    expect(honest.problems).toEqual([]);
  });

  it("fuzzed frames (mutated valid messages and random bytes): no INTERNAL, every frame answered, honest client served", async () => {
    const count = Number(process.env.LRBRIDGE_FUZZ_FRAMES ?? 2000);
    const honest = new Honest();
    honest.start();
    const socket = new Dealer({ linger: 0, receiveTimeout: 20_000 });
    socket.connect(endpoint);
    let internal = 0;
    let answered = 0;
    try {
      // A few in flight at a time, as a pipelining client would.
      const hashes: string[] = [];
      for (const spec of FUZZ_SPECS) {
        await socket.send(encodeBody({ v: 2, id: 0, type: "open", spec, groups: FUZZ_GROUPS }));
        hashes.push((decodeBody((await socket.receive())[0]) as { hash: string }).hash);
      }
      const inFlight = 8;
      const frames = fuzzFrames(count, 12345, hashes);
      let sent = 0;
      while (answered < count) {
        while (sent < count && sent - answered < inFlight) await socket.send(frames.next().value as Buffer), sent++;
        const reply = decodeBody((await socket.receive())[0]) as Msg;
        answered++;
        if (reply.code === "INTERNAL") internal++;
      }
    } finally {
      socket.close();
      await honest.stop();
    }
    expect(answered).toBe(count);
    expect(internal).toBe(0);
    expect(honest.problems).toEqual([]);
    // Not a speed assertion: a stalled loop would show up as seconds here.
    expect(p99(honest.latencies)).toBeLessThan(2000);
  }, 600_000);
});
