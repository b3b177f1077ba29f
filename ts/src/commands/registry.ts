/**
 * The registry's commands: publish, versions, show, alias, diff, runs and
 * replay. Each sends the protocol's own messages, to a server
 * (`--connect ENDPOINT`; the admin endpoint for publish and alias) or to a
 * store opened here (`--registry PATH|postgres://…|default`, the default),
 * through the same code the server runs.
 */
import { readFileSync } from "node:fs";
import { Request } from "zeromq";
import { bind } from "../bind";
import type { Bound, GroupInit, Rebase } from "../core/api";
import { prepareFor, readParams } from "../modules";
import { decodeBody, encodeBody } from "../protocol";
import { defaultRegistryPath } from "../registry/location";
import { Registry } from "../registry/registry";
import { openStore } from "../registry/store";
import { Handler } from "../server/handler";
import { RegistryFront } from "../server/registry_handler";

type Msg = Record<string, any>;

const USAGE = `usage:
  lrbridge publish NAME SPEC.json|MODULE.ts [-m MESSAGE] [--author WHO] [--params JSON]
  lrbridge versions NAME
  lrbridge show REF
  lrbridge alias NAME ALIAS VERSION [--expect V|none] [-m WHY] [--author WHO]
  lrbridge diff REF REF [--steps N]
  lrbridge runs REF
  lrbridge replay RUN [--steps N] [--export-spec]

  each with --connect ENDPOINT (a server; publish and alias need its admin
  endpoint) or --registry PATH|postgres://…|default (a store, opened here;
  default: ${defaultRegistryPath()})

  A MODULE.ts is type-checked and transpiled here; its module node, without
  params, is the version's content, and --params are what it is probed with
  (a module whose default export takes params needs them to publish).
`;

class UsageError extends Error {}

interface Options {
  positional: string[];
  flags: Map<string, string | true>;
}

const VALUED = new Set(["--connect", "--registry", "-m", "--message", "--author", "--expect", "--steps", "--params"]);

function parse(args: string[]): Options {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].startsWith("-") ? args[i].split(/=(.*)/s, 2) : [args[i], undefined];
    if (!flag.startsWith("-") || /^-\d/.test(flag)) positional.push(args[i]);
    else if (VALUED.has(flag)) {
      const value = inline ?? args[++i];
      if (value === undefined) throw new UsageError(`${flag} needs a value`);
      flags.set(flag, value);
    } else if (flag === "--export-spec" || flag === "-h" || flag === "--help") flags.set(flag, true);
    else throw new UsageError(`unknown option ${args[i]}`);
  }
  return { positional, flags };
}

/** Where the messages go: a server over ZeroMQ, or a front on a store opened here. */
interface Target {
  ask(message: Msg): Promise<Msg>;
  close(): Promise<void>;
}

async function target(o: Options): Promise<Target> {
  const connect = o.flags.get("--connect");
  if (typeof connect === "string") {
    let id = 0;
    return {
      async ask(message) {
        const socket = new Request({ linger: 0, receiveTimeout: 30_000, sendTimeout: 10_000 });
        socket.connect(connect);
        try {
          await socket.send(encodeBody({ v: 2, id: ++id, ...message }));
          const [body] = await socket.receive();
          return decodeBody(body) as Msg;
        } catch (err) {
          throw new Error(`no reply from ${connect}: ${err instanceof Error ? err.message : String(err)}`);
        } finally {
          socket.close();
        }
      },
      async close() {},
    };
  }
  const where = o.flags.get("--registry");
  const store = await openStore(typeof where === "string" && where !== "default" ? where : defaultRegistryPath());
  const front = new RegistryFront({ handler: new Handler({ bind }), registry: new Registry(store, { bind }), admin: true });
  let id = 0;
  return {
    ask: (message) => front.handle({ v: 2, id: ++id, ...message }) as Promise<Msg>,
    close: () => store.close(),
  };
}

class Refused extends Error {}

