"""Section "attacks": what each known attack request costs the server now, and
a long fuzz (>= 100k frames in a full run) against a real server while an
honest client measures its reply times.

- per attack: bench/attacks.ts (one child process per attack, in-process
  handler): time per request and the process's RSS;
- fuzz: bench/attacker.ts processes send fuzzed frames (valid messages with
  mutated fields, flipped or cut bodies, random bytes) to a fresh server; an
  honest lrbridge Client asks for windows all along and checks every value.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import numpy as np

from common import ROOT, Server, free_tcp_endpoint, log
from load import attacker_results, start_attackers


def per_attack(timeout_s: float = 30.0) -> list[dict]:
    out = subprocess.run(
        ["node", "-r", "ts-node/register/transpile-only", str(ROOT / "bench" / "attacks.ts"), "--timeout", str(timeout_s)],
        cwd=ROOT, capture_output=True, text=True, timeout=3600,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def fuzz(frames: int, attackers: int = 2) -> dict:
    from lrbridge import Client

    spec = {"type": "StepLR", "step_size": 5, "gamma": 0.5}
    latencies: list[float] = []
    wrong = [0]
    problems: list[str] = []
    stop = threading.Event()
    with Server(free_tcp_endpoint()) as server:

        def honest() -> None:
            try:
                with Client(server.endpoint) as client:
                    opened = client.open(spec, [{"lr": 0.1}])
                    i = 0
                    while not stop.is_set():
                        start = (i * 37) % 5000
                        t = time.perf_counter()
                        window = client.window(opened, start, 16)
                        latencies.append(time.perf_counter() - t)
                        want = 0.1 * 0.5 ** (np.arange(start, start + 16) // 5)
                        if not np.array_equal(window.lr[:, 0], want):
                            wrong[0] += 1
                        i += 1
                        time.sleep(0.002)
            except Exception as exc:  # reported, not raised: the numbers still come back
                problems.append(f"{type(exc).__name__}: {exc}")

        probe = threading.Thread(target=honest, daemon=True)
        probe.start()
        t0 = time.time()
        procs = start_attackers(server.endpoint, 3600.0, attackers, max_frames=frames // attackers)
        attacks = attacker_results(procs)
        seconds = time.time() - t0
        stop.set()
        probe.join(timeout=30)
        alive = server.alive()
        rss = server.rss_mib()
    lat = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {
        "frames": attacks["frames"],
        "internal": attacks["internal"],
        "codes": attacks["codes"],
        "attackers_failed": attacks["failed"],
        "seconds": round(seconds, 1),
        "server_alive": alive,
        "server_rss_mib": rss,
        "honest_windows": len(latencies),
        "honest_wrong": wrong[0],
        "honest_problems": problems[:5],
        "honest_ms_p50": float(np.percentile(lat, 50)),
        "honest_ms_p99": float(np.percentile(lat, 99)),
        "honest_ms_max": float(np.max(lat)),
    }


def run(fuzz_frames: int) -> dict:
    log("  attacks: each known attack, one process each ...")
    attacks = per_attack()
    for a in attacks:
        log(f"    {a['name'][:60]:60s} {a.get('outcome', '?'):18s} {a.get('ms_max', float('nan')):8.1f} ms  "
            f"{a.get('rss_mib', 0):5} MiB")
    log(f"  attacks: fuzz, {fuzz_frames} frames ...")
    f = fuzz(fuzz_frames)
    log(f"  attacks: fuzz {f['frames']} frames in {f['seconds']} s, INTERNAL {f['internal']}, honest p99 "
        f"{f['honest_ms_p99']:.1f} ms (max {f['honest_ms_max']:.1f}), wrong {f['honest_wrong']}")
    return {"per_attack": attacks, "fuzz": f}


def targets(r: dict) -> list[dict]:
    f = r["fuzz"]
    slow = [a["name"] for a in r["per_attack"] if not isinstance(a.get("ms_max"), (int, float)) or a["ms_max"] > 100]
    return [
        {"target": "attacks: every known attack answered within 100 ms per request",
         "value": f"{len(r['per_attack']) - len(slow)} of {len(r['per_attack'])}" + (f"; slow: {slow}" if slow else ""),
         "pass": not slow},
        {"target": f"fuzz: {f['frames']} frames, no INTERNAL, server alive, honest client served with right values",
         "value": f"{f['internal']} INTERNAL, {f['honest_windows']} honest windows, {f['honest_wrong']} wrong, "
                  f"problems {f['honest_problems']}",
         "pass": f["internal"] == 0 and f["server_alive"] and f["honest_wrong"] == 0 and not f["honest_problems"]
         and f["attackers_failed"] == 0},
        {"target": "fuzz: honest client p99 ≤ 100 ms while attacked",
         "value": f"p50 {f['honest_ms_p50']:.1f} ms, p99 {f['honest_ms_p99']:.1f} ms, max {f['honest_ms_max']:.1f} ms",
         "pass": f["honest_ms_p99"] <= 100.0},
    ]
