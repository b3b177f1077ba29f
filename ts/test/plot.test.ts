/** `lrbridge plot`: chart geometry, tick labels, and the real CLI process writing SVG and PNG. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { evaluateSchedule } from "../src/commands/eval";
import { parsePlotArgs, plotPanels } from "../src/commands/plot";
import { chartSvg, decimate, formatTick, linearTicks, logTicks } from "../src/plot/chart";
import { ask, serve } from "./registry_helpers";

const ROOT = join(__dirname, "..", "..");
const TS_NODE = join(ROOT, "node_modules", ".bin", "ts-node");
const cli = (args: string[]) =>
  spawnSync(TS_NODE, ["--transpile-only", join(ROOT, "ts", "src", "cli.ts"), "plot", ...args], { cwd: ROOT, encoding: "utf8" });

/** The (x, y) pixels of every polyline, by series label. */
function polylines(svg: string): Map<string, [number, number][]> {
  const out = new Map<string, [number, number][]>();
  for (const m of svg.matchAll(/<polyline data-series="([^"]*)" points="([^"]*)"/g)) {
    out.set(m[1], m[2].split(" ").map((p) => p.split(",").map(Number) as [number, number]));
  }
  return out;
}

describe("tick labels", () => {
  it("keep small lrs readable instead of rounding them to 0", () => {
    expect(formatTick(1e-5)).toBe("1e-5");
    expect(formatTick(2.5e-4)).toBe("2.5e-4");
    expect(formatTick(0.05)).toBe("0.05");
    expect(formatTick(0.1 + 0.2)).toBe("0.3");
    expect(formatTick(1000)).toBe("1000");
    expect(formatTick(0)).toBe("0");
  });
  it("are round numbers, and decades on a log axis", () => {
    expect(linearTicks(0, 0.1)).toEqual([0, 0.02, 0.04, 0.06, 0.08, 0.1].map((v) => expect.closeTo(v, 12)));
    expect(linearTicks(0, 1000, 4)).toEqual([0, 500, 1000]);
    expect(logTicks(4.3e-6, 0.1)).toEqual([1e-5, 1e-4, 1e-3, 1e-2, 1e-1]);
  });
});

describe("decimation", () => {
  it("keeps a one-step spike and the order of steps", () => {
    const v = new Float64Array(100_000).fill(1);
    v[51_234] = 7;
    v[77_777] = -3;
    const pts = decimate(v, 400);
    expect(pts.length).toBeLessThanOrEqual(1600);
    expect(pts.some(([k, y]) => k === 51_234 && y === 7)).toBe(true);
    expect(pts.some(([k, y]) => k === 77_777 && y === -3)).toBe(true);
    expect(pts.every(([k], i) => i === 0 || k > pts[i - 1][0])).toBe(true);
  });
});

describe("chart data", () => {
  it("draws the schedule's own values: OneCycleLR's lr and momentum panels", () => {
    const a = parsePlotArgs([
      '{"type":"OneCycleLR","max_lr":0.1,"total_steps":200}',
      "--steps",
      "200",
      "--momentum",
      "0.9",
      "-o",
      "x.svg",
    ]);
    if ("help" in a) throw new Error("help");
    const panels = plotPanels(a);
    expect(panels.map((p) => p.title)).toEqual(["OneCycleLR", "OneCycleLR: momentum"]);
    const want = evaluateSchedule({ ...a.base, spec: a.specs[0].spec });
    expect(Array.from(panels[0].series[0].values)).toEqual(want.lr.map((r) => r[0]));
    expect(Array.from(panels[1].series[0].values)).toEqual(want.momentum!.map((r) => r[0]));

    // Pixels map back to the values: y is linear in the value, x in the step.
    const line = polylines(chartSvg([panels[0]]))!.get("lr")!;
    expect(line.length).toBe(201);
    const values = want.lr.map((r) => r[0]);
    const [k0, kMax] = [0, values.indexOf(Math.max(...values))];
    const slope = (line[kMax][1] - line[k0][1]) / (values[kMax] - values[k0]);
    values.forEach((v, k) => {
      expect(line[k][1]).toBeCloseTo(line[k0][1] + slope * (v - values[k0]), 1);
      expect(line[k][0]).toBeCloseTo(line[0][0] + (k / 200) * (line[200][0] - line[0][0]), 1);
    });
  });
  it("escapes labels: a spec named <script> is text", () => {
    const svg = chartSvg([{ title: "<script>alert(1)</script>", yLabel: "lr", series: [{ label: "a&b", values: [1, 2] }] }]);
    expect(svg).not.toContain("<script>");
    expect(svg).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(svg).toContain('data-series="a&amp;b"');
  });
});

