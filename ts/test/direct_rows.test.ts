/**
 * OneCycleLR, CyclicLR and LambdaLR alone compute rows straight from the step
 * count (DirectRows) instead of replaying torch's steps. Those rows must be
 * the replay's bit for bit, and fail where the replay fails, with the same
 * message. The replay is forced with a rebase past the window (it changes no
 * row of the window, but rebased rows always come from the simulation).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Bound, GroupInit, Rows } from "../src/core/api";
import { bind } from "../src/bind";

const DIR = join(__dirname, "..", "..", "proto", "vectors", "torch");

interface VectorCase {
  name: string;
  spec: Record<string, unknown>;
  groups: { lr: number; momentum?: number; betas?: [number, number] }[];
  steps: number;
  epochs?: number[];
}

/** The conformance generator's optimizer: Adam when a group has betas, else SGD. */
function groupInits(groups: VectorCase["groups"]): GroupInit[] {
  const adam = groups.some((g) => g.betas);
  return groups.map((g) => (adam ? { lr: g.lr, betas: g.betas } : { lr: g.lr, momentum: g.momentum ?? 0 }));
}

type Outcome = { rows: Rows } | { error: string };

/** A window that stops where torch raises is that failure. */
const stopText = (r: Rows): string => `${r.stop!.py.type}: ${r.stop!.py.message} at row ${r.stop!.row}`;