/** The module node of a TypeScript file, params left out (the compiler loads only here). */
async function compileForPublish(file: string): Promise<Record<string, unknown>> {
  const { compileModule } = await import("../modules/compile");
  const { params: _none, ...node } = compileModule(file);
  return node;
}

function check(reply: Msg): Msg {
  if (reply.type === "error") throw new Refused(`${reply.code}${reply.path ? ` (${reply.path})` : ""}: ${reply.message}`);
  return reply;
}

function intArg(text: string | true | undefined, name: string, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (typeof text !== "string" || !Number.isSafeInteger(n) || n < min) throw new UsageError(`${name} needs an integer >= ${min}, got ${text}`);
  return n;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, "Z");

export async function run(command: string, args: string[]): Promise<number> {
  let o: Options;
  try {
    o = parse(args);
  } catch (err) {
    process.stderr.write(`lrbridge ${command}: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (o.flags.has("-h") || o.flags.has("--help")) {
    process.stdout.write(USAGE);
    return 0;
  }
  let t: Target | undefined;
  try {
    const arities: Record<string, number> = { publish: 2, versions: 1, show: 1, alias: 3, diff: 2, runs: 1, replay: 1 };
    const wanted = Object.hasOwn(arities, command) ? arities[command] : undefined;
    if (wanted === undefined || o.positional.length !== wanted) throw new UsageError(`${command} takes ${wanted} argument(s), got ${o.positional.length}`);
    t = await target(o);
    const out = await COMMANDS[command](t, o);
    process.stdout.write(out.endsWith("\n") ? out : `${out}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`lrbridge ${command}: ${err.message}\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`lrbridge ${command}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await t?.close();
  }
}

const COMMANDS: Record<string, (t: Target, o: Options) => Promise<string>> = {
  async publish(t, o) {
    const [name, file] = o.positional;
    const message = o.flags.get("-m") ?? o.flags.get("--message");
    const author = o.flags.get("--author") ?? process.env.USER ?? "";
    const request: Msg = { type: "publish", name, message: typeof message === "string" ? message : "", author };
    const paramsText = o.flags.get("--params");
    if (/\.[cm]?tsx?$/.test(file)) {
      let params: Record<string, unknown>;
      try {
        params = readParams(paramsText as string | undefined);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      request.spec = await compileForPublish(file);
      if (paramsText !== undefined) request.params = params;
    } else {
      if (paramsText !== undefined) throw new UsageError("--params go with a MODULE.ts");
      try {
        request.spec = JSON.parse(readFileSync(file, "utf8"));
      } catch (err) {
        throw new Error(`${file}: ${(err as Error).message}`);
      }
    }
    await prepareFor(request.spec); // a store opened here binds the module in the sandbox
    const r = check(await t.ask(request));
    return `${r.name}@${r.version} sha256:${r.spec_hash} (${r.created ? "published" : "already published: same content"})`;
  },

  async versions(t, o) {
    const h = check(await t.ask({ type: "history", name: o.positional[0] }));
    const lines = h.versions.map(
      (v: Msg) => `${String(v.version).padStart(4)}  ${v.spec_hash.slice(0, 12)}  ${iso(v.created_at)}  ${v.author || "-"}  ${v.message}`,
    );
    const aliases = Object.entries(h.aliases as Record<string, number>).map(([a, v]) => `${a} -> ${v}`);
    return [`${h.name}: ${h.versions.length} version(s)`, ...lines, `aliases: ${aliases.length ? aliases.join(", ") : "none"}`].join("\n");
  },

  async show(t, o) {
    const r = check(await t.ask({ type: "resolve", ref: o.positional[0] }));
    return [
      `${r.ref} -> ${r.name}@${r.version}${r.pinned ? "" : " (unpinned: this may move)"}${r.cached ? " (cached: the store is unavailable)" : ""}`,
      `spec_hash: ${r.spec_hash}`,
      `published: ${iso(r.created_at)} by ${r.author || "-"}: ${r.message}`,
      JSON.stringify(r.canonical, null, 2),
    ].join("\n");
  },

  async alias(t, o) {
    const [name, alias, versionText] = o.positional;
    const version = intArg(versionText, "VERSION", 1)!;
    const message: Msg = { type: "alias", name, alias, version };
    const expect = o.flags.get("--expect");
    if (expect !== undefined) message.expect = expect === "none" ? null : intArg(expect, "--expect", 1);
    message.who = o.flags.get("--author") ?? process.env.USER ?? "";
    const why = o.flags.get("-m") ?? o.flags.get("--message");
    if (typeof why === "string") message.why = why;
    const r = check(await t.ask(message));
    return `${r.name}@${r.alias}: ${r.from ?? "(new)"} -> ${r.to}`;
  },

  async diff(t, o) {
    const [a, b] = o.positional;
    const steps = intArg(o.flags.get("--steps"), "--steps", 1) ?? 1000;
    const d = check(await t.ask({ type: "diff", a, b, steps }));
    const lines = [`${a} = ${d.a.name}@${d.a.version}, ${b} = ${d.b.name}@${d.b.version}`];
    if (d.paths.length === 0) lines.push("specs: identical");
    for (const p of d.paths) lines.push(`changed ${p.path}: ${JSON.stringify(p.a)} -> ${JSON.stringify(p.b)}`);
    lines.push(d.first_step === null ? `values: identical over ${steps} steps` : `first differing step: ${d.first_step}`);
    lines.push(`max abs difference: ${d.max_abs}`, `max rel difference: ${d.max_rel}`);
    return lines.join("\n");
  },

  async runs(t, o) {
    const r = check(await t.ask({ type: "runs", ref: o.positional[0] }));
    if (r.runs.length === 0) return `no runs used ${o.positional[0]}`;
    return r.runs
      .map((run: Msg) => {
        const who = [run.name, run.rank !== null ? `rank ${run.rank}/${run.world_size ?? "?"}` : null, run.host ? `${run.host}:${run.pid}` : null].filter(Boolean).join(", ");
        const uses = run.uses.map((u: Msg) => `${u.name}@${u.version} from step ${u.step} (as ${u.ref}, ${iso(u.at)})`);
        const more = (run.uses_total ?? uses.length) - uses.length;
        if (more > 0) uses.push(`and ${more} more`);
        return [`${run.id}  ${who}  last step ${run.last_step}, last seen ${iso(run.last_seen)}`, ...uses.map((u: string) => `  ${u}`)].join("\n");
      })
      .join("\n");
  },

  async replay(t, o) {
    const runId = o.positional[0];
    const r = check(await t.ask({ type: "runs", run: runId }));
    if (r.runs.length === 0) throw new Refused(`no run ${runId} in the registry`);
    const record = r.runs[0] as Msg;
    const uses = record.uses as Msg[];
    if (uses.length === 0) throw new Refused(`run ${runId} has no uses`);
    // What each use opened: the handle's spec when the store kept it (a module's
    // params are in it), else the version's.
    const specs = new Map<string, unknown>();
    for (const u of uses) {
      if (specs.has(useKey(u))) continue;
      if (u.spec != null) specs.set(useKey(u), u.spec);
      else if (!u.name) throw new Refused(`run ${runId} opened a spec without a ref at step ${u.step}, and the store lost it: not replayable`);
      else specs.set(useKey(u), check(await t.ask({ type: "resolve", ref: `${u.name}@${u.version}` })).canonical);
    }
    if (o.flags.has("--export-spec")) {
      const last = uses[uses.length - 1];
      return JSON.stringify({ ref: last.name ? `${last.name}@${last.version}` : null, spec_hash: last.spec_hash, spec: specs.get(useKey(last)) }, null, 2);
    }
    const steps = intArg(o.flags.get("--steps"), "--steps", 1) ?? record.last_step + 1;
    for (const spec of specs.values()) await prepareFor(spec);
    return replayCsv(uses, record.events as Msg[], specs, steps);
  },
};

/**
 * The run's lr and momentum per step, recomputed: each use's version from its
 * step on, rebased at each recorded origin; metric-driven schedules step
 * through the recorded metrics from their initial state.
 */
export function replayCsv(uses: Msg[], events: Msg[], specs: Map<string, unknown>, steps: number): string {
  if (events.some((e) => e.kind === "epoch")) throw new Refused("this run called step(epoch): replay covers windows, origins and metric steps");
  const rows: string[] = [];
  let header = "";
  for (let i = 0; i < uses.length; i++) {
    const u = uses[i];
    const from = u.step;
    const to = Math.min(steps, i + 1 < uses.length ? uses[i + 1].step : steps);
    if (from >= to) continue;
    const bound: Bound = bind(specs.get(useKey(u)), u.groups as GroupInit[], u.last_epoch);
    const g = bound.groups;
    header ||= ["step", ...col("lr", g), ...col("momentum", g), "version"].join(",");
    if (bound.kind === "metric") {
      const metrics = events.filter((e) => e.kind === "metric");
      let state = bound.initialState!().state;
      let values = bound.initialState!();
      rows.push(csvRow(0, values.lr, values.momentum, u.version));
      for (const [k, e] of metrics.entries()) {
        if (k + 1 >= steps) break;
        if (Array.isArray(e.data.lr)) state = { ...state, lr: e.data.lr };
        const metric = typeof e.data.metric === "string" ? { nan: NaN, inf: Infinity, "-inf": -Infinity }[e.data.metric as string]! : e.data.metric;
        const next = bound.metricStep!(state, metric);
        state = next.state;
        values = { ...next, state };
        rows.push(csvRow(k + 1, next.lr, next.momentum, u.version));
      }
      continue;
    }
    const origins = events.filter((e) => e.kind === "origin" && e.step >= from && e.step < to).sort((a, b) => a.step - b.step);
    let origin: Rebase | undefined;
    let start = Math.max(from, bound.constructed?.firstRow ?? 0);
    const emit = (end: number) => {
      for (let s = start; s < end; s += 65536) {
        const count = Math.min(65536, end - s);
        const out = bound.rows(s, count, origin);
        const n = out.lr.length / g;
        for (let k = 0; k < n; k++) {
          rows.push(csvRow(s + k, Array.from(out.lr.slice(k * g, k * g + g)), out.momentum ? Array.from(out.momentum.slice(k * g, k * g + g)) : null, u.version));
        }
        if (out.stop) return;
      }
    };
    for (const e of origins) {
      emit(e.step);
      origin = { step: e.step, lr: e.data.lr };
      // At the origin the group lrs were what the run set; the schedule continues from there.
      const here = bound.rows(Math.max(e.step, bound.constructed?.firstRow ?? 0), 1);
      rows.push(csvRow(e.step, e.data.lr, here.momentum ? Array.from(here.momentum.slice(0, g)) : null, u.version));
      start = e.step + 1;
    }
    emit(to);
  }
  return [header, ...rows].join("\n");
}

/** A use's spec: by the hash of what it opened, so two param sets of one module stay apart. */
function useKey(u: Msg): string {
  return `${u.name}@${u.version} ${u.spec_hash}`;
}

function col(name: string, groups: number): string[] {
  return groups === 1 ? [name] : Array.from({ length: groups }, (_, i) => `${name}${i}`);
}

function csvRow(step: number, lr: number[], momentum: number[] | null, version: number): string {
  const m = momentum ?? lr.map(() => NaN);
  return [step, ...lr.map(num), ...m.map((x) => (Number.isNaN(x) ? "" : num(x))), version].join(",");
}

/** Shortest round-trip form: the CSV holds the exact float64 values. */
function num(x: number): string {
  return String(x);
}
