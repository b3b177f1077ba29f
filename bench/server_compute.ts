/**
 * Section 3: how fast the TS core fills windows, one node process (one core).
 *
 * Reads {cases: [{name, spec, groups}], sizes, minTimeS, batches} as JSON on
 * stdin, writes one JSON result on stdout. Uses the compiled core in dist/
 * (what `lrbridge serve` runs), so `make setup` must have built it.
 */
import type { Bound, GroupInit } from "../ts/src/core/api";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const dist = process.env.LRBRIDGE_BENCH_DIST ?? require("path").join(__dirname, "..", "dist");
const { bind } = require(dist) as { bind: (spec: unknown, groups: GroupInit[]) => Bound };

interface Case {
  name: string;
  spec: unknown;
  groups: GroupInit[];
  /** "random": each window starts anywhere (a resume, a new reader), not after the last one. */
  access?: "sequential" | "random";
  sizes?: number[];
}

interface Input {
  cases: Case[];
  sizes: number[];
  minTimeS: number;
  batches: number;
}

/** Starts stay well inside every spec's valid range (OneCycleLR total_steps = 1e6). */
const START_SPAN = 500_000;

let sink = 0;

/** Deterministic pseudo-random starts (LCG), the same every run. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

function timeBatch(bound: Bound, size: number, minTimeS: number, random: boolean): number {
  const next = lcg(12345);
  const minNs = BigInt(Math.round(minTimeS * 1e9));
  const t0 = process.hrtime.bigint();
  let calls = 0;
  let start = 0;
  let elapsed = 0n;
  do {
    for (let i = 0; i < 8; i++) {
      const rows = bound.rows(start, size);
      sink += rows.lr[rows.lr.length - 1];
      start = random ? Math.floor(next() * START_SPAN) : (start + size + 1) % START_SPAN;
      calls++;
    }
    elapsed = process.hrtime.bigint() - t0;
  } while (elapsed < minNs);
  return (calls * size * bound.groups) / (Number(elapsed) / 1e9);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function measure(c: Case, size: number, minTimeS: number, batches: number) {
  const bound = bind(c.spec, c.groups);
  const random = c.access === "random";
  timeBatch(bound, size, Math.min(0.05, minTimeS), random); // JIT warm-up
  const rates: number[] = [];
  for (let b = 0; b < batches; b++) rates.push(timeBatch(bound, size, minTimeS, random));
  const med = median(rates);
  return {
    name: c.name,
    size,
    groups: bound.groups,
    momentum: bound.momentumKey !== null,
    values_per_s: { median: med, min: Math.min(...rates), max: Math.max(...rates), rel_range: (Math.max(...rates) - Math.min(...rates)) / med, n: rates.length },
  };
}

function main(): void {
  const input = JSON.parse(require("fs").readFileSync(0, "utf8")) as Input;
  const results = [];
  for (const c of input.cases) {
    for (const size of c.sizes ?? input.sizes) {
      const r = measure(c, size, input.minTimeS, input.batches);
      process.stderr.write(`  compute ${c.name.padEnd(26)} window ${String(size).padStart(6)}: ${(r.values_per_s.median / 1e6).toFixed(1)} M values/s\n`);
      results.push(r);
    }
  }
  process.stdout.write(JSON.stringify({ node: process.version, results, sink }) + "\n");
}

main();
