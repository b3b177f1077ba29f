"""Schedule modules section: runs bench/modules.ts (window compute, module vs JSON
spec, compile + probe in one process) and times `lrbridge compile` and
`lrbridge publish FILE.ts` as an author runs them (a fresh node process: start,
TypeScript, type check, sandbox, probe; publish also writes the version to a
fresh SQLite store)."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import tempfile
import time

import common
from common import ROOT, log

TARGET_VALUES_PER_S = 2e6
TARGET_COMPILE_S = 2.0
TARGET_PUBLISH_S = 2.0
MODULE = ROOT / "bench" / "modules" / "warmup_rex.ts"
PARAMS = json.dumps({"total": 100_000, "warm": 1000})


def run(quick: bool) -> dict:
    env = dict(os.environ, TS_NODE_PROJECT=str(ROOT / "bench" / "tsconfig.json"), TS_NODE_TRANSPILE_ONLY="true")
    argv = [common.node(), "-r", "ts-node/register", str(ROOT / "bench" / "modules.ts")] + (["--quick"] if quick else [])
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
    for line in proc.stderr.splitlines():
        log(line)
    if proc.returncode != 0:
        raise RuntimeError(f"modules.ts failed ({proc.returncode}): {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    cli, cpu = [], []
    for _ in range(2 if quick else 3):
        t0 = time.perf_counter()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run([common.node(), str(ROOT / "dist" / "cli.js"), "compile", str(MODULE), "--params", PARAMS],
                              capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise RuntimeError(f"lrbridge compile failed: {done.stderr[-2000:]}")
        cli.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    # wall time depends on what else the machine runs; CPU time (user + sys) is the process's own cost
    out["cli_compile_s"] = {"median": statistics.median(cli), "all": cli, "cpu_median": statistics.median(cpu), "load_avg": os.getloadavg()[0]}
    out["cli_publish_s"] = _publish_times(2 if quick else 3)
    return out


def _publish_times(repeats: int) -> dict:
    """`lrbridge publish NAME FILE.ts --params P --registry STORE`, each into a fresh store (a new version)."""
    wall, cpu = [], []
    with tempfile.TemporaryDirectory(prefix="lrbpub-") as work:
        for i in range(repeats):
            store = os.path.join(work, f"registry{i}.sqlite")
            argv = [common.node(), str(ROOT / "dist" / "cli.js"), "publish", "bench/warmup-rex", str(MODULE),
                    "--params", PARAMS, "-m", "bench", "--registry", store]
            t0 = time.perf_counter()
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0 or "(published)" not in done.stdout:
                raise RuntimeError(f"lrbridge publish failed: {done.stdout[-500:]} {done.stderr[-2000:]}")
            wall.append(time.perf_counter() - t0)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    return {"median": statistics.median(wall), "all": wall, "cpu_median": statistics.median(cpu), "load_avg": os.getloadavg()[0]}


def targets(result: dict) -> list[dict]:
    rates = result["values_per_s"]["warmup_rex"]
    composite = result["values_per_s"]["composite"]
    c = result["cli_compile_s"]
    compile_s = c["cpu_median"]
    p = result["cli_publish_s"]
    return [
        {
            "target": "library-composed module window compute ≥ 2 M values/s (vs the same JSON spec)",
            "value": f"{rates['module'] / 1e6:.1f} M/s vs JSON {rates['json_spec'] / 1e6:.1f} M/s "
                     f"(composite: {composite['module'] / 1e6:.1f} vs {composite['json_spec'] / 1e6:.1f}); "
                     f"custom arithmetic in the sandbox {result['values_per_s']['custom_module'] / 1e6:.2f} M/s",
            "pass": rates["module"] >= TARGET_VALUES_PER_S,
        },
        {
            "target": "compile + probe ≤ 2 s (lrbridge compile in a fresh process, CPU time)",
            "value": f"{compile_s:.2f} s CPU, {c['median']:.2f} s wall at load average {c['load_avg']:.1f} "
                     f"(in a warm process: {result['compile_probe_ms']['warm'] / 1000:.2f} s wall)",
            "pass": compile_s <= TARGET_COMPILE_S,
        },
        {
            "target": "publish of a .ts module, type check and probe included, ≤ 2 s (lrbridge publish in a fresh process, CPU time)",
            "value": f"{p['cpu_median']:.2f} s CPU, {p['median']:.2f} s wall at load average {p['load_avg']:.1f}",
            "pass": p["cpu_median"] <= TARGET_PUBLISH_S,
        },
    ]
