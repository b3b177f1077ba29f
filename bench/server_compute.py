"""Section 3 driver: runs bench/server_compute.ts in one node process, feeds it the cases."""

from __future__ import annotations

import json
import os
import subprocess

import common
from common import ROOT, log
from specs import compute_cases

SIZES = [64, 256, 1024, 4096, 16384, 65536]
# The target is judged where the server works in practice: the client's windows
# are 1024 rows and up; smaller ones measure per-call overhead, reported too.
TARGET_MIN_SIZE = 1024
TARGET_VALUES_PER_S = 20e6


def run(min_time_s: float, batches: int) -> dict:
    payload = {"cases": compute_cases(), "sizes": SIZES, "minTimeS": min_time_s, "batches": batches}
    env = dict(os.environ, TS_NODE_PROJECT=str(ROOT / "bench" / "tsconfig.json"), TS_NODE_TRANSPILE_ONLY="true")
    proc = subprocess.run(
        [common.node(), "-r", "ts-node/register", str(ROOT / "bench" / "server_compute.ts")],
        input=json.dumps(payload), capture_output=True, text=True, cwd=ROOT, env=env,
    )
    for line in proc.stderr.splitlines():
        log(line)
    if proc.returncode != 0:
        raise RuntimeError(f"server_compute.ts failed ({proc.returncode}): {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    closed = {c["name"] for c in payload["cases"] if c["closed_form"]}
    for r in out["results"]:
        r["closed_form"] = r["name"] in closed
    return {"node": out["node"], "sizes": SIZES, "results": out["results"]}


def targets(result: dict) -> list[dict]:
    judged = [r for r in result["results"] if r["closed_form"] and r["size"] >= TARGET_MIN_SIZE]
    if not judged:
        return [{"target": "closed-form compute ≥ 20 M values/s", "value": "not measured", "pass": False}]
    worst = min(judged, key=lambda r: r["values_per_s"]["median"])
    return [{
        "target": f"closed-form compute ≥ 20 M values/s (windows ≥ {TARGET_MIN_SIZE}, slowest)",
        "value": f"{worst['values_per_s']['median'] / 1e6:.1f} M/s ({worst['name']}, window {worst['size']})",
        "pass": worst["values_per_s"]["median"] >= TARGET_VALUES_PER_S,
    }]
