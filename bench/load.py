"""Section 4: the server under load from many client processes, and a soak.

Client processes (bench/load_worker.py) are spawned once and reused for every
level: the first N of them run at level N, the rest wait on stdin (no CPU).
Each fetches 1024-row windows of a OneCycleLR as fast as it can; every
`check_every`-th reply is compared with torch's own values (lr and momentum).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from common import ROOT, Server, free_tcp_endpoint, ipc_endpoint, log, percentiles_ns, slope_per_minute
from specs import load_spec

WINDOW = 1024
TOTAL_STEPS = 65536
GROUPS = [{"lr": 0.1, "momentum": 0.9}]


def worker_groups(worker: int) -> list[dict]:
    """Each client its own handle, as separate training runs have: OneCycleLR ignores the
    optimizer's lr (it starts from max_lr/div_factor), so the values stay torch's."""
    return [{"lr": 0.1 + 1e-6 * worker, "momentum": 0.9}]
CHECK_EVERY = 8
TARGET_VALUES_PER_S = 10e6


def torch_rows(total_steps: int) -> dict:
    """lr and momentum after 0..total_steps-1 steps of torch's OneCycleLR (1 group)."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    spec = load_spec(total_steps)
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, **kwargs)
        lr, mom = [], []
        for _ in range(total_steps):
            lr.append(opt.param_groups[0]["lr"])
            mom.append(opt.param_groups[0]["momentum"])
            sched.step()
    return {"lr": np.array(lr), "momentum": np.array(mom)}


class Pool:
    def __init__(self, size: int, expected_path: str):
        self.procs = [
            subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "load_worker.py"), expected_path],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
            )
            for _ in range(size)
        ]
        for p in self.procs:
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"load worker failed to start: {line!r}")

    def start(self, n: int, cmd: dict) -> None:
        for i, p in enumerate(self.procs[:n]):
            p.stdin.write(json.dumps({**cmd, "worker": i, "groups": worker_groups(i)}) + "\n")

    def results(self, n: int) -> list[dict]:
        return [json.loads(p.stdout.readline()) for p in self.procs[:n]]

    def run(self, n: int, cmd: dict) -> list[dict]:
        self.start(n, cmd)
        return self.results(n)

    def close(self) -> None:
        for p in self.procs:
            try:
                p.stdin.write('{"cmd": "quit"}\n')
                p.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def base_cmd(endpoint: str, duration: float, start_delay: float) -> dict:
    return {
        "cmd": "run", "endpoint": endpoint, "spec": load_spec(TOTAL_STEPS), "groups": GROUPS,
        "window": WINDOW, "t_start": time.time() + start_delay, "duration": duration,
        "rate": None, "check_every": CHECK_EVERY, "open_every": 0,
    }


def summarize(results: list[dict], level: int, transport: str) -> dict:
    fatal = [r["fatal"] for r in results if "fatal" in r]
    ok = [r for r in results if "fatal" not in r]
    windows_per_s = sum(r["windows"] / r["elapsed"] for r in ok)
    rtts = [x for r in ok for x in r["rtt_ns"]]
    lat = percentiles_ns(rtts) if rtts else {}
    return {
        "transport": transport,
        "clients": level,
        "windows_per_s": windows_per_s,
        "values_per_s": windows_per_s * WINDOW * len(GROUPS),
        "windows": sum(r["windows"] for r in ok),
        "errors": sum(r["errors"] for r in ok) + len(fatal),
        "dropped": sum(r["dropped"] for r in ok),
        "checked": sum(r["checked"] for r in ok),
        "rtt_p50_us": lat.get("p50_us"),
        "rtt_p99_us": lat.get("p99_us"),
        "rtt_max_us": lat.get("max_us"),
        "first_errors": (fatal + [e for r in ok for e in r["first_errors"]])[:5],
    }


WARMUP_S = 30.0
SOAK_CACHE = 512  # small, so the LRU is full within seconds and evicts for the rest of the soak


