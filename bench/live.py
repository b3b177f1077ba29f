"""The live view's costs: what heartbeats cost the server, and how fast the web
page first renders with many runs.

    .venv/bin/python bench/live.py [--seconds 20] [--runs 64] [--page-runs 200]

- Heartbeats: `runs` fake runs, one DEALER each, send the client's real
  `heartbeat` message once a second with a new step each time (the worst
  case: every beat is a change), for `seconds`. The server's CPU time
  (utime + stime from /proc) over that window, as a share of one core, is
  the cost; measured once with nobody watching, once with a browser-like
  SSE stream open, and once on a server whose run table is kept in a SQLite
  registry store (rows written in batches, at most once a second).
- First render: `page_runs` runs known to the server, the runs page opened
  in chromium-headless-shell; the time from navigation start to the table
  drawn (the page records it), median of 5 loads.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python_client"))

import zmq  # noqa: E402

from common import Server, free_tcp_endpoint, median, report  # noqa: E402
from lrbridge.heartbeat import heartbeat_message  # noqa: E402
from lrbridge.protocol import request_body  # noqa: E402

CHROMIUM = "/usr/bin/chromium-headless-shell"
CPU_TARGET_PCT = 1.0
RENDER_TARGET_MS = 1000.0
SPEC = {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 100_000}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def web_url(server: Server, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(server._stderr):
            if line.startswith("lrbridge web view on "):
                return line.split()[-1]
        time.sleep(0.05)
    raise RuntimeError("the server did not announce its web view")


def open_handle(endpoint: str) -> tuple[str, str]:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    sock.send(request_body({"type": "open", "spec": SPEC, "groups": [{"lr": 0.1, "momentum": 0.9}]}, 1))
    import msgpack

    reply = msgpack.unpackb(sock.recv(), raw=False)
    sock.close()
    return reply["hash"], reply["spec_hash"]


def beat_once(socks: list, handle: tuple[str, str], step: int, tag: str) -> None:
    for i, sock in enumerate(socks):
        run = {"id": f"{tag}-{i:04d}", "name": f"bench run {i}", "host": "bench", "pid": 1000 + i}
        msg = heartbeat_message(run, handle[0], handle[1], step + i, [0.05 + i * 1e-6], [0.9], 100_000, "running")
        sock.send(request_body(msg, step), zmq.NOBLOCK)


def heartbeat_cost(server: Server, url: str, runs: int, seconds: float, watch: bool) -> dict:
    handle = open_handle(server.endpoint)
    ctx = zmq.Context.instance()
    socks = []
    for _ in range(runs):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(server.endpoint)
        socks.append(s)
    stop = threading.Event()
    received = [0]

    def sse() -> None:
        with urllib.request.urlopen(url + "/api/events", timeout=seconds + 30) as stream:
            while not stop.is_set():
                line = stream.readline()
                if not line:
                    return
                received[0] += len(line)

    watcher = threading.Thread(target=sse, daemon=True) if watch else None
    if watcher:
        watcher.start()
    beat_once(socks, handle, 0, "warm")  # first sight of each run, outside the window
    time.sleep(1.0)
    cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
    beats = 0
    for tick in range(1, int(seconds) + 1):
        beat_once(socks, handle, tick, "warm")
        beats += runs
        time.sleep(max(0.0, t0 + tick - time.monotonic()))
    cpu1, t1 = cpu_seconds(server.pid), time.monotonic()
    stop.set()
    for s in socks:
        s.close()
    pct = 100.0 * (cpu1 - cpu0) / (t1 - t0)
    return {"runs": runs, "seconds": round(t1 - t0, 2), "heartbeats": beats, "server_cpu_pct": round(pct, 3),
            "watching": watch, "sse_bytes": received[0]}


def first_render(server: Server, url: str, runs: int, loads: int = 5) -> dict:
    from playwright.sync_api import sync_playwright

    handle = open_handle(server.endpoint)
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.connect(server.endpoint)
    for i in range(runs):
        run = {"id": f"page-{i:04d}", "name": f"<b>run</b> {i}", "host": "bench", "pid": 5000 + i}
        sock.send(request_body(heartbeat_message(run, handle[0], handle[1], 10 * i, [0.05], [0.9], 100_000, "running"), i))
    time.sleep(1.0)
    sock.close()
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page()
        for _ in range(loads):
            page.goto(url + "/")
            page.wait_for_selector("body[data-rendered]", timeout=30_000)
            rows = page.locator("#runs tbody tr").count()
            times.append(page.evaluate("window.lrbridge.renderedAt"))
        browser.close()
    return {"runs_shown": rows, "first_render_ms": [round(t, 1) for t in times], "median_ms": round(median(times), 1)}


def run(seconds: float = 20.0, runs: int = 64, page_runs: int = 200) -> dict:
    server = Server(free_tcp_endpoint(), ["--http", "127.0.0.1:0"])
    try:
        url = web_url(server)
        out = {
            "idle": heartbeat_cost(server, url, runs, seconds, watch=False),
            "watched": heartbeat_cost(server, url, runs, seconds, watch=True),
        }
        if Path(CHROMIUM).exists():
            out["render"] = first_render(server, url, page_runs)
    finally:
        server.stop()
    with tempfile.TemporaryDirectory(prefix="lrbridge-bench-") as work:
        stored = Server(free_tcp_endpoint(), ["--http", "127.0.0.1:0", "--registry", str(Path(work) / "registry.sqlite")])
        try:
            out["stored"] = heartbeat_cost(stored, web_url(stored), runs, seconds, watch=False)
        finally:
            stored.stop()
    return out


def targets(out: dict) -> list[dict]:
    result = []
    for key in ("idle", "watched", "stored"):
        m = out[key]
        how = "runs kept in a SQLite store" if key == "stored" else "an SSE viewer open" if m["watching"] else "nobody watching"
        result.append({
            "target": f"heartbeats from {m['runs']} runs cost the server < {CPU_TARGET_PCT}% CPU ({how})",
            "value": f"{m['server_cpu_pct']:.2f}% of one core over {m['seconds']:.0f} s ({m['heartbeats']} heartbeats)",
            "pass": m["server_cpu_pct"] < CPU_TARGET_PCT,
        })
    if "render" in out:
        r = out["render"]
        result.append({
            "target": f"the runs page's first render < {RENDER_TARGET_MS:.0f} ms with {r['runs_shown']} runs",
            "value": f"{r['median_ms']:.0f} ms median of {len(r['first_render_ms'])} loads",
            "pass": r["median_ms"] < RENDER_TARGET_MS and r["runs_shown"] >= 200,
        })
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--runs", type=int, default=64)
    p.add_argument("--page-runs", type=int, default=200)
    args = p.parse_args()
    return report(run(args.seconds, args.runs, args.page_runs), targets)


if __name__ == "__main__":
    sys.exit(main())
