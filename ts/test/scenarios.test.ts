/**
 * The torch-recorded scenarios (proto/vectors/scenarios) that need no client:
 * a schedule built on a fresh optimizer whose lrs are float32 or float64
 * tensors, then stepped. Row k must be torch's lrs (float32 bit for bit:
 * every tensor operation rounded as torch rounds it; float64 1e-12), and
 * CosineAnnealingWarmRestarts' T_cur/T_i rows torch's attributes.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { GroupInit } from "../src/core/api";
import { bind } from "../src/bind";

const DIR = join(__dirname, "..", "..", "proto", "vectors", "scenarios");

interface Scenario {
  name: string;
  specs: unknown[];
  groups: { lr: number; momentum?: number; betas?: [number, number]; dtype?: "float32" | "float64" }[];
  dtype?: "float32" | "float64";
  actions: unknown[][];
  expect: { lr: number[]; attrs?: Record<string, number> }[];
}

const load = (kind: string): Scenario[] => (JSON.parse(readFileSync(join(DIR, `${kind}.json`), "utf8")) as { cases: Scenario[] }).cases;

/** build, then plain steps only: rows 0..n straight from the server. */
const plainSteps = (c: Scenario): boolean =>
  c.actions[0][0] === "build" && c.actions.slice(1).every((a) => a[0] === "step" && a.length === 2);

function groupsOf(c: Scenario): GroupInit[] {
  return c.groups.map((g) => {
    const dtype = g.dtype ?? c.dtype;
    return { lr: g.lr, momentum: g.momentum ?? 0, ...(dtype ? { lr_dtype: dtype } : {}) };
  });
}

describe("tensor lrs, as torch computes on them", () => {
  const cases = load("dtype").filter(plainSteps);
  it("covers every deterministic class in both dtypes, and mixed with a float group", () => expect(cases.length).toBeGreaterThanOrEqual(42));
  for (const c of cases) {
    it(c.name, () => {
      const bound = bind(c.specs[0], groupsOf(c));
      const rows = bound.rows(0, c.expect.length);
      const n = c.groups.length;
      c.expect.forEach((record, k) => {
        record.lr.forEach((want, g) => {
          const got = rows.lr[k * n + g];
          // float32 rounds away the last-bit differences of libm's pow/cos; float64 keeps them (1e-12).
          if ((c.groups[g].dtype ?? c.dtype) === "float32") expect(got, `row ${k} group ${g}`).toBe(want);
          else expect(Math.abs(got - want), `row ${k} group ${g}`).toBeLessThanOrEqual(1e-12 * Math.abs(want));
        });
      });
    });
  }
});

describe("CosineAnnealingWarmRestarts rows carry T_cur and T_i", () => {
  for (const c of load("warm_restarts").filter(plainSteps)) {
    it(c.name, () => {
      const rows = bind(c.specs[0], groupsOf(c)).rows(0, c.expect.length);
      c.expect.forEach((record, k) => {
        expect(rows.attrs!.T_cur[k], `T_cur row ${k}`).toBe(record.attrs!.T_cur);
        expect(rows.attrs!.T_i[k], `T_i row ${k}`).toBe(record.attrs!.T_i);
      });
    });
  }
});