def start_attackers(endpoint: str, seconds: float, n: int, max_frames: int | None = None) -> list:
    """bench/attacker.ts processes: the attack catalogue and fuzzed frames against `endpoint`."""
    argv = ["node", "-r", "ts-node/register/transpile-only", str(ROOT / "bench" / "attacker.ts"), endpoint, str(seconds)]
    return [subprocess.Popen([*argv, str(1000 + i), *([str(max_frames)] if max_frames else [])], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(n)]


def attacker_results(procs: list) -> dict:
    out = {"frames": 0, "replies": 0, "internal": 0, "codes": {}, "failed": 0}
    for p in procs:
        stdout, stderr = p.communicate(timeout=7200)
        try:
            r = json.loads(stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            out["failed"] += 1
            log(f"  attacker failed: {stderr[-4000:]}")
            continue
        for k in ("frames", "replies", "internal"):
            out[k] += r[k]
        for code, n in r["codes"].items():
            out["codes"][code] = out["codes"].get(code, 0) + n
    return out


def soak(pool: Pool, seconds: float, clients: int, rate_per_client: float, open_every: int, attackers: int = 0) -> dict:
    """A fresh tcp server at a fixed request rate, its RSS sampled every second; attackers alongside."""
    with Server(free_tcp_endpoint(), ["--cache", str(SOAK_CACHE)]) as server:
        cmd = {**base_cmd(server.endpoint, seconds, 1.0 + 0.05 * clients), "rate": rate_per_client,
               "open_every": open_every}
        attack_procs = start_attackers(server.endpoint, seconds, attackers) if attackers else []
        pool.start(clients, cmd)
        t0 = time.time()
        samples = []
        while time.time() < cmd["t_start"] + seconds:
            samples.append((time.time() - t0, server.rss_mib()))
            time.sleep(1.0)
        results = pool.results(clients)
        attacks = attacker_results(attack_procs)
        samples.append((time.time() - t0, server.rss_mib()))
        alive = server.alive()
        notices = server.notices()
    summary = summarize(results, clients, "tcp")
    t = [s[0] for s in samples]
    rss = [s[1] for s in samples]
    # Judge growth after a warm-up: JIT, the LRU filling up and V8's heap growing
    # to its working size take ~25 s at this rate (RSS is flat from there on).
    warmup = min(WARMUP_S, seconds / 2)
    cut = next((i for i, x in enumerate(t) if x >= warmup), len(t) - 1)
    tail_t, tail_rss = t[cut:], rss[cut:]
    third = max(1, len(tail_rss) // 3)
    early, late = float(np.median(tail_rss[:third])), float(np.median(tail_rss[-third:]))
    return {
        "seconds": seconds,
        "clients": clients,
        "cache": SOAK_CACHE,
        "open_every": open_every,
        "target_windows_per_s": clients * rate_per_client,
        "achieved_windows_per_s": summary["windows_per_s"],
        "opens": sum(r.get("opens", 0) for r in results),
        "errors": summary["errors"],
        "dropped": summary["dropped"],
        "checked": summary["checked"],
        "rtt_p50_us": summary["rtt_p50_us"],
        "rtt_p99_us": summary["rtt_p99_us"],
        "server_alive": alive,
        "attackers": attackers,
        "attacks": attacks,
        "warmup_s": warmup,
        "rss_mib": {"start": rss[0], "end": rss[-1], "max": max(rss), "after_warmup": tail_rss[0]},
        "rss_slope_mib_per_min": slope_per_minute(tail_t, tail_rss),
        "rss_growth_mib": late - early,
        "rss_samples": samples,
        "server_notices": notices,
    }


def _expected_file() -> str:
    path = str(Path(tempfile.mkdtemp(prefix="lrbridge-load-")) / "expected.npz")
    np.savez(path, **torch_rows(TOTAL_STEPS))
    return path


def run(levels: list[int], seconds: float) -> dict:
    t = time.time()
    pool = Pool(max(levels), _expected_file())
    log(f"  load: {len(pool.procs)} client processes up in {time.time() - t:.1f} s")
    levels_out = []
    try:
        for transport, endpoint in (("tcp", free_tcp_endpoint()), ("ipc", ipc_endpoint("load"))):
            with Server(endpoint) as server:
                for n in levels:
                    r = summarize(pool.run(n, base_cmd(server.endpoint, seconds, 0.5 + 0.03 * n)), n, transport)
                    r["server_alive"] = server.alive()
                    log(f"  load {transport} {n:3d} clients: {r['windows_per_s']:8.0f} windows/s "
                        f"{r['values_per_s'] / 1e6:6.2f} M values/s p50 {r['rtt_p50_us']:.0f} µs "
                        f"p99 {r['rtt_p99_us']:.0f} µs errors {r['errors']} dropped {r['dropped']}")
                    levels_out.append(r)
    finally:
        pool.close()
    return {"window": WINDOW, "groups": len(GROUPS), "seconds_per_level": seconds, "levels": levels_out}


def run_soak(seconds: float, clients: int = 64, rate: float = 30.0, attackers: int = 2) -> dict:
    pool = Pool(clients, _expected_file())
    try:
        log(f"  soak: {seconds:.0f} s at {clients}×{rate:.0f} windows/s, {attackers} attackers")
        out = soak(pool, seconds, clients, rate, open_every=20, attackers=attackers)
    finally:
        pool.close()
    log(f"  soak: RSS {out['rss_mib']['start']:.1f} → {out['rss_mib']['end']:.1f} MiB "
        f"(max {out['rss_mib']['max']:.1f}), slope {out['rss_slope_mib_per_min']:+.2f} MiB/min, "
        f"errors {out['errors']} dropped {out['dropped']}; attackers sent {out['attacks']['frames']} frames, "
        f"{out['attacks']['internal']} INTERNAL")
    for line in out["server_notices"][:20]:
        log(f"  server: {line[:300]}")
    return out


def targets(result: dict) -> list[dict]:
    levels = result["levels"]
    bad = sum(r["errors"] + r["dropped"] for r in levels)
    checked = sum(r["checked"] for r in levels)
    best = max(levels, key=lambda r: r["values_per_s"])
    out = [
        {"target": "load: no errors or dropped requests (all levels, tcp and ipc)",
         "value": f"{bad} bad of {sum(r['windows'] for r in levels)} windows ({checked} checked vs torch)",
         "pass": bad == 0 and all(r["server_alive"] for r in levels)},
        {"target": "load: aggregate ≥ 10 M values/s",
         "value": f"{best['values_per_s'] / 1e6:.2f} M/s ({best['transport']}, {best['clients']} clients)",
         "pass": best["values_per_s"] >= TARGET_VALUES_PER_S},
    ]
    return out


def soak_targets(s: dict) -> list[dict]:
    # Flat memory: the median of the last third of the post-warm-up samples
    # within 5 MiB of the first third's (GC sawtooth is ~MiBs either way).
    return [{
        "target": f"soak {s['seconds']:.0f} s, {s['clients']} clients and {s.get('attackers', 0)} attackers: "
                  "server memory does not grow, no errors or wrong values, no INTERNAL",
        "value": f"RSS {s['rss_mib']['start']:.1f} → {s['rss_mib']['end']:.1f} MiB (max {s['rss_mib']['max']:.1f}); "
                 f"growth {s['rss_growth_mib']:+.1f} MiB, slope {s['rss_slope_mib_per_min']:+.2f} MiB/min; "
                 f"{s['errors']} errors, {s['dropped']} dropped; "
                 f"attackers: {s.get('attacks', {}).get('frames', 0)} frames, {s.get('attacks', {}).get('internal', 0)} INTERNAL",
        "pass": s["rss_growth_mib"] <= 5.0 and s["errors"] == 0 and s["dropped"] == 0 and s["server_alive"]
        and s.get("attacks", {}).get("internal", 0) == 0 and s.get("attacks", {}).get("failed", 0) == 0,
    }]