describe("lrbridge plot (process)", () => {
  const dir = mkdtempSync(join(tmpdir(), "lrbridge-plot-"));
  it("writes an SVG with one panel per spec, and a PNG", () => {
    const svgPath = join(dir, "two.svg");
    const res = cli(['{"type":"StepLR","step_size":30}', "--label", "step", "--spec", '{"type":"rex","total_steps":100}', "--steps", "100", "-o", svgPath]);
    expect(res.status, res.stderr).toBe(0);
    const svg = readFileSync(svgPath, "utf8");
    expect([...svg.matchAll(/class="panel" data-title="([^"]*)"/g)].map((m) => m[1])).toEqual(["step", "rex"]);
    const pngPath = join(dir, "log.png");
    const png = cli(['{"type":"ExponentialLR","gamma":0.9}', "--steps", "50", "--log", "-o", pngPath]);
    expect(png.status, png.stderr).toBe(0);
    expect(readFileSync(pngPath).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  });
  it("exits 2 naming the field on an invalid spec, and on a bad output name", () => {
    const bad = cli(['{"type":"OneCycleLR","max_lr":0.1,"total_steps":100,"pct_start":1.5}', "--steps", "10", "-o", join(dir, "bad.svg")]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("pct_start");
    const ext = cli(['{"type":"StepLR","step_size":3}', "--steps", "10", "-o", join(dir, "x.pdf")]);
    expect(ext.status).toBe(2);
    expect(ext.stderr).toContain("-o must end in .svg or .png");
  });
});

describe("lrbridge plot REF --connect", () => {
  const dir = mkdtempSync(join(tmpdir(), "lrbridge-plotref-"));
  it("draws the canonical spec a server resolves the ref to, and names an unknown ref", async () => {
    const served = await serve(["--registry", join(dir, "registry.sqlite"), "--dev-admin"]);
    try {
      const spec = { type: "StepLR", step_size: 10, gamma: 0.5 };
      expect(await ask(served.endpoint, { type: "publish", name: "team/steps", spec: { type: "StepLR", step_size: 30 } })).toMatchObject({ version: 1 });
      expect(await ask(served.endpoint, { type: "publish", name: "team/steps", spec })).toMatchObject({ version: 2 });
      expect(await ask(served.endpoint, { type: "alias", name: "team/steps", alias: "prod", version: 2 })).toMatchObject({ type: "aliased", to: 2 });
      const byRef = join(dir, "ref.svg");
      const res = cli(["team/steps@prod", "--connect", served.endpoint, "--steps", "40", "-o", byRef]);
      expect(res.status, res.stderr).toBe(0);
      // The same picture as the spec itself, under the resolved name and version.
      const bySpec = join(dir, "spec.svg");
      expect(cli([JSON.stringify(spec), "--label", "team/steps@2", "--steps", "40", "-o", bySpec]).status).toBe(0);
      const svg = readFileSync(byRef, "utf8");
      expect([...svg.matchAll(/class="panel" data-title="([^"]*)"/g)].map((m) => m[1])).toEqual(["team/steps@2"]);
      expect(svg).toBe(readFileSync(bySpec, "utf8"));

      const unknown = cli(["team/steps@9", "--connect", served.endpoint, "--steps", "10", "-o", join(dir, "x.svg")]);
      expect(unknown.status).toBe(2);
      expect(unknown.stderr).toContain("team/steps@9: UNKNOWN_REF");
    } finally {
      await served.stop();
    }
  }, 90_000);
});
