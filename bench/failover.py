"""Failover latency: from a replica's death to the first reply from another.

Three replicas on loopback tcp and one client given all three
(``lrbridge.Client([a, b, c])``) asking for windows in a loop, each request
timed. The replica serving the client is then:

- *killed* (SIGKILL: its connections close), or
- *hung* (SIGSTOP: connections stay up, nothing answers; the client waits out
  one attempt's timeout, here ``HANG_TIMEOUT_S``),

and the latency is the time from the signal to the first reply from another
replica (that reply includes the re-open the new replica asks for). Each
repeat restarts (or continues) the victim, so every case starts from three
live replicas. Every replica is warmed up first (a replica that has served
nothing yet spends ~200 ms compiling its first window, which is not failover).

    .venv/bin/python bench/failover.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python_client"))

from common import Server, free_tcp_endpoint, log, median, report, spread  # noqa: E402

SPEC = {"type": "CosineAnnealingWarmRestarts", "T_0": 100, "T_mult": 2}
GROUPS = [{"lr": 0.1}, {"lr": 0.01}]
HANG_TIMEOUT_S = 0.5
KILL_TARGET_MS = 100.0
HANG_SLACK_MS = 250.0  # over the attempt's timeout: the resend, and a loaded 2-core machine  # a crash costs no timeout: the closed connection is seen, the request resent, the handle re-opened


def warm_up(endpoint: str) -> None:
    """A few hundred windows through a client of this replica alone (Node compiles the hot paths).

    Another schedule than the measured client's: its handle is still unknown
    there, so the failover pays for the re-open, as it would in production.
    """
    from lrbridge import Client

    with Client(endpoint) as client:
        opened = client.open({**SPEC, "T_0": SPEC["T_0"] + 1}, GROUPS)
        for k in range(300):
            client.window(opened, 64 * k, 64)


class Looper(threading.Thread):
    """Windows in a loop: (reply time, replica that answered, seconds the request took)."""

    def __init__(self, client, opened) -> None:
        super().__init__(daemon=True)
        self.client, self.opened = client, opened
        self.replies: list[tuple[float, int, float]] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        start = 0
        try:
            while not self.stop.is_set():
                asked = time.monotonic()
                self.client.window(self.opened, start, 64)
                now = time.monotonic()
                self.replies.append((now, self.client._transport.preferred, now - asked))
                start = (start + 64) % 100_000
        except BaseException as exc:  # noqa: BLE001 - reported in the results
            self.error = exc

    def first_from_other(self, since: float, victim: int, within: float = 30.0) -> float | None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and self.error is None:
            for t, replica, _took in reversed(self.replies[-200:]):
                if t > since and replica != victim:
                    return t
            time.sleep(0.001)
        return None


def one_case(how: str, repeats: int) -> dict:
    from lrbridge import Client

    endpoints = [free_tcp_endpoint() for _ in range(3)]
    servers = [Server(e) for e in endpoints]
    for endpoint in endpoints:
        warm_up(endpoint)
    timeout = HANG_TIMEOUT_S if how == "hang" else 2.0
    client = Client(endpoints, timeout=timeout, retries=3)
    opened = client.open(SPEC, GROUPS)
    looper = Looper(client, opened)
    looper.start()
    latencies_ms: list[float] = []
    try:
        for _ in range(repeats):
            time.sleep(0.3)  # steady state on the current replica
            victim = client._transport.preferred
            proc = servers[victim].proc
            t0 = time.monotonic()
            os.kill(proc.pid, signal.SIGKILL if how == "kill" else signal.SIGSTOP)
            answered = looper.first_from_other(t0, victim)
            if answered is None:
                raise RuntimeError(f"no reply from another replica after {how}: {looper.error!r}")
            latencies_ms.append((answered - t0) * 1000.0)
            if how == "kill":
                proc.wait()
                servers[victim] = Server(endpoints[victim])
                warm_up(endpoints[victim])
            else:
                os.kill(proc.pid, signal.SIGCONT)
    finally:
        looper.stop.set()
        looper.join(10)
        for server in servers:
            server.stop()
        client.close()
    steady = [took * 1000.0 for _t, _r, took in looper.replies]
    return {
        "latency_ms": spread(latencies_ms),
        "samples_ms": [round(x, 2) for x in latencies_ms],
        "attempt_timeout_s": timeout,
        "request_ms_median": median(steady) if steady else None,
        "requests": len(steady),
        "client_error": None if looper.error is None else f"{type(looper.error).__name__}: {looper.error}",
    }


def run(repeats: int = 10) -> dict:
    out = {}
    for how in ("kill", "hang"):
        log(f"  failover after {how}, {repeats} repeats")
        out[how] = one_case(how, repeats)
    return out


def targets(s: dict) -> list[dict]:
    kill, hang = s["kill"], s["hang"]
    return [
        {"target": f"failover after a replica is killed <= {KILL_TARGET_MS:.0f} ms (median of repeats)",
         "value": f"median {kill['latency_ms']['median']:.1f} ms, max {kill['latency_ms']['max']:.1f} ms",
         "pass": kill["latency_ms"]["median"] <= KILL_TARGET_MS and kill["client_error"] is None},
        {"target": f"failover after a replica hangs <= one attempt's timeout + {HANG_SLACK_MS:.0f} ms (max of repeats)",
         "value": f"median {hang['latency_ms']['median']:.0f} ms, max {hang['latency_ms']['max']:.0f} ms "
                  f"(timeout {hang['attempt_timeout_s'] * 1000:.0f} ms)",
         "pass": hang["latency_ms"]["max"] <= hang["attempt_timeout_s"] * 1000 + HANG_SLACK_MS
                 and hang["client_error"] is None},
    ]


def section(s: dict) -> list[str]:
    lines = [
        "## Failover between replicas",
        "",
        "Three replicas on loopback tcp, one client given all three asking for 64-row windows in a loop. "
        "The replica serving it is killed (SIGKILL) or hung (SIGSTOP); latency is from the signal to the first "
        "reply from another replica, re-open included (replicas warmed up first). ms, median [min–max] over repeats.",
        "",
        "| case | failover ms | attempt timeout | request ms (steady) | client errors |",
        "|---|---:|---:|---:|---|",
    ]
    for how in ("kill", "hang"):
        c = s[how]
        lines.append(
            f"| {how} | {_sp(c['latency_ms'])} | {c['attempt_timeout_s'] * 1000:.0f} ms | "
            f"{c['request_ms_median']:.2f} | {c['client_error'] or 'none'} |"
        )
    return lines + [""]


def _sp(x: dict) -> str:
    return f"{x['median']:.1f} [{x['min']:.1f}–{x['max']:.1f}]"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args(argv)
    return report(run(args.repeats), targets)


if __name__ == "__main__":
    sys.exit(main())