function attempt(f: () => Rows): Outcome {
  try {
    const rows = f();
    return rows.stop ? { error: stopText(rows) } : { rows };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** Rows 0..count-1 replayed step by step by the torch simulation. */
function replayed(bound: Bound, groups: GroupInit[], count: number): Outcome {
  const pastTheWindow = { step: count + 1, lr: groups.map((g) => g.lr) };
  return attempt(() => bound.rows(0, count, pastTheWindow));
}

/** Same bits, NaN and -0 included. */
function expectSameBits(actual: Float64Array | null, expected: Float64Array | null, what: string): void {
  expect(actual === null, what).toBe(expected === null);
  if (actual === null || expected === null) return;
  expect(Buffer.from(actual.buffer).equals(Buffer.from(expected.buffer)), what).toBe(true);
}

function expectSameOutcome(direct: Outcome, replay: Outcome, what: string): void {
  if ("error" in replay) {
    expect(direct, what).toEqual(replay);
    return;
  }
  expect("rows" in direct ? null : direct.error, what).toBeNull();
  const rows = (direct as { rows: Rows }).rows;
  expectSameBits(rows.lr, replay.rows.lr, `${what} lr`);
  expectSameBits(rows.momentum, replay.rows.momentum, `${what} momentum`);
}

/** Windows read backwards (no window continues the last one), joined. */
function backwards(bound: Bound, count: number, size: number): Outcome {
  const n = bound.groups;
  return attempt(() => {
    const lr = new Float64Array(count * n);
    const momentum = bound.momentumKey ? new Float64Array(count * n) : null;
    for (let start = Math.floor((count - 1) / size) * size; start >= 0; start -= size) {
      const w = bound.rows(start, Math.min(size, count - start));
      if (w.stop) throw new Error(stopText(w));
      lr.set(w.lr, start * n);
      if (momentum && w.momentum) momentum.set(w.momentum, start * n);
    }
    return { lr, momentum };
  });
}

/** How many rows from 0 the replay gives before a step fails (binary search). */
function rowsBeforeFailure(spec: unknown, groups: GroupInit[], count: number): number {
  let ok = 0;
  let bad = count;
  while (bad - ok > 1) {
    const mid = (ok + bad) >> 1;
    if ("rows" in replayed(bind(spec, groups), groups, mid)) ok = mid;
    else bad = mid;
  }
  return ok;
}

/** Returns how many rows were compared value by value. */
function checkAgainstReplay(spec: unknown, groups: GroupInit[], count: number, what: string): number {
  const replay = replayed(bind(spec, groups), groups, count);
  expectSameOutcome(attempt(() => bind(spec, groups).rows(0, count)), replay, `${what} one window`);
  // A failing window says nothing about its values: compare the rows before the failure too.
  if ("error" in replay) return checkAgainstReplay(spec, groups, rowsBeforeFailure(spec, groups, count), what);
  expectSameOutcome(backwards(bind(spec, groups), count, 7), replay, `${what} windows backwards`);
  return count;
}

/** Cases torch accepts at construction (the others never reach rows). */
function vectorCases(family: string): VectorCase[] {
  const parsed = JSON.parse(readFileSync(join(DIR, `${family}.json`), "utf8")) as { cases: (VectorCase & { error?: unknown })[] };
  return parsed.cases.filter((c) => c.error === undefined && c.epochs === undefined);
}

const SGD = (lrs: number[]): GroupInit[] => lrs.map((lr) => ({ lr, momentum: 0.9 }));
const ADAM = (lrs: number[]): GroupInit[] => lrs.map((lr) => ({ lr, betas: [0.9, 0.999] }));

describe("direct rows are the replay's rows, bit for bit", () => {
  for (const family of ["OneCycleLR", "CyclicLR", "LambdaLR"]) {
    it(`every accepted ${family} conformance config (one window, and windows read backwards)`, () => {
      const cases = vectorCases(family);
      expect(cases.length).toBeGreaterThan(10);
      let compared = 0;
      for (const c of cases) {
        compared += checkAgainstReplay(c.spec, groupInits(c.groups), c.steps + 3, `${family}:${c.name}`);
      }
      expect(compared).toBeGreaterThan(cases.length * 10);
    });
  }

  it("OneCycleLR across phase layouts, strategies, optimizers and group counts", () => {
    let checked = 0;
    for (const threePhase of [false, true]) {
      for (const anneal of ["cos", "linear"]) {
        for (const pct of [0.05, 0.3, 0.5]) {
          for (const groups of [SGD([0.1]), ADAM([0.1, 0.01, 0.003]), [{ lr: 0.1 }]]) {
            const cycleMomentum = groups[0].momentum !== undefined || groups[0].betas !== undefined;
            const spec = {
              type: "OneCycleLR",
              max_lr: groups.map((_, i) => 0.1 / (i + 1)),
              total_steps: 997,
              pct_start: pct,
              anneal_strategy: anneal,
              three_phase: threePhase,
              div_factor: 7,
              final_div_factor: 1e3,
              cycle_momentum: cycleMomentum,
            };
            // 998 rows, then the refusal
            expect(checkAgainstReplay(spec, groups, 1000, JSON.stringify(spec))).toBe(998);
            checked++;
          }
        }
      }
    }
    expect(checked).toBe(36);
  });

  it("CyclicLR across modes, custom scale functions, uneven cycles and momentum", () => {
    const variants: Record<string, unknown>[] = [
      { mode: "triangular" },
      { mode: "triangular2", step_size_down: 13 },
      { mode: "exp_range", gamma: 0.999 },
      { scale_fn: "1 / (1 + x)", scale_mode: "cycle" },
      { scale_fn: "0.5 * (1 + sin(x * pi / 2))", scale_mode: "iterations", step_size_down: 3 },
      { mode: "triangular", cycle_momentum: false },
    ];
    for (const v of variants) {
      for (const groups of [SGD([0.1]), ADAM([0.1, 0.05]), SGD([0.1, 0.2, 0.3, 0.4])]) {
        const spec = { type: "CyclicLR", base_lr: 0.001, max_lr: 0.1, step_size_up: 17, ...v };
        checkAgainstReplay(spec, groups, 600, JSON.stringify(spec));
      }
    }
  });

  it("LambdaLR with one expression for all groups and one per group", () => {
    const one = ["0.97 ** epoch", "min(1, (epoch + 1) / 10)", "1 / (1 + epoch // 7) if epoch % 3 else 0.5"];
    for (const src of one) checkAgainstReplay({ type: "LambdaLR", lr_lambda: src }, SGD([0.1, 0.02, 0.3]), 300, src);
    const perGroup = { type: "LambdaLR", lr_lambda: ["0.9 ** epoch", "0.9 ** epoch", "cos(epoch / 50)"] };
    checkAgainstReplay(perGroup, SGD([0.1, 0.2, 0.3]), 300, "per group");
  });
});

describe("direct rows fail where torch's steps fail", () => {
  it("OneCycleLR refuses past total_steps, also when the window starts past it", () => {
    const b = bind({ type: "OneCycleLR", max_lr: 0.1, total_steps: 50 }, SGD([0.1]));
    expect(b.rows(0, 51).lr.length).toBe(51);
    expect(stopText(b.rows(45, 10))).toMatch(/^ValueError: Tried to step 51 times.*at row 51$/);
    expect(b.rows(45, 10).lr.length).toBe(6);
    expect(stopText(b.rows(80, 10))).toMatch(/at row 51$/);
  });

  it("a lr_lambda that raises at epoch 5 fails every window reaching past it, as a replay would", () => {
    const spec = { type: "LambdaLR", lr_lambda: "1 / (epoch - 5)" };
    const b = bind(spec, SGD([0.1]));
    expect(b.rows(0, 5).lr[4]).toBe(0.1 * (1 / -1));
    const replay = replayed(bind(spec, SGD([0.1])), SGD([0.1]), 20);
    expect("error" in replay && replay.error).toMatch(/^ZeroDivisionError: division by zero at row 5$/);
    expect(attempt(() => bind(spec, SGD([0.1])).rows(10, 5))).toEqual(replay);
    expect(attempt(() => b.rows(10, 5))).toEqual(replay);
  });

  it("CyclicLR exp_range overflows at the same step as the replay", () => {
    const spec = { type: "CyclicLR", base_lr: 0.001, max_lr: 0.1, step_size_up: 5, mode: "exp_range", gamma: 2 };
    const replay = replayed(bind(spec, SGD([0.1])), SGD([0.1]), 2000);
    expect("error" in replay && replay.error).toMatch(/^OverflowError: .* at row 1024$/);
    expect(attempt(() => bind(spec, SGD([0.1])).rows(1500, 10))).toEqual(replay);
  });
});
