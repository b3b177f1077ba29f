/**
 * The registry's speed targets against real `lrbridge serve --registry`
 * processes (dist/cli.js) over ZeroMQ: resolve+open latency on a warm server,
 * resolve latency with 100k versions in the store against a small store,
 * and publish throughput on SQLite (and the same on Postgres when given).
 * Prints one JSON line on stdout.
 *
 *   node -r ts-node/register bench/registry.ts [--quick] [--postgres URL]
 */
import { ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Dealer, Request } from "zeromq";
import { contentHash } from "../ts/src/core/canonical";
import { decodeBody, encodeBody } from "../ts/src/protocol";
import { openStore } from "../ts/src/registry/store";

const ROOT = resolve(__dirname, "..");
const quick = process.argv.includes("--quick");
const pgIndex = process.argv.indexOf("--postgres");
const postgres = pgIndex > 0 ? process.argv[pgIndex + 1] : undefined;
const log = (line: string) => process.stderr.write(`${line}\n`);

interface Server {
  endpoint: string;
  admin: string;
  stop(): Promise<void>;
}

async function serve(store: string): Promise<Server> {
  const child: ChildProcess = spawn(process.execPath, [join(ROOT, "dist", "cli.js"), "serve", "--bind", "tcp://127.0.0.1:0", "--admin", "tcp://127.0.0.1:0", "--registry", store], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (c) => (err += c));
  const endpoint = await new Promise<string>((ok, fail) => {
    child.stdout!.on("data", (c) => {
      out += c;
      const m = /lrbridge serving on (\S+)/.exec(out);
      if (m) ok(m[1]);
    });
    child.on("exit", (code) => fail(new Error(`server exited ${code}: ${err}`)));
  });
  const admin = /lrbridge admin on (\S+)/.exec(err)![1];
  return {
    endpoint,
    admin,
    stop: () =>
      new Promise<void>((done) => {
        child.on("exit", () => done());
        child.kill("SIGTERM");
      }),
  };
}

/** One REQ socket kept open (a warm client), lock-step requests. */
async function client(endpoint: string) {
  const socket = new Request({ linger: 0, receiveTimeout: 30_000 });
  socket.connect(endpoint);
  let id = 0;
  return {
    async ask(message: Record<string, unknown>): Promise<Record<string, any>> {
      await socket.send(encodeBody({ v: 2, id: ++id, ...message }));
      const [body] = await socket.receive();
      return decodeBody(body) as Record<string, any>;
    },
    close: () => socket.close(),
  };
}

function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { n: s.length, median_ms: round(at(0.5)), p90_ms: round(at(0.9)), p99_ms: round(at(0.99)) };
}
const round = (x: number) => Math.round(x * 1000) / 1000;

async function latency(endpoint: string, messages: () => Record<string, unknown>, n: number) {
  const c = await client(endpoint);
  try {
    for (let i = 0; i < Math.min(200, n); i++) check(await c.ask(messages()));
    const samples: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      check(await c.ask(messages()));
      samples.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    return stats(samples);
  } finally {
    c.close();
  }
}

function check(reply: Record<string, any>) {
  if (reply.type === "error") throw new Error(`${reply.code}: ${reply.message}`);
  return reply;
}

/** Publishes `count` distinct versions through the admin endpoint, pipelined on one DEALER. */
async function publishRate(admin: string, name: string, count: number) {
  const socket = new Dealer({ linger: 0, receiveTimeout: 60_000 });
  socket.connect(admin);
  const t = process.hrtime.bigint();
  const sending = (async () => {
    for (let i = 1; i <= count; i++) {
      await socket.send(encodeBody({ v: 2, id: i, type: "publish", name, spec: { type: "StepLR", step_size: i, gamma: 0.5 }, message: `v${i}` }));
    }
  })();
  let created = 0;
  for (let i = 0; i < count; i++) {
    const [body] = await socket.receive();
    if (check(decodeBody(body) as Record<string, any>).created) created++;
  }
  await sending;
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  socket.close();
  return { versions: created, seconds: round(seconds), versions_per_s: Math.round(created / seconds) };
}

