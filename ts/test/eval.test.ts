/** `lrbridge eval`: the real CLI process for output and exit codes, plus argument parsing. */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { evaluateSchedule, parseEvalArgs } from "../src/commands/eval";

const ROOT = join(__dirname, "..", "..");

// The Node running the tests (the pinned one under make), not whichever `node` is on PATH.
function cli(args: string[]) {
  return spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", join(ROOT, "ts", "src", "cli.ts"), "eval", ...args], {
    cwd: ROOT,
    encoding: "utf8",
  });
}

describe("lrbridge eval (process)", () => {
  it("prints torch's rows as JSON with full precision", () => {
    // The first OneCycleLR vector, compared value for value.
    const file = JSON.parse(readFileSync(join(ROOT, "proto", "vectors", "torch", "OneCycleLR.json"), "utf8"));
    const c = file.cases.find((x: { expect?: unknown; groups: { betas?: unknown }[] }) => x.expect && !x.groups[0].betas);
    const momentum = c.groups.map((g: { momentum?: number }) => g.momentum ?? 0).join(",");
    const res = cli([
      "--spec",
      JSON.stringify(c.spec),
      "--lr",
      c.groups.map((g: { lr: number }) => g.lr).join(","),
      "--momentum",
      momentum,
      "--steps",
      String(c.steps),
    ]);
    expect(res.status, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out.lr).toEqual(c.expect.lr);
    expect(out.momentum).toEqual(c.expect.momentum);
  });
  it("exits 2 with the validation message on an invalid spec", () => {
    const res = cli(["--spec", '{"type":"OneCycleLR","max_lr":0.1,"total_steps":100,"pct_start":1.5}', "--lr", "0.1", "--steps", "3"]);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain("pct_start: must be a number in [0, 1], got 1.5");
    expect(res.stdout).toBe("");
  });
});

describe("eval arguments", () => {
  it("one group per --lr; --momentum broadcasts; --betas for Adam", () => {
    const a = parseEvalArgs(["--spec", '{"type":"StepLR","step_size":2}', "--lr", "0.1,0.05", "--momentum=0.9", "--steps", "4"]);
    expect("help" in a).toBe(false);
    if ("help" in a) return;
    expect(a.groups).toEqual([
      { lr: 0.1, momentum: 0.9 },
      { lr: 0.05, momentum: 0.9 },
    ]);
    const out = evaluateSchedule(a);
    expect(out.lr).toEqual([
      [0.1, 0.05],
      [0.1, 0.05],
      [0.010000000000000002, 0.005000000000000001],
      [0.010000000000000002, 0.005000000000000001],
      [0.0010000000000000002, 0.0005000000000000001],
    ]);
    expect(out.momentum).toBeNull();
    const adam = parseEvalArgs(["--spec", '{"type":"CyclicLR","base_lr":0.01,"max_lr":0.1,"step_size_up":2}', "--lr", "0.1", "--betas", "0.9,0.999", "--steps", "2"]);
    if ("help" in adam) throw new Error("help");
    // beta1 = max_momentum - (max - base) * scale: 0.9, ~0.85, 0.8 (float rounding as torch)
    const m = evaluateSchedule(adam).momentum!.map((r) => r[0]);
    expect(m[0]).toBe(0.9);
    expect(m[1]).toBeCloseTo(0.85, 15);
    expect(m[2]).toBeCloseTo(0.8, 15);
  });
  it("--metrics drives ReduceLROnPlateau, --epochs the step(epoch) path, and --steps defaults to their length", () => {
    const p = parseEvalArgs(["--spec", '{"type":"ReduceLROnPlateau","patience":0}', "--lr", "1", "--metrics", "1,2,3"]);
    if ("help" in p) throw new Error("help");
    expect(evaluateSchedule(p).lr).toEqual([[1], [1], [0.1], [0.010000000000000002]]);
    const e = parseEvalArgs(["--spec", '{"type":"StepLR","step_size":2}', "--lr", "1", "--epochs", "4,1"]);
    if ("help" in e) throw new Error("help");
    expect(evaluateSchedule(e).lr).toEqual([[1], [0.010000000000000002], [1]]);
  });
  it("usage errors throw", () => {
    expect(() => parseEvalArgs(["--lr", "0.1", "--steps", "2"])).toThrow(/--spec/);
    expect(() => parseEvalArgs(["--spec", "{}", "--lr", "x", "--steps", "2"])).toThrow(/not a number/);
    expect(() => parseEvalArgs(["--spec", "{}", "--lr", "0.1", "--steps", "5", "--metrics", "1,2"])).toThrow(/needs 5 values/);
    expect(() => parseEvalArgs(["--spec", "{}", "--lr", "0.1", "--bogus", "1"])).toThrow(/unknown option/);
  });
});
