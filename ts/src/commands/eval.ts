/**
 * `lrbridge eval`: print a schedule's values as torch would produce them.
 * Row 0 is right after the constructor; row k after k step() calls
 * (step(metrics[k-1]) for ReduceLROnPlateau, step(epochs[k-1]) with --epochs).
 */
import { readFileSync } from "node:fs";
import { SpecError, type GroupInit } from "../core/api";
import { bind } from "../bind";
import { CompileError, ModuleFailure, prepareFor, readParams } from "../modules";

const USAGE = `usage: lrbridge eval (--spec JSON|@FILE | --module FILE.ts [--params JSON])
                     --lr LR[,LR...] [--steps N]
                     [--momentum M[,M...] | --betas B1,B2]
                     [--metrics V,V,...] [--epochs E,E,...]

Prints {"lr": [[group values] per row], "momentum": [[...] per row] | null}.
--module compiles a TypeScript schedule module (as lrbridge compile does).
One param group per --lr value. --steps defaults to the number of metrics or
epochs. Exit 2 on a usage error or an invalid spec (message on stderr).
`;

export interface EvalArgs {
  spec: unknown;
  groups: GroupInit[];
  steps: number;
  metrics?: number[];
  epochs?: number[];
}

export class UsageError extends Error {}

export function numbers(flag: string, text: string | undefined): number[] {
  if (text === undefined || text === "") throw new UsageError(`${flag} needs a value`);
  return text.split(",").map((part) => {
    const v = Number(part.trim());
    if (part.trim() === "" || !Number.isFinite(v)) throw new UsageError(`${flag}: '${part}' is not a number`);
    return v;
  });
}

export function readSpec(text: string | undefined): unknown {
  if (text === undefined || text === "") throw new UsageError("--spec needs JSON or @FILE");
  const json = text.startsWith("@") ? readFileSync(text.slice(1), "utf8") : text;
  try {
    return JSON.parse(json);
  } catch (err) {
    throw new SpecError("spec", `not valid JSON: ${(err as Error).message}`);
  }
}

/** One param group per --lr value, with --momentum (one, or one per group) or --betas. */
export function groupsFromFlags(raw: Record<string, string | undefined>): GroupInit[] {
  const lrs = numbers("--lr", raw["--lr"]);
  if (raw["--momentum"] !== undefined && raw["--betas"] !== undefined) {
    throw new UsageError("give --momentum or --betas, not both");
  }
  const momentum = raw["--momentum"] !== undefined ? numbers("--momentum", raw["--momentum"]) : null;
  if (momentum && momentum.length !== 1 && momentum.length !== lrs.length) {
    throw new UsageError(`--momentum needs 1 value or one per group (${lrs.length})`);
  }
  const betas = raw["--betas"] !== undefined ? numbers("--betas", raw["--betas"]) : null;
  if (betas && betas.length !== 2) throw new UsageError("--betas needs two values: beta1,beta2");
  const groups: GroupInit[] = lrs.map((lr, i) => ({
    lr,
    ...(momentum ? { momentum: momentum.length === 1 ? momentum[0] : momentum[i] } : {}),
    ...(betas ? { betas: [betas[0], betas[1]] as [number, number] } : {}),
  }));
  return groups;
}

/** Parses eval's flags (`--flag value` or `--flag=value`). */
export function parseEvalArgs(args: string[]): EvalArgs | { help: true } {
  const raw: Record<string, string | undefined> = {};
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    if (flag === "-h" || flag === "--help") return { help: true };
    if (!["--spec", "--module", "--params", "--steps", "--lr", "--momentum", "--betas", "--metrics", "--epochs"].includes(flag)) {
      throw new UsageError(`unknown option '${args[i]}'`);
    }
    raw[flag] = inline ?? args[++i];
  }
  const spec = raw["--module"] !== undefined ? moduleSpec(raw) : readSpec(raw["--spec"]);
  const groups = groupsFromFlags(raw);
  const metrics = raw["--metrics"] !== undefined ? numbers("--metrics", raw["--metrics"]) : undefined;
  const epochs = raw["--epochs"] !== undefined ? numbers("--epochs", raw["--epochs"]) : undefined;
  if (metrics && epochs) throw new UsageError("give --metrics or --epochs, not both");
  const given = metrics ?? epochs;
  let steps: number;
  if (raw["--steps"] !== undefined) {
    steps = Number(raw["--steps"]);
    if (!Number.isInteger(steps) || steps < 0) throw new UsageError(`--steps must be an integer >= 0, got '${raw["--steps"]}'`);
    if (given && given.length < steps) {
      throw new UsageError(`--steps ${steps} needs ${steps} values in ${metrics ? "--metrics" : "--epochs"}, got ${given.length}`);
    }
  } else if (given) {
    steps = given.length;
  } else {
    throw new UsageError("--steps is required (or --metrics / --epochs)");
  }
  return { spec, groups, steps, metrics, epochs };
}

