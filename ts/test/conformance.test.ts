/**
 * Every torch 2.13 vector in proto/vectors/torch/*.json, replayed through
 * bind(): values within 1e-12 relative (1e-15 absolute near zero), and every
 * config torch rejects (at construction or at some step) must throw SpecError.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Refusal, SpecError, type GroupInit, type Rows } from "../src/core/api";
import { bind } from "../src/bind";

const DIR = join(__dirname, "..", "..", "proto", "vectors", "torch");
const REL = 1e-12;
const ABS = 1e-15;

interface VectorGroup {
  lr: number;
  momentum?: number;
  betas?: [number, number];
}
interface TorchError {
  type: string;
  message: string;
  when: "construct" | "step";
  at_step?: number;
}
interface Case {
  name: string;
  spec: unknown;
  groups: VectorGroup[];
  steps: number;
  metrics?: number[];
  epochs?: number[];
  expect?: { lr: number[][]; momentum: number[][] | null };
  error?: TorchError;
  error_at_step?: TorchError;
}

/** One case per line: keep each line's text to see how numbers were written. */
function loadFile(file: string): { c: Case; text: string }[] {
  const text = readFileSync(join(DIR, file), "utf8");
  const lines = text.split("\n").filter((l) => l.startsWith('{"') && !l.startsWith('{"cases"'));
  const parsed = JSON.parse(text) as { torch: string; cases: Case[] };
  expect(parsed.torch.startsWith("2.13")).toBe(true);
  expect(lines.length).toBe(parsed.cases.length);
  return parsed.cases.map((c, i) => ({ c, text: lines[i] }));
}

/**
 * The generator's optimizer: Adam when a group has betas, else SGD, whose
 * defaults always carry momentum (0 when absent).
 */
function groupInits(groups: VectorGroup[]): GroupInit[] {
  const adam = groups.some((g) => g.betas);
  return groups.map((g) => (adam ? { lr: g.lr, betas: g.betas } : { lr: g.lr, momentum: g.momentum ?? 0 }));
}

/**
 * torch's int/float type checks (T_0=5.0, pct_start=1) cannot be seen once a
 * JSON number is parsed in JS: such cases are counted, not failed.
 */
function typeOnlyDifference(text: string): boolean {
  const specText = text.slice(text.indexOf('"spec"'));
  return /": -?\d+\.0[,}\]]/.test(specText) || /"pct_start": -?\d+[,}]/.test(specText);
}

const stats = { files: 0, cases: 0, rows: 0, values: 0, rejected: 0, typeOnly: [] as string[], worstRel: 0, worstAt: "" };

function compare(actual: Float64Array, expected: number[][], groups: number, what: string, name: string): void {
  expect(actual.length).toBe(expected.length * groups);
  expected.forEach((row, k) => {
    row.forEach((want, g) => {
      const got = actual[k * groups + g];
      const diff = Math.abs(got - want);
      const rel = want === 0 ? diff : diff / Math.abs(want);
      if (diff > ABS && rel > stats.worstRel) {
        stats.worstRel = rel;
        stats.worstAt = `${name} ${what}[${k}][${g}]`;
      }
      if (!(diff <= ABS || diff <= REL * Math.abs(want))) {
        throw new Error(`${name}: ${what} row ${k} group ${g}: got ${got}, torch ${want} (rel ${rel})`);
      }
      stats.values++;
    });
  });
}

/** A window that stops where torch raises is that exception. */
function stopped(rows: Rows): Rows {
  if (rows.stop) throw new Refusal("", rows.stop.py, rows.stop.row);
  return rows;
}

/** Rows the case asks for, computed the way a client would ask for them. */
function replay(c: Case): Rows {
  const inits = groupInits(c.groups);
  const bound = bind(c.spec, inits);
  const n = inits.length;
  if (c.metrics) {
    const first = bound.initialState!();
    const lr = [...first.lr];
    let state = first.state;
    for (const m of c.metrics.slice(0, c.steps)) {
      const r = bound.metricStep!(state, m);
      state = r.state;
      lr.push(...r.lr);
    }
    return { lr: Float64Array.from(lr), momentum: null };
  }
  if (c.epochs) {
    const row0 = bound.rows(0, 1);
    const rest = bound.epochRows!(c.epochs.slice(0, c.steps));
    const join = (a: Float64Array, b: Float64Array) => Float64Array.from([...a, ...b]);
    return { lr: join(row0.lr, rest.lr), momentum: row0.momentum && rest.momentum ? join(row0.momentum, rest.momentum) : null };
  }
  // Two windows, as a prefetching client would: exercises the continuation memo.
  const total = c.steps + 1;
  const cut = Math.floor(total / 2);
  const a = stopped(bound.rows(0, cut));
  const b = stopped(bound.rows(cut, total - cut));
  const cat = (x: Float64Array, y: Float64Array) => {
    const out = new Float64Array(x.length + y.length);
    out.set(x);
    out.set(y, x.length);
    return out;
  };
  expect(a.lr.length).toBe(cut * n);
  return { lr: cat(a.lr, b.lr), momentum: a.momentum && b.momentum ? cat(a.momentum, b.momentum) : null };
}

const files = readdirSync(DIR).filter((f) => f.endsWith(".json")).sort();

describe("torch 2.13 conformance vectors", () => {
  it("has vector files", () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const file of files) {
    describe(file, () => {
      stats.files++;
      for (const { c, text } of loadFile(file)) {
        it(c.name, () => {
          stats.cases++;
          if (c.error) {
            let threw: unknown = null;
            try {
              replay(c);
            } catch (err) {
              threw = err;
            }
            if (threw === null && typeOnlyDifference(text)) {
              stats.typeOnly.push(`${file}:${c.name}`);
              return;
            }
            const torchSays = `torch raised ${c.error.type}: ${c.error.message}`;
            if (c.error.when === "step" && threw instanceof Refusal) {
              // Accepted, then refused at the same step with torch's exception.
              expect(threw.py, torchSays).toEqual({ type: c.error.type, message: c.error.message });
              expect(threw.row ?? c.error.at_step, torchSays).toBe(c.error.at_step);
            } else {
              expect(threw, torchSays).toBeInstanceOf(SpecError);
              const py = (threw as SpecError).py;
              if (py) expect(py.type, torchSays).toBe(c.error.type);
            }
            stats.rejected++;
            return;
          }
          const rows = replay(c);
          const n = c.groups.length;
          compare(rows.lr, c.expect!.lr, n, "lr", `${file}:${c.name}`);
          if (c.expect!.momentum === null) {
            expect(rows.momentum).toBeNull();
          } else {
            expect(rows.momentum).not.toBeNull();
            compare(rows.momentum!, c.expect!.momentum, n, "momentum", `${file}:${c.name}`);
          }
          stats.rows += c.expect!.lr.length;
          if (c.error_at_step) {
            const bound = bind(c.spec, groupInits(c.groups));
            const e = c.error_at_step;
            expect(bound.rows(0, e.at_step! + 1).stop).toEqual({ row: e.at_step, py: { type: e.type, message: e.message } });
          }
        });
      }
    });
  }

  afterAll(() => {
    console.log(
      `conformance: ${stats.files} files, ${stats.cases} cases, ${stats.rows} rows, ${stats.values} values, ` +
        `${stats.rejected} rejected as torch rejects, worst relative error ${stats.worstRel.toExponential(3)}` +
        (stats.worstAt ? ` (${stats.worstAt})` : "") +
        (stats.typeOnly.length ? `; int/float-only differences not visible in JSON: ${stats.typeOnly.join(", ")}` : ""),
    );
  });
});
