"""Section `registry`: runs bench/registry.ts (real servers with a store) and judges its targets.

SQLite always; Postgres too, on a throwaway cluster from tools/postgres.py,
when Debian's postgresql is installed (`make test` installs it).
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import tempfile

import common
from common import ROOT, log

OPEN_TARGET_MS = 2.0
PUBLISH_TARGET_PER_S = 500
# "No slowdown": each large-store median within 1.5x the small store's, plus
# 0.25 ms of allowance for a shared machine's noise at sub-millisecond medians.
SLOWDOWN_RATIO = 1.5
SLOWDOWN_SLACK_MS = 0.25


def run(quick: bool) -> dict:
    env = dict(os.environ, TS_NODE_PROJECT=str(ROOT / "bench" / "tsconfig.json"), TS_NODE_TRANSPILE_ONLY="true")
    cmd = [common.node(), "-r", "ts-node/register", str(ROOT / "bench" / "registry.ts")] + (["--quick"] if quick else [])
    pg_dir = None
    if glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        parent = tempfile.mkdtemp(prefix="lrbridge-bench-pg-")
        os.chmod(parent, 0o755)
        pg_dir = os.path.join(parent, "cluster")
        url = subprocess.run(["python3", str(ROOT / "tools" / "postgres.py"), "start", pg_dir], check=True, capture_output=True, text=True).stdout.strip()
        cmd += ["--postgres", url]
    else:
        log("[registry] no postgresql installed: SQLite only")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    finally:
        if pg_dir:
            subprocess.run(["python3", str(ROOT / "tools" / "postgres.py"), "rm", pg_dir], check=False)
            os.rmdir(os.path.dirname(pg_dir))
    for line in proc.stderr.splitlines():
        log(line)
    if proc.returncode != 0:
        raise RuntimeError(f"registry.ts failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def targets(result: dict) -> list[dict]:
    out = []
    for backend in ("sqlite", "postgres"):
        r = result.get(backend)
        if not r:
            continue
        opened = r["open"]["open_by_alias"]["median_ms"]
        out.append({
            "target": f"resolve+open by alias ≤ {OPEN_TARGET_MS} ms median, warm server ({backend})",
            "value": f"{opened} ms (by version {r['open']['open_by_version']['median_ms']} ms, with a run {r['open']['open_by_alias_with_run']['median_ms']} ms, by spec {r['open']['open_by_spec']['median_ms']} ms)",
            "pass": opened <= OPEN_TARGET_MS,
        })
        res = r["resolve"]
        worst = max(("latest", "version", "alias"), key=lambda k: res["large"][k]["median_ms"] - res["small"][k]["median_ms"])
        small, large = res["small"][worst]["median_ms"], res["large"][worst]["median_ms"]
        out.append({
            "target": f"resolve with {res['versions_large']} versions no slower than with {res['versions_small']} ({backend})",
            "value": "; ".join(f"{k} {res['small'][k]['median_ms']} → {res['large'][k]['median_ms']} ms" for k in ("latest", "version", "alias")),
            "pass": large <= small * SLOWDOWN_RATIO + SLOWDOWN_SLACK_MS,
        })
        if backend == "sqlite":
            out.append({
                "target": f"publish ≥ {PUBLISH_TARGET_PER_S} versions/s through the admin endpoint (sqlite)",
                "value": f"{r['publish']['versions_per_s']} versions/s",
                "pass": r["publish"]["versions_per_s"] >= PUBLISH_TARGET_PER_S,
            })
        else:
            out.append({"target": "publish throughput (postgres, reported)", "value": f"{r['publish']['versions_per_s']} versions/s", "pass": True})
    return out