/** --module FILE [--params JSON] → the module's spec node. */
export function moduleSpec(raw: Record<string, string | undefined>): unknown {
  if (raw["--spec"] !== undefined) throw new UsageError("give --spec or --module, not both");
  if (!raw["--module"]) throw new UsageError("--module needs a file");
  let params: Record<string, unknown>;
  try {
    params = readParams(raw["--params"]);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { compileModule } = require("../modules/compile") as typeof import("../modules/compile"); // the TypeScript compiler: only when compiling
  return compileModule(raw["--module"], params);
}

export interface EvalOutput {
  lr: number[][];
  momentum: number[][] | null;
}

function toRows(values: Float64Array, groups: number): number[][] {
  const rows: number[][] = [];
  for (let k = 0; k < values.length / groups; k++) rows.push(Array.from(values.subarray(k * groups, (k + 1) * groups)));
  return rows;
}

/** The values eval prints; throws SpecError for an invalid spec. */
export function evaluateSchedule(a: EvalArgs): EvalOutput {
  const bound = bind(a.spec, a.groups);
  const n = bound.groups;
  if (bound.kind === "metric") {
    if (!a.metrics && a.steps > 0) throw new UsageError(`${String((a.spec as { type?: unknown }).type)} is metric-driven: give --metrics`);
    const first = bound.initialState!();
    const lr = [first.lr];
    let state = first.state;
    for (const m of (a.metrics ?? []).slice(0, a.steps)) {
      const r = bound.metricStep!(state, m);
      state = r.state;
      lr.push(r.lr);
    }
    return { lr, momentum: null };
  }
  if (a.metrics) throw new UsageError("--metrics is only for metric-driven schedules (ReduceLROnPlateau)");
  const row0 = bound.rows(0, 1);
  if (a.epochs) {
    const rest = bound.epochRows!(a.epochs.slice(0, a.steps));
    return {
      lr: [...toRows(row0.lr, n), ...toRows(rest.lr, n)],
      momentum: row0.momentum && rest.momentum ? [...toRows(row0.momentum, n), ...toRows(rest.momentum, n)] : null,
    };
  }
  const rows = bound.rows(0, a.steps + 1);
  return { lr: toRows(rows.lr, n), momentum: rows.momentum ? toRows(rows.momentum, n) : null };
}

export async function run(args: string[]): Promise<number> {
  try {
    const parsed = parseEvalArgs(args);
    if ("help" in parsed) {
      process.stdout.write(USAGE);
      return 0;
    }
    await prepareFor(parsed.spec);
    process.stdout.write(`${JSON.stringify(evaluateSchedule(parsed))}\n`);
    return 0;
  } catch (err) {
    return reportCliError("eval", USAGE, err);
  }
}

/** Exit 2 with one clear line for what a user got wrong; anything else is a bug and is rethrown. */
export function reportCliError(command: string, usage: string, err: unknown): number {
  if (err instanceof CompileError || err instanceof ModuleFailure) {
    process.stderr.write(`lrbridge ${command}: ${err.message}\n`);
    return 2;
  }
  if (err instanceof SpecError) {
    process.stderr.write(`lrbridge ${command}: invalid spec: ${err.message}\n`);
    return 2;
  }
  if (err instanceof UsageError) {
    process.stderr.write(`lrbridge ${command}: ${err.message}\n${usage}`);
    return 2;
  }
  if (err instanceof Error && "code" in err && (err as NodeJS.ErrnoException).code === "ENOENT") {
    process.stderr.write(`lrbridge ${command}: ${err.message}\n`);
    return 2;
  }
  throw err;
}