/** Fills a store with `count` versions of one name, straight through the store (set-up, not measured). */
async function fill(location: string, name: string, count: number) {
  const store = await openStore(location);
  try {
    for (let i = 1; i <= count; i++) {
      const canonical = { type: "StepLR", step_size: i, gamma: 0.5 };
      await store.publish({ name, canonical, spec_hash: contentHash(canonical), message: `v${i}`, author: "bench", at: Date.now() / 1000 });
    }
    await store.moveAlias({ name, alias: "prod", to: Math.ceil(count / 2), who: "bench", why: "", at: Date.now() / 1000 });
  } finally {
    await store.close();
  }
}

async function resolveLatencies(location: string, name: string, versions: number, n: number) {
  const server = await serve(location);
  try {
    let k = 0;
    const pick = () => 1 + ((k++ * 7919) % versions);
    return {
      latest: await latency(server.endpoint, () => ({ type: "resolve", ref: name }), n),
      version: await latency(server.endpoint, () => ({ type: "resolve", ref: `${name}@${pick()}` }), n),
      alias: await latency(server.endpoint, () => ({ type: "resolve", ref: `${name}@prod` }), n),
    };
  } finally {
    await server.stop();
  }
}

async function backend(label: string, location: () => Promise<string>, big: number, n: number) {
  log(`[registry] ${label}: resolve+open on a warm server`);
  const small = await location();
  await fill(small, "bench/small", 10);
  const server = await serve(small);
  let openResult;
  let publish;
  try {
    const groups = [{ lr: 0.1, momentum: 0.9 }];
    openResult = {
      open_by_alias: await latency(server.endpoint, () => ({ type: "open", ref: "bench/small@prod", groups }), n),
      open_by_alias_with_run: await latency(server.endpoint, () => ({ type: "open", ref: "bench/small@prod", groups, run: { id: "bench-run" } }), n),
      open_by_version: await latency(server.endpoint, () => ({ type: "open", ref: "bench/small@3", groups }), n),
      open_by_spec: await latency(server.endpoint, () => ({ type: "open", spec: { type: "StepLR", step_size: 3, gamma: 0.5 }, groups }), n),
    };
    log(`[registry] ${label}: publish throughput`);
    publish = await publishRate(server.admin, "bench/published", quick ? 1000 : 3000);
  } finally {
    await server.stop();
  }
  log(`[registry] ${label}: resolve with 10 versions`);
  const smallResolve = await resolveLatencies(small, "bench/small", 10, n);
  log(`[registry] ${label}: filling ${big} versions`);
  const large = await location();
  const t = Date.now();
  await fill(large, "bench/large", big);
  log(`[registry] ${label}: filled in ${((Date.now() - t) / 1000).toFixed(1)} s; resolve with ${big} versions`);
  const largeResolve = await resolveLatencies(large, "bench/large", big, n);
  return { open: openResult, publish, resolve: { versions_small: 10, small: smallResolve, versions_large: big, large: largeResolve } };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "lrbridge-bench-registry-"));
  let files = 0;
  const n = quick ? 500 : 2000;
  const big = quick ? 20_000 : 100_000;
  try {
    const out: Record<string, unknown> = { node: process.version, samples: n };
    out.sqlite = await backend("sqlite", async () => join(dir, `r${++files}.sqlite`), big, n);
    if (postgres) {
      const { Client } = await import("pg");
      let dbs = 0;
      out.postgres = await backend(
        "postgres",
        async () => {
          const name = `bench_${process.pid}_${++dbs}`;
          const admin = new Client({ connectionString: postgres });
          await admin.connect();
          await admin.query(`CREATE DATABASE ${name}`);
          await admin.end();
          return postgres.replace(/\/[^/]*$/, `/${name}`);
        },
        quick ? 5000 : big,
        n,
      );
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
