/**
 * Real torch 2.13 as a test oracle: runs a loop body over JSON cases in the
 * project's venv, with each case's optimizer and scheduler built by the
 * vector generator (proto/vectors/generate.py), and returns what it prints.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(__dirname, "..", "..");
const PY = join(ROOT, ".venv", "bin", "python");

/** Whether the venv with torch exists (`make setup` makes it). */
export const hasTorch = existsSync(PY);

/**
 * `body` runs once per case with `c` (the case), `opt` and `sched` bound, and
 * appends its result to `out`; it is indented under the loop by 4 spaces.
 */
export function runTorch<T>(cases: unknown[], body: string): T[] {
  const script = [
    "import json, sys, warnings",
    'warnings.simplefilter("ignore")',
    'sys.path.insert(0, "proto/vectors")',
    "from generate import build_optimizer, build_scheduler",
    "out = []",
    "for c in json.loads(sys.stdin.read()):",
    '    opt = build_optimizer(c["groups"])',
    '    sched = build_scheduler(c["spec"], opt)',
    ...body
      .trim()
      .split("\n")
      .map((line) => `    ${line}`),
    "print(json.dumps(out))",
  ].join("\n");
  const res = spawnSync(PY, ["-c", script], { cwd: ROOT, input: JSON.stringify(cases), encoding: "utf8" });
  if (res.status !== 0) throw new Error(`torch oracle failed (${res.status}): ${res.stderr}`);
  return JSON.parse(res.stdout) as T[];
}
