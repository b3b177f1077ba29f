/**
 * Schedule modules: window compute of a library-composed module (values the
 * host computes from the spec it describes) against the same schedule as a
 * JSON spec, a custom-arithmetic module (computed in the QuickJS sandbox),
 * and compile + probe time. Prints one JSON line (bench/modules.py drives it).
 */
import { join } from "node:path";
import { bind } from "../ts/src/bind";
import { loadSandbox } from "../ts/src/modules";
import { compileModule } from "../ts/src/modules/compile";
import { BLOCK_ROWS } from "../ts/src/modules/spec";

const HERE = __dirname;
const PARAMS = { total: 100_000, warm: 1000 };
const WINDOW = 1024;
const GROUPS = [{ lr: 0.1 }];

const WARMUP_REX = {
  type: "join",
  boundaries: [1000],
  schedules: [
    { type: "linear", total_steps: 1000, start: 0, end: 1 },
    { type: "rex", total_steps: 99_000 },
  ],
};

const COMPOSITE = {
  type: "join",
  boundaries: [1000],
  schedules: [
    { type: "linear", total_steps: 1000, start: 0, end: 1 },
    {
      type: "multiply",
      schedules: [
        { type: "rex", total_steps: 99_000 },
        { type: "sample", every: 10, schedule: { type: "cycles", t_initial: 12_500, shape: "cosine", cycle_decay: 0.8 } },
      ],
    },
  ],
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * values/s computing windows of WINDOW rows over `rows` rows from a fresh
 * bind (nothing cached), median of `repeats`. Each window is its own job,
 * as each request is in the server (the sandbox's budget is per request).
 */
async function throughput(spec: unknown, rows: number, repeats: number): Promise<number> {
  const rates: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const bound = bind(spec, GROUPS);
    const t0 = performance.now();
    let sink = 0;
    for (let start = 0; start < rows; start += WINDOW) {
      sink += bound.rows(start + r * rows, WINDOW).lr[0];
      await Promise.resolve();
    }
    const s = (performance.now() - t0) / 1000;
    if (!Number.isFinite(sink)) throw new Error("non-finite");
    rates.push(rows / s);
  }
  return median(rates);
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const t0 = performance.now();
  await loadSandbox();
  const sandboxLoadMs = performance.now() - t0;

  // compile + probe: the first in this process (TypeScript's lib files read and checked), then warm
  const compileMs: number[] = [];
  let composed: unknown = null;
  for (let i = 0; i < 3; i++) {
    const c0 = performance.now();
    composed = compileModule(join(HERE, "modules", "library_composed.ts"), { ...PARAMS, warm: PARAMS.warm + i });
    bind(composed, GROUPS);
    compileMs.push(performance.now() - c0);
  }
  const cases: [string, unknown, unknown][] = [
    ["warmup_rex", WARMUP_REX, compileModule(join(HERE, "modules", "warmup_rex.ts"), PARAMS)],
    ["composite", COMPOSITE, compileModule(join(HERE, "modules", "library_composed.ts"), PARAMS)],
  ];
  const custom = compileModule(join(HERE, "modules", "custom.ts"), PARAMS);

  const rows = quick ? 200_000 : 1_000_000;
  const rounds = quick ? 3 : 5;
  // interleaved rounds after a warm-up round, so neither side gets the JIT's warm-up alone
  const rates: Record<string, { json_spec: number[]; module: number[] }> = {};
  for (let round = 0; round <= rounds; round++) {
    for (const [name, json, mod] of cases) {
      const jr = await throughput(json, rows, 1);
      const mr = await throughput(mod, rows, 1);
      if (round === 0) continue;
      (rates[name] ??= { json_spec: [], module: [] }).json_spec.push(jr);
      rates[name].module.push(mr);
    }
  }
  const customRate = await throughput(custom, Math.min(rows, 200_000), rounds);
  const valuesPerS: Record<string, unknown> = {};
  for (const [name, r] of Object.entries(rates)) valuesPerS[name] = { json_spec: median(r.json_spec), module: median(r.module) };
  valuesPerS.custom_module = customRate;
  process.stdout.write(
    JSON.stringify({
      node: process.version,
      window_rows: WINDOW,
      sandbox_block_rows: BLOCK_ROWS,
      rows,
      sandbox_load_ms: sandboxLoadMs,
      compile_probe_ms: { first: compileMs[0], warm: median(compileMs.slice(1)) },
      values_per_s: valuesPerS,
    }) + "\n",
  );
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
