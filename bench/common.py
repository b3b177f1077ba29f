"""Shared pieces of the benchmark harness: statistics, the server process, machine facts."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# The built server and core; LRBRIDGE_BENCH_DIST points the harness at another build.
DIST = Path(os.environ.get("LRBRIDGE_BENCH_DIST") or ROOT / "dist")
CLI = DIST / "cli.js"
READY_PREFIX = "lrbridge serving on"


def node() -> str:
    """The pinned Node the server runs on for users (LRBRIDGE_NODE overrides it, as there)."""
    from lrbridge.embedded import node_executable

    return node_executable()


def node_flags() -> tuple[str, ...]:
    """The node flags the server runs with for users (its heap bounds)."""
    from lrbridge.embedded import SERVER_NODE_FLAGS

    return SERVER_NODE_FLAGS


def server_env() -> dict[str, str]:
    """The environment the server runs in for users (its malloc settings)."""
    from lrbridge.embedded import server_env as env

    return env()


# --------------------------------------------------------------------------
# Statistics


def median(values) -> float:
    return float(np.median(np.asarray(values, dtype=float)))


def spread(values) -> dict:
    """Median, min, max and the relative range: how far repeats disagree."""
    a = np.asarray(values, dtype=float)
    med = float(np.median(a))
    return {
        "median": med,
        "min": float(a.min()),
        "max": float(a.max()),
        "rel_range": float((a.max() - a.min()) / med) if med else 0.0,
        "n": int(a.size),
    }


def percentiles_ns(samples_ns) -> dict:
    """p50/p99/p99.9/max of single-call times in µs, the mean, and the share of
    all time spent in calls over 20 µs (how much the rare slow calls weigh)."""
    a = np.asarray(samples_ns, dtype=np.int64)
    p50, p99, p999 = np.percentile(a, [50, 99, 99.9])
    slow = a[a > 20_000]
    return {
        "p50_us": float(p50) / 1e3,
        "p99_us": float(p99) / 1e3,
        "p999_us": float(p999) / 1e3,
        "max_us": float(a.max()) / 1e3,
        "mean_us": float(a.mean()) / 1e3,
        "over_20us": int(slow.size),
        "over_20us_time_share": float(slow.sum() / a.sum()) if a.sum() else 0.0,
        "n": int(a.size),
    }


def slope_per_minute(times_s, values) -> float:
    """Least-squares slope of values over time, per minute."""
    t = np.asarray(times_s, dtype=float)
    v = np.asarray(values, dtype=float)
    if t.size < 2 or t.max() == t.min():
        return 0.0
    return float(np.polyfit(t, v, 1)[0] * 60.0)


# --------------------------------------------------------------------------
# The server under test


def free_tcp_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def ipc_endpoint(tag: str) -> str:
    directory = tempfile.mkdtemp(prefix="lrbridge-bench-")
    return f"ipc://{directory}/{tag}.sock"


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Server:
    """`node dist/cli.js serve --bind <endpoint> [extra args]`, ready when it prints its line."""

    def __init__(self, endpoint: str, extra: list[str] | None = None, start_timeout: float = 60.0):
        self.endpoint = endpoint
        self.argv = [node(), *node_flags(), str(CLI), "serve", "--bind", endpoint, *(extra or [])]
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=server_env(),
        )
        self._stderr: list[str] = []
        self._notices: list[str] = []
        threading.Thread(target=self._drain, args=(self.proc.stderr, self._stderr, self._notices), daemon=True).start()
        deadline = time.monotonic() + start_timeout
        while True:
            line = self.proc.stdout.readline()
            if line.startswith(READY_PREFIX):
                break
            if not line and self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server {' '.join(self.argv)} did not start: {''.join(self._stderr)[-2000:]}")
        threading.Thread(target=self._drain, args=(self.proc.stdout, []), daemon=True).start()

    @staticmethod
    def _drain(stream, sink: list, notices: list | None = None) -> None:
        for line in stream:
            sink.append(line)
            del sink[:-200]
            # The server logs every open; anything else (a dropped reply, an internal error) is kept.
            if notices is not None and " open peer=" not in line and len(notices) < 200:
                notices.append(line.rstrip("\n"))

    def notices(self) -> list[str]:
        """The server's log lines other than its opens (the first 200)."""
        return list(self._notices)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mib(self) -> float:
        return rss_kib(self.proc.pid) / 1024.0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------
# Machine and versions


def _node_package_version(name: str) -> str:
    try:
        return json.loads((ROOT / "node_modules" / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "?"


def machine_info() -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import msgpack
    import torch
    import zmq

    node_version = subprocess.run([node(), "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
        "versions": {
            "node": node_version,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "pyzmq": zmq.__version__,
            "libzmq": zmq.zmq_version(),
            "msgpack": ".".join(map(str, msgpack.version)),
            "zeromq.js": _node_package_version("zeromq"),
            "msgpackr": _node_package_version("msgpackr"),
        },
    }


def report(result: dict, targets) -> int:
    """A section run on its own: its result as JSON, then PASS/FAIL per target
    (``targets(result)``); the exit status, 0 when every target passed."""
    print(json.dumps(result, indent=1))
    checked = targets(result)
    for t in checked:
        print(f"{'PASS' if t['pass'] else 'FAIL'}  {t['target']}: {t['value']}")
    return 0 if all(t["pass"] for t in checked) else 1


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
