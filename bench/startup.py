"""Section "startup": what a training script pays to get its first scheduler.

- private: a fresh process (torch and lrbridge imported) builds OneCycleLR with
  no server anywhere; the construction starts the private server.
- join: a fresh process of a torchrun-like job (LOCAL_WORLD_SIZE=4) builds it
  while another rank already owns the job's server.
- memory: 4 such ranks at once: Node processes serving them, and their RSS.

Each construction is timed inside its own process (perf_counter around the
constructor), so interpreter and import start-up are not counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from common import ROOT, log, spread

PRIVATE_TARGET_MS = 150.0
JOIN_TARGET_MS = 20.0

RANK = """
import json, os, sys, time
import torch
import lrbridge.lr_scheduler as L
from lrbridge import embedded
opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
t = time.perf_counter()
sched = L.OneCycleLR(opt, max_lr=0.5, total_steps=10_000)
ms = (time.perf_counter() - t) * 1e3
opt.step(); sched.step()
m = embedded._machine
print(json.dumps({"ms": ms, "owner": bool(m and m.owner),
                  "server_pid": m.server.process.pid if m and m.owner else None}), flush=True)
if len(sys.argv) > 1:
    sys.stdin.readline()  # hold the server (and its lock) until told to go
"""


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LRBRIDGE_", "TORCHELASTIC_", "LOCAL_WORLD"))}
    env["PYTHONPATH"] = str(ROOT / "python_client")
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def _one(env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", RANK], env=env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _holder(env: dict) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-c", RANK, "hold"], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    return proc, json.loads(proc.stdout.readline())


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _servers_of(job_dir: Path) -> list[int]:
    """Server processes bound in this job's directory (other servers on the machine do not count)."""
    pids = []
    needle = str(job_dir).encode()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve" in cmd and any(needle in c for c in cmd):
                pids.append(int(d.name))
    return sorted(pids)


def run(repeats: int) -> dict:
    private = [_one(_env())["ms"] for _ in range(repeats)]
    log(f"  private server: {spread(private)['median']:.0f} ms")

    job = _env(LOCAL_WORLD_SIZE="4", TORCHELASTIC_RUN_ID=f"bench-{uuid.uuid4().hex[:8]}")
    owner, first = _holder(job)
    try:
        joins = [_one(job) for _ in range(repeats)]
    finally:
        owner.stdin.close()
        owner.wait(30)
    assert first["owner"] and not any(j["owner"] for j in joins)
    join = [j["ms"] for j in joins]
    log(f"  join the job's server: {spread(join)['median']:.0f} ms")

    from lrbridge.embedded import machine_dir

    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    job = _env(LOCAL_WORLD_SIZE="4", TORCHELASTIC_RUN_ID=run_id)
    ranks = [subprocess.Popen([sys.executable, "-c", RANK, "hold"], env=job, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        reports = [json.loads(p.stdout.readline()) for p in ranks]
        servers = _servers_of(machine_dir(run_id))
        rss = [_rss_mb(pid) for pid in servers]
    finally:
        for p in ranks:
            p.stdin.close()
        for p in ranks:
            p.wait(30)
    owners = sum(r["owner"] for r in reports)
    log(f"  4 ranks: {len(servers)} node process(es), {sum(rss):.0f} MB RSS; {owners} owner(s)")
    return {
        "private_ms": spread(private),
        "join_ms": spread(join),
        "ranks": 4,
        "node_processes": len(servers),
        "node_rss_mb": rss,
        "owners": owners,
    }


def targets(s: dict) -> list[dict]:
    p, j = s["private_ms"]["median"], s["join_ms"]["median"]
    return [
        {"target": f"scheduler construction starting a private server <= {PRIVATE_TARGET_MS:.0f} ms (median)",
         "value": f"{p:.0f} ms", "pass": p <= PRIVATE_TARGET_MS},
        {"target": f"scheduler construction joining the job's server <= {JOIN_TARGET_MS:.0f} ms (median)",
         "value": f"{j:.1f} ms", "pass": j <= JOIN_TARGET_MS},
        {"target": "one Node process per machine for 4 torchrun ranks",
         "value": f"{s['node_processes']} process(es), {sum(s['node_rss_mb']):.0f} MB RSS",
         "pass": s["node_processes"] == 1 and s["owners"] == 1},
    ]
