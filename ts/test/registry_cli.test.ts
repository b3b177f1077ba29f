/**
 * The registry's commands on a store opened in-process and against a real
 * server (--connect): publish, versions, show, alias, diff, runs, and a
 * replay that reproduces what the server served a run.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../src/commands/registry";
import { binToFloat64 } from "../src/protocol";
import { ask, ROOT, serve, Served } from "./registry_helpers";

let dir: string;
let store: string;
let server: Served;

/** Runs a command in this process, capturing what it prints. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const write = (sink: "out" | "err") => (chunk: string | Uint8Array) => {
    if (sink === "out") out += String(chunk);
    else err += String(chunk);
    return true;
  };
  const [stdout, stderr] = [process.stdout.write, process.stderr.write];
  process.stdout.write = write("out") as typeof process.stdout.write;
  process.stderr.write = write("err") as typeof process.stderr.write;
  try {
    const [command, ...rest] = args;
    const code = await run(command, [...rest, "--registry", store]);
    return { code, out, err };
  } finally {
    process.stdout.write = stdout;
    process.stderr.write = stderr;
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lrbridge-cli-"));
  store = join(dir, "registry.sqlite");
  writeFileSync(join(dir, "v1.json"), JSON.stringify({ type: "CosineAnnealingLR", T_max: 100 }));
  writeFileSync(join(dir, "v2.json"), JSON.stringify({ type: "CosineAnnealingLR", T_max: 80 }));
  writeFileSync(join(dir, "bad.json"), JSON.stringify({ type: "CosineAnnealingLR", T_max: "x" }));
  server = await serve(["--registry", store, "--admin", "tcp://127.0.0.1:0"]);
}, 60_000);
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("registry commands", () => {
  it("publish, versions, show", async () => {
    expect(await cli("publish", "team/x", join(dir, "v1.json"), "-m", "first", "--author", "ann")).toMatchObject({ code: 0, out: expect.stringMatching(/^team\/x@1 sha256:[0-9a-f]{64} \(published\)/) });
    expect((await cli("publish", "team/x", join(dir, "v2.json"), "-m", "shorter")).out).toMatch(/^team\/x@2 /);
    expect((await cli("publish", "team/x", join(dir, "v1.json"))).out).toMatch(/^team\/x@1 .*already published/);
    const bad = await cli("publish", "team/x", join(dir, "bad.json"));
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/SPEC_INVALID \(T_max\)/);
    const versions = await cli("versions", "team/x");
    expect(versions.out.split("\n").slice(0, 3)).toEqual([
      "team/x: 2 version(s)",
      expect.stringMatching(/^ {3}1 {2}[0-9a-f]{12} {2}\S+Z {2}ann {2}first$/),
      expect.stringMatching(/^ {3}2 .* shorter$/),
    ]);
    const show = await cli("show", "team/x@2");
    expect(show.out).toMatch(/^team\/x@2 -> team\/x@2\n/);
    expect(show.out).toContain('"T_max": 80');
    expect((await cli("show", "team/x@9")).err).toMatch(/UNKNOWN_REF/);
    expect((await cli("show", "team/x@")).code).toBe(1);
    expect((await cli("show")).code).toBe(2);
  });

  it("alias with --expect, and diff", async () => {
    expect((await cli("alias", "team/x", "prod", "1", "--expect", "none", "-m", "launch")).out).toBe("team/x@prod: (new) -> 1\n");
    const lost = await cli("alias", "team/x", "prod", "2", "--expect", "2");
    expect(lost.code).toBe(1);
    expect(lost.err).toMatch(/ALIAS_CONFLICT.*points at version 1/);
    expect((await cli("versions", "team/x")).out).toContain("aliases: prod -> 1");
    const diff = await cli("diff", "team/x@1", "team/x@2", "--steps", "100");
    expect(diff.out.split("\n").slice(0, 3)).toEqual(["team/x@1 = team/x@1, team/x@2 = team/x@2", "changed T_max: 100 -> 80", "first differing step: 1"]);
    expect(diff.out).toMatch(/max abs difference: 0\.\d+/);
    expect((await cli("diff", "team/x@1", "team/x@1", "--steps", "10")).out).toContain("values: identical over 10 steps");
  });

  it("runs lists a run's first uses and counts the rest", async () => {
    for (let i = 0; i < 12; i++) {
      const opened = await ask(server.endpoint, { type: "open", ref: "team/x@prod", groups: [{ lr: 0.1 + i }], run: { id: "run-reopened" } });
      expect(opened.type).toBe("opened");
    }
    const listed = (await cli("runs", "team/x@prod")).out.split("\n");
    const at = listed.findIndex((line) => line.startsWith("run-reopened"));
    expect(listed.slice(at + 1, at + 12).filter((line) => line.startsWith("  team/x@1 from step 0"))).toHaveLength(10);
    expect(listed[at + 11]).toBe("  and 2 more");
  });

  it("runs and replay reproduce what the server served a run", async () => {
    const runId = "run-replay-1";
    const groups = [{ lr: 0.1, momentum: 0.9 }, { lr: 0.01, momentum: 0.9 }];
    const opened = await ask(server.endpoint, { type: "open", ref: "team/x@prod", groups, run: { id: runId, name: "replayed" } });
    expect(opened.type).toBe("opened");
    const first = await ask(server.endpoint, { type: "window", hash: opened.hash, start: 0, count: 20, run: runId });
    const origin = { step: 20, lr: [0.05, 0.005] };
    const second = await ask(server.endpoint, { type: "rebase", hash: opened.hash, start: 21, count: 19, origin, run: runId });
    const served = [...binToFloat64(first.lr), ...origin.lr, ...binToFloat64(second.lr)];

    const runs = await cli("runs", "team/x@prod");
    expect(runs.out).toMatch(new RegExp(`^${runId} {2}replayed {2}last step 20`));
    expect(runs.out).toContain("team/x@1 from step 0 (as team/x@prod");
    expect((await cli("runs", "team/x@2")).out).toBe("no runs used team/x@2\n");

    const csv = (await cli("replay", runId, "--steps", "40")).out.trim().split("\n");
    expect(csv[0]).toBe("step,lr0,lr1,momentum0,momentum1,version");
    expect(csv).toHaveLength(41);
    const replayed = csv.slice(1).flatMap((line) => line.split(",").slice(1, 3).map(Number));
    expect(replayed).toEqual(served);
    expect(csv.slice(1).map((line) => Number(line.split(",")[0]))).toEqual(Array.from({ length: 40 }, (_, i) => i));

    const exported = JSON.parse((await cli("replay", runId, "--export-spec")).out);
    expect(exported).toEqual({ ref: "team/x@1", spec_hash: opened.spec_hash, spec: opened.canonical });
  });

  it("talks to a server with --connect: admin messages on its admin endpoint only", () => {
    const spawnCli = (...args: string[]) =>
      spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", join(ROOT, "ts/src/cli.ts"), ...args], { cwd: ROOT, encoding: "utf8" });
    const refused = spawnCli("alias", "team/x", "prod", "2", "--connect", server.endpoint);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/FORBIDDEN/);
    const moved = spawnCli("alias", "team/x", "prod", "2", "--expect", "1", "--connect", server.admin!);
    expect(moved.stdout).toBe("team/x@prod: 1 -> 2\n");
  }, 60_000);
});
