/**
 * Named recipes against golden vectors made by proto/vectors/generate_recipes.py
 * (real transformers for HF; line-by-line transcriptions of fastai, timm,
 * Keras, the papers), replayed through bindGeneric.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bindGeneric } from "../src/library/bind";

const DIR = join(__dirname, "..", "..", "proto", "vectors", "recipes");

interface Case {
  name: string;
  spec: Record<string, unknown>;
  groups: number[];
  steps: number;
  lr: number[][];
  momentum?: number[][];
  momentum_groups?: boolean;
}

function load(file: string): { cases: Case[]; range_test?: any } {
  return JSON.parse(readFileSync(join(DIR, file), "utf8"));
}

/** |a − b| ≤ 1e-12·|b|, or ≤ 1e-15 near zero. */
function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= Math.max(1e-12 * Math.abs(b), 1e-15);
}

function expectRows(actual: Float64Array, expected: number[][], label: string): void {
  const g = expected[0].length;
  expect(actual.length).toBe(expected.length * g);
  const bad: string[] = [];
  expected.forEach((row, k) =>
    row.forEach((v, j) => {
      if (!close(actual[k * g + j], v)) bad.push(`${label} row ${k} group ${j}: ${actual[k * g + j]} != ${v}`);
    }),
  );
  expect(bad.slice(0, 5)).toEqual([]);
}

for (const file of ["hf.json", "timm.json", "fastai.json", "misc.json"]) {
  describe(file, () => {
    for (const c of load(file).cases) {
      it(c.name, () => {
        const groups = c.groups.map((lr) => (c.momentum_groups ? { lr, momentum: 0.9 } : { lr }));
        const b = bindGeneric(c.spec, groups);
        const rows = b.rows(0, c.steps);
        expectRows(rows.lr, c.lr, c.name);
        if (c.momentum) {
          expect(b.momentumKey).toBe("momentum");
          expectRows(rows.momentum!, c.momentum, `${c.name} momentum`);
        }
        // a window far into the run equals the same rows of a run from 0
        const tail = b.rows(c.steps - 7, 7);
        expect(Array.from(tail.lr)).toEqual(Array.from(rows.lr.slice((c.steps - 7) * c.groups.length)));
      });
    }
  });
}

describe("range test (fastai lr_find logic)", () => {
  const rt = load("misc.json").range_test;
  it("smooths, stops at divergence and suggests like fastai", () => {
    const b = bindGeneric(rt.spec, [{ lr: 0.1 }, { lr: 0.2 }]);
    expect(b.kind).toBe("metric");
    let r = b.initialState!();
    expect(r.lr).toEqual([1e-7, 1e-7]);
    let fed = 0;
    for (const loss of rt.losses as number[]) {
      r = b.metricStep!(r.state, loss);
      fed++;
      if ((r.state as any).done) break;
    }
    const s = r.state as any;
    expect(s.reason).toBe("diverged");
    expect(fed - 1).toBe(rt.stopped_at);
    s.losses.forEach((v: number, i: number) => expect(close(v, rt.smoothed[i])).toBe(true));
    for (const k of ["valley", "slide", "minimum", "steep"]) {
      expect(close(s.suggestions[k], rt.suggestions[k]), k).toBe(true);
    }
    // after the stop, the lr holds at the last batch's lr
    expect(r.lr[0]).toBeCloseTo(1e-7 * (10 / 1e-7) ** (rt.stopped_at / 100), 15);
  });
});
