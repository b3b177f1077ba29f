"""One load-test client process (spawned by bench/load.py; talks raw protocol v2 over REQ).

argv: <expected.npz>. Prints "ready", then reads one JSON command per line on stdin:
  {"cmd": "run", "endpoint", "spec", "groups", "window", "t_start", "duration",
   "rate": per-second or null (as fast as it can), "check_every", "open_every", "worker"}
  -> one JSON line: windows, errors, dropped, checked, opens, elapsed, rtt_ns (sample)
  {"cmd": "quit"}
Imports only zmq, msgpack and numpy so 64 of these start quickly.
"""

from __future__ import annotations

import json
import sys
import time

import msgpack
import numpy as np
import zmq

TIMEOUT_MS = 2000  # a reply later than this counts as dropped
RTT_SAMPLE_LIMIT = 50_000


def close_enough(got: np.ndarray, want: np.ndarray) -> bool:
    """1e-12 relative, 1e-15 absolute near zero: the project's equality."""
    return got.shape == want.shape and bool(np.all(np.abs(got - want) <= np.maximum(1e-12 * np.abs(want), 1e-15)))


class Conn:
    def __init__(self, ctx: zmq.Context, endpoint: str):
        self.ctx, self.endpoint, self.sock, self.ids = ctx, endpoint, None, 0
        self._fresh()

    def _fresh(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=0)
        self.sock = self.ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(self.endpoint)

    def request(self, msg: dict):
        """(reply map or None when dropped, round trip ns)."""
        self.ids += 1
        msg = {"v": 2, "id": self.ids, **msg}
        body = msgpack.packb(msg, use_bin_type=True)
        t0 = time.perf_counter_ns()
        self.sock.send(body)
        if not self.sock.poll(TIMEOUT_MS, zmq.POLLIN):
            self._fresh()  # Lazy Pirate: a REQ socket that lost a reply cannot send again
            return None, time.perf_counter_ns() - t0
        raw = self.sock.recv()
        rtt = time.perf_counter_ns() - t0
        reply = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        if reply.get("id") != self.ids:
            reply = {"type": "error", "code": "ID_MISMATCH", "message": f"{reply.get('id')} != {self.ids}"}
        return reply, rtt


def run(ctx: zmq.Context, cmd: dict, expected: dict) -> dict:
    conn = Conn(ctx, cmd["endpoint"])
    opened, _ = conn.request({"type": "open", "spec": cmd["spec"], "groups": cmd["groups"]})
    if not opened or opened.get("type") != "opened":
        return {"fatal": f"open failed: {opened}"}
    handle, window = opened["hash"], cmd["window"]
    want_lr, want_mom = expected["lr"], expected["momentum"]
    span = len(want_lr) - window
    # Like a training run: consecutive windows, each worker from its own offset,
    # wrapping round at the end of the expected rows.
    offset = (cmd["worker"] * 7919) % span
    rate, check_every, open_every = cmd["rate"], cmd["check_every"], cmd["open_every"]
    windows = errors = dropped = checked = opens = 0
    first_errors: list[str] = []
    rtts: list[int] = []
    while time.time() < cmd["t_start"]:
        time.sleep(min(0.01, max(0.0, cmd["t_start"] - time.time())))
    t0 = time.perf_counter()
    t_end = t0 + cmd["duration"]
    k = 0
    while True:
        now = time.perf_counter()
        if now >= t_end:
            break
        if rate:
            due = t0 + k / rate
            if due > now:
                time.sleep(due - now)
        k += 1
        if open_every and k % open_every == 0:
            # A fresh spec now and then: the LRU fills and evicts during a soak.
            spec = {"type": "CosineAnnealingLR", "T_max": 10 + cmd["worker"] * 10_000_000 + k, "eta_min": 0.0}
            reply, _ = conn.request({"type": "open", "spec": spec, "groups": cmd["groups"]})
            if reply is None:
                dropped += 1
            elif reply.get("type") != "opened":
                errors += 1
            else:
                opens += 1
            continue
        start = (offset + k * window) % span
        reply, rtt = conn.request({"type": "window", "hash": handle, "start": start, "count": window})
        if reply is None:
            dropped += 1
            continue
        if reply.get("type") != "window":
            errors += 1
            if len(first_errors) < 3:
                first_errors.append(str(reply)[:300])
            continue
        windows += 1
        if len(rtts) < RTT_SAMPLE_LIMIT:
            rtts.append(rtt)
        if check_every and windows % check_every == 0:
            checked += 1
            lr = np.frombuffer(reply["lr"], "<f8")
            mom = np.frombuffer(reply["momentum"], "<f8") if reply.get("momentum") is not None else None
            ok = close_enough(lr, want_lr[start : start + window]) and (
                mom is not None and close_enough(mom, want_mom[start : start + window])
            )
            if not ok:
                errors += 1
                if len(first_errors) < 3:
                    first_errors.append(f"values differ at start {start}")
    elapsed = time.perf_counter() - t0
    conn.sock.close(linger=0)
    return {"windows": windows, "errors": errors, "dropped": dropped, "checked": checked, "opens": opens,
            "elapsed": elapsed, "rtt_ns": rtts, "first_errors": first_errors}


def main() -> int:
    data = np.load(sys.argv[1])
    expected = {"lr": data["lr"], "momentum": data["momentum"]}
    ctx = zmq.Context()
    print("ready", flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            break
        try:
            result = run(ctx, cmd, expected)
        except Exception as exc:  # report, never hang the parent
            result = {"fatal": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(result), flush=True)
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
