/**
 * `lrbridge plot`: draw schedules' lr (and momentum) curves to SVG or PNG,
 * with the values `lrbridge eval` prints. One panel per schedule, side by side.
 */
import { existsSync, writeFileSync } from "node:fs";
import { basename, extname } from "node:path";
import { prepareFor } from "../modules";
import { type Panel, chartSvg } from "../plot/chart";
import { Request } from "zeromq";
import { decodeBody, encodeBody } from "../protocol";
import { parseRef } from "../registry/ref";
import { type EvalArgs, UsageError, evaluateSchedule, groupsFromFlags, moduleSpec, numbers, readSpec, reportCliError } from "./eval";

const USAGE = `usage: lrbridge plot SPEC|REF [SPEC|REF ...] --steps N -o FILE.svg|FILE.png
                     [--connect ENDPOINT] [--label NAME ...] [--lr LR[,LR...]]
                     [--momentum M[,M...] | --betas B1,B2] [--metrics V,V,...]
                     [--log] [--columns C] [--module FILE.ts ... [--params JSON]]

SPEC is a JSON spec or @FILE (also --spec SPEC); --module FILE.ts is a
TypeScript schedule module, compiled with --params (as lrbridge compile does). Each spec gets a panel of its
lr per param group, and a second panel of its momentum (or beta1) when it
writes one. --label names the panels in order (default: the spec's type).
With --connect ENDPOINT, a REF (namespace/name[@version|@alias|@sha256:HEX])
is resolved on that server and its canonical spec drawn (default label:
name@version).
--lr defaults to 0.1 (one group). --log draws lr on a log scale.
`;

export interface PlotArgs {
  /** A spec to draw; `ref` (with `--connect`) until `resolveRefs` replaces it with its canonical spec. */
  specs: { spec: unknown; label: string; ref?: string; labelled?: boolean }[];
  connect?: string;
  base: Omit<EvalArgs, "spec">;
  out: string;
  log: boolean;
  columns?: number;
}

const FLAGS = ["--connect", "--spec", "--module", "--params", "--label", "--steps", "--lr", "--momentum", "--betas", "--metrics", "--columns", "-o", "--out"];

export function parsePlotArgs(args: string[]): PlotArgs | { help: true } {
  const raw: Record<string, string | undefined> = {};
  const specs: string[] = [];
  const labels: string[] = [];
  let log = false;
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    if (flag === "-h" || flag === "--help") return { help: true };
    if (flag === "--log") {
      log = true;
      continue;
    }
    if (!flag.startsWith("-") || flag === "-") {
      specs.push(args[i]);
      continue;
    }
    if (!FLAGS.includes(flag)) throw new UsageError(`unknown option '${args[i]}'`);
    const value = inline ?? args[++i];
    if (value === undefined) throw new UsageError(`${flag} needs a value`);
    if (flag === "--spec") specs.push(value);
    else if (flag === "--module") specs.push(`module:${value}`);
    else if (flag === "--label") labels.push(value);
    else raw[flag === "--out" ? "-o" : flag] = value;
  }
  if (specs.length === 0) throw new UsageError("give at least one spec");
  if (labels.length > specs.length) throw new UsageError(`${labels.length} labels for ${specs.length} specs`);
  const out = raw["-o"];
  if (!out) throw new UsageError("-o FILE.svg|FILE.png is required");
  if (![".svg", ".png"].includes(extname(out).toLowerCase())) throw new UsageError(`-o must end in .svg or .png, got '${out}'`);
  const steps = Number(raw["--steps"]);
  if (raw["--steps"] === undefined || !Number.isInteger(steps) || steps < 1 || steps > 1_000_000) {
    throw new UsageError(`--steps must be an integer in [1, 1000000], got '${raw["--steps"] ?? ""}'`);
  }
  const columns = raw["--columns"] !== undefined ? Number(raw["--columns"]) : undefined;
  if (columns !== undefined && !(Number.isInteger(columns) && columns >= 1)) throw new UsageError("--columns must be an integer >= 1");
  const groups = groupsFromFlags({ ...raw, "--lr": raw["--lr"] ?? "0.1" });
  const metrics = raw["--metrics"] !== undefined ? numbers("--metrics", raw["--metrics"]) : undefined;
  return {
    specs: specs.map((text, i) => {
      if (raw["--connect"] !== undefined && isRef(text)) return { spec: null, ref: text, label: labels[i] ?? text, labelled: labels[i] !== undefined };
      if (text.startsWith("module:")) {
        const file = text.slice("module:".length);
        return { spec: moduleSpec({ "--module": file, "--params": raw["--params"] }), label: labels[i] ?? basename(file) };
      }
      const spec = readSpec(text.startsWith("{") || text.startsWith("@") ? text : `@${text}`);
      const type = spec !== null && typeof spec === "object" ? String((spec as { type?: unknown }).type) : "spec";
      return { spec, label: labels[i] ?? type };
    }),
    base: { groups, steps: metrics ? Math.min(steps, metrics.length) : steps, metrics },
    out,
    log,
    columns,
    connect: raw["--connect"],
  };
}

