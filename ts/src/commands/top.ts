/**
 * `lrbridge top --connect ENDPOINT`: a live view of a server's runs, one row
 * per run from its heartbeats (name, state, real step, lr, schedule); then
 * the schedules opened by clients that send none (by content hash, how far
 * they have fetched).
 */
import { Request } from "zeromq";
import { decodeBody, encodeBody, PROTOCOL_VERSION } from "../protocol";
import type { ScheduleActivity, StatsReply } from "../protocol";
import { clientCurveOptions } from "../server/certs";
import { printable } from "../server/labels";
import type { RunRow } from "../live/runs";

const USAGE = `usage: lrbridge top --connect ENDPOINT [--once] [--json] [--interval SECONDS]

  --connect ENDPOINT  the server (tcp://HOST:PORT or ipc://PATH)
  --once              print one snapshot and exit (default: refresh until Ctrl-C)
  --json              print the raw stats reply as JSON (implies --once)
  --interval SECONDS  refresh period (default 1)

A CURVE server (tcp): LRBRIDGE_SERVER_KEY (its .key file or Z85 public key) and
LRBRIDGE_CLIENT_KEY (a .key_secret file in its allow-list), as for the Python client.
`;

interface TopArgs {
  endpoint: string;
  once: boolean;
  json: boolean;
  intervalMs: number;
}

function parseArgs(args: string[]): TopArgs | string {
  const out: TopArgs = { endpoint: "", once: false, json: false, intervalMs: 1000 };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    const value = () => inline ?? args[++i];
    if (flag === "--connect") out.endpoint = value() ?? "";
    else if (flag === "--once") out.once = true;
    else if (flag === "--json") out.json = out.once = true;
    else if (flag === "--interval") {
      const seconds = Number(value());
      if (!(seconds > 0)) return "--interval needs a number of seconds > 0";
      out.intervalMs = seconds * 1000;
    } else return `unknown option ${args[i]}`;
  }
  if (!/^(tcp|ipc):\/\/.+/.test(out.endpoint)) return "--connect needs tcp://HOST:PORT or ipc://PATH";
  return out;
}

async function fetchStats(endpoint: string): Promise<StatsReply> {
  // A fresh REQ per poll: a lost reply cannot wedge the next one.
  const curve = endpoint.startsWith("tcp://") ? clientCurveOptions(process.env) : {};
  const socket = new Request({ linger: 0, receiveTimeout: 5000, sendTimeout: 5000, ...curve });
  socket.connect(endpoint);
  try {
    await socket.send(encodeBody({ v: PROTOCOL_VERSION, id: 1, type: "stats" }));
    const [body] = await socket.receive();
    const reply = decodeBody(body) as StatsReply | { type: "error"; message: string };
    if (reply.type !== "stats") throw new Error(`server answered ${JSON.stringify(reply)}`);
    return reply;
  } finally {
    socket.close();
  }
}

function ago(seconds: number): string {
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))}s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)}m ago`;
  return `${(seconds / 3600).toFixed(1)}h ago`;
}

function progress(s: ScheduleActivity): string {
  if (s.kind === "metric") return `${s.metric_steps} metric steps`;
  const end = s.row_end === null ? "" : ` / ${s.row_end}`;
  return `${Math.min(s.rows_served, s.row_end ?? Infinity)}${end} rows`;
}

function lrText(values: number[] | null): string {
  if (!values || values.length === 0) return "-";
  const first = values[0].toPrecision(4).replace(/\.?0+e/, "e").replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
  return values.length > 1 ? `${first} (+${values.length - 1})` : first;
}

function runRows(runs: Omit<RunRow, "changes">[], nowSeconds: number): string[][] {
  return runs.map((r) => [
    printable(r.name),
    r.state,
    r.total === null ? String(r.step) : `${r.step} / ${r.total}`,
    lrText(r.lr),
    printable(r.type),
    r.ref === null ? r.spec_hash.slice(0, 12) : printable(r.version === null ? r.ref : `${r.ref} v${r.version}`),
    ago(nowSeconds - r.last_seen),
  ]);
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}

/** The stats reply as a table: one row per run, then schedules no run reports (exported for tests). */
export function renderStats(stats: StatsReply, endpoint: string, nowSeconds = Date.now() / 1000): string {
  const head =
    `${stats.server} at ${endpoint}  up ${Math.round(stats.uptime_s)}s  requests ${stats.requests}  ` +
    `errors ${stats.errors}  cache ${stats.cache_size}/${stats.cache_capacity}`;
  const runs = stats.runs ?? [];
  const reported = new Set(runs.map((r) => r.hash));
  const lines = [head];
  if (runs.length > 0) lines.push(...table(["RUN", "STATE", "STEP", "LR", "TYPE", "SPEC", "LAST SEEN"], runRows(runs, nowSeconds)));
  const silent = stats.schedules.filter((s) => !reported.has(s.hash));
  if (runs.length > 0 && silent.length === 0) return `${lines.join("\n")}\n`;
  if (runs.length > 0) lines.push("", "schedules without heartbeats (older clients):");
  const rows = silent.map((s) => [
    printable(s.type),
    s.spec_hash.slice(0, 12),
    String(s.groups),
    progress(s),
    String(s.windows),
    ago(nowSeconds - s.last_seen),
    printable(s.clients.join(", ")) || "-",
  ]);
  const [header, ...body] = table(["TYPE", "SPEC", "GROUPS", "SERVED", "WINDOWS", "LAST SEEN", "CLIENTS"], rows);
  lines.push(header, ...(body.length ? body : ["(no schedules in use)"]));
  return `${lines.join("\n")}\n`;
}

export async function run(args: string[]): Promise<number> {
  if (args.includes("-h") || args.includes("--help")) {
    process.stdout.write(USAGE);
    return 0;
  }
  const parsed = parseArgs(args);
  if (typeof parsed === "string") {
    process.stderr.write(`lrbridge top: ${parsed}\n${USAGE}`);
    return 2;
  }
  for (;;) {
    let stats: StatsReply;
    try {
      stats = await fetchStats(parsed.endpoint);
    } catch (err) {
      process.stderr.write(`lrbridge top: no answer from ${parsed.endpoint}: ${err instanceof Error ? err.message : String(err)}\n`);
      return 1;
    }
    if (parsed.json) {
      process.stdout.write(`${JSON.stringify(stats)}\n`);
      return 0;
    }
    const text = renderStats(stats, parsed.endpoint);
    process.stdout.write(parsed.once ? text : `\x1b[H\x1b[2J${text}`);
    if (parsed.once) return 0;
    await new Promise((resolve) => setTimeout(resolve, parsed.intervalMs));
  }
}
