"""What CURVE costs: one server on loopback tcp without CURVE, one with CURVE
and a ZAP allow-list, the same requests to both.

- connect: a fresh REQ socket until its first reply (`hello`): TCP connect,
  the ZMTP handshake (for CURVE: key exchange and the ZAP round trip through
  the server's event loop) and one request. What a client pays once per
  socket (Lazy Pirate makes a new one only after a lost reply).
- request: `window` of 8192 rows x 1 group (a 64 KiB reply) on an open
  socket: what encryption adds per request in steady state.

    .venv/bin/python bench/handshake.py [--connects 300] [--requests 2000]

Prints JSON and writes bench/results/handshake.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python_client"))

import zmq  # noqa: E402

from common import CLI, ROOT, Server, free_tcp_endpoint, log, machine_info, node, percentiles_ns  # noqa: E402
from lrbridge.curve import Watch, curve_keys  # noqa: E402
from lrbridge.protocol import decode, open_message, request_body, window_message  # noqa: E402


def make_keys(root: Path) -> None:
    for sub, name in (("server", "server"), ("clients", "bench")):
        subprocess.run([node(), str(CLI), "keys", str(root / sub), name], check=True, capture_output=True)


def ask(watch: Watch, msg: dict, request_id: int) -> dict:
    watch.socket.send(request_body(msg, request_id))
    if not watch.poll(10_000):
        raise RuntimeError("no reply within 10 s")
    return decode(watch.socket.recv())


def measure(endpoint: str, keys, connects: int, requests: int) -> dict:
    connect_ns = []
    for i in range(connects):
        started = time.perf_counter_ns()
        watch = Watch(zmq.REQ, endpoint, keys)
        ask(watch, {"type": "hello"}, i)
        connect_ns.append(time.perf_counter_ns() - started)
        watch.close()
    watch = Watch(zmq.REQ, endpoint, keys)
    opened = ask(watch, open_message({"type": "CosineAnnealingLR", "T_max": 10**6}, [{"lr": 0.1}]), 0)
    request_ns = []
    for i in range(requests):
        msg = window_message(opened["hash"], (i * 8192) % 900_000, 8192)
        started = time.perf_counter_ns()
        reply = ask(watch, msg, i + 1)
        request_ns.append(time.perf_counter_ns() - started)
        assert reply["type"] == "window", reply
    watch.close()
    return {"connect": percentiles_ns(connect_ns), "request_8192_rows": percentiles_ns(request_ns)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connects", type=int, default=300)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "handshake.json"))
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lrbridge-keys-") as tmp:
        root = Path(tmp)
        make_keys(root)
        keys = curve_keys(str(root / "server" / "server.key"), str(root / "clients" / "bench.key_secret"))
        results = {}
        for name, extra, client_keys in (
            ("null", [], None),
            ("curve", ["--curve-secret", str(root / "server" / "server.key_secret"), "--allow", str(root / "clients")], keys),
        ):
            with Server(free_tcp_endpoint(), extra) as server:
                measure(server.endpoint, client_keys, 20, 50)  # warm-up: JIT, caches
                results[name] = measure(server.endpoint, client_keys, args.connects, args.requests)
                log(f"{name}: connect p50 {results[name]['connect']['p50_us']:.0f} us, "
                    f"request p50 {results[name]['request_8192_rows']['p50_us']:.0f} us")
    out = {"machine": machine_info(), "connects": args.connects, "requests": args.requests, **results}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