/** A positional that names a registry ref rather than a spec file. */
function isRef(text: string): boolean {
  if (text.startsWith("{") || text.startsWith("@") || existsSync(text)) return false;
  try {
    parseRef(text);
    return true;
  } catch {
    return false;
  }
}

/** Each ref → the canonical spec the server resolves it to (one REQ round trip per ref). */
export async function resolveRefs(a: PlotArgs): Promise<void> {
  const endpoint = a.connect;
  if (!endpoint) return;
  let id = 0;
  for (const entry of a.specs) {
    if (entry.ref === undefined) continue;
    const socket = new Request({ linger: 0, receiveTimeout: 30_000, sendTimeout: 10_000 });
    socket.connect(endpoint);
    let reply: Record<string, unknown>;
    try {
      await socket.send(encodeBody({ v: 2, id: ++id, type: "resolve", ref: entry.ref }));
      reply = decodeBody((await socket.receive())[0]) as Record<string, unknown>;
    } catch (err) {
      throw new UsageError(`no reply from ${endpoint}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      socket.close();
    }
    if (reply.type !== "resolved") {
      throw new UsageError(`${entry.ref}: ${String(reply.code ?? reply.type)}${reply.path ? ` (${String(reply.path)})` : ""}: ${String(reply.message ?? "not resolved")}`);
    }
    entry.spec = reply.canonical;
    if (!entry.labelled) entry.label = `${String(reply.name)}@${String(reply.version)}`;
  }
}

/** The panels for each spec: lr per group, then momentum per group when the schedule writes it. */
export function plotPanels(a: PlotArgs): Panel[] {
  const panels: Panel[] = [];
  for (const { spec, label } of a.specs) {
    const values = evaluateSchedule({ ...a.base, spec });
    const n = values.lr[0]?.length ?? 0;
    const column = (rows: number[][], g: number) => Float64Array.from(rows, (r) => r[g]);
    const names = (kind: string) => (g: number) => (n > 1 ? `${kind} group ${g}` : kind);
    panels.push({
      title: label,
      yLabel: "lr",
      log: a.log,
      series: Array.from({ length: n }, (_, g) => ({ label: names("lr")(g), values: column(values.lr, g) })),
    });
    if (values.momentum) {
      const m = values.momentum;
      panels.push({
        title: `${label}: momentum`,
        yLabel: "momentum",
        series: Array.from({ length: n }, (_, g) => ({ label: names("momentum")(g), values: column(m, g), dashed: true })),
      });
    }
  }
  return panels;
}

/** SVG as PNG through resvg (an optional dependency: SVG needs nothing). */
function toPng(svg: string): Buffer {
  let resvg: typeof import("@resvg/resvg-js");
  try {
    resvg = require("@resvg/resvg-js");
  } catch {
    throw new UsageError("PNG output needs the optional package @resvg/resvg-js (npm install @resvg/resvg-js); -o FILE.svg needs nothing");
  }
  const r = new resvg.Resvg(svg, { fitTo: { mode: "zoom", value: 2 }, font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" } });
  return r.render().asPng();
}

export async function run(args: string[]): Promise<number> {
  try {
    const parsed = parsePlotArgs(args);
    if ("help" in parsed) {
      process.stdout.write(USAGE);
      return 0;
    }
    await resolveRefs(parsed);
    for (const { spec } of parsed.specs) await prepareFor(spec);
    const svg = chartSvg(plotPanels(parsed), { columns: parsed.columns });
    writeFileSync(parsed.out, extname(parsed.out).toLowerCase() === ".png" ? toPng(svg) : svg);
    process.stdout.write(`${parsed.out}\n`);
    return 0;
  } catch (err) {
    return reportCliError("plot", USAGE, err);
  }
}
