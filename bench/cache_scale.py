"""Section 5: 100k distinct specs opened against one server with `--cache N`.

Opens go out pipelined on a DEALER (64 in flight). At checkpoints the server's
RSS is read and window lookups are timed lock-step on the earliest- and the
latest-opened handles, alternating, so both see the same machine state.
"""

from __future__ import annotations

import time

import msgpack
import zmq

from common import Server, ipc_endpoint, log, median, percentiles_ns
from specs import cache_spec

GROUPS = [{"lr": 0.1}]
IN_FLIGHT = 64
LOOKUPS = 200  # per side per checkpoint
LOOKUP_ROWS = 64
TARGET_RSS_MIB = 200.0


class Dealer:
    def __init__(self, endpoint: str):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.ids = 0

    def send(self, msg: dict) -> int:
        self.ids += 1
        self.sock.send(msgpack.packb({"v": 2, "id": self.ids, **msg}, use_bin_type=True))
        return self.ids

    def recv(self) -> dict:
        if not self.sock.poll(10_000, zmq.POLLIN):
            raise TimeoutError("no reply from the server within 10 s")
        return msgpack.unpackb(self.sock.recv(), raw=False, strict_map_key=False)

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()


def open_range(dealer: Dealer, first: int, last: int, hashes: list[str]) -> int:
    """Open specs first..last-1 pipelined; append their handles in order. Returns error count."""
    by_id: dict[int, int] = {}
    got: dict[int, str] = {}
    errors = 0
    i, in_flight = first, 0
    while i < last or in_flight:
        while i < last and in_flight < IN_FLIGHT:
            by_id[dealer.send({"type": "open", "spec": cache_spec(i), "groups": GROUPS})] = i
            i += 1
            in_flight += 1
        reply = dealer.recv()
        in_flight -= 1
        if reply.get("type") != "opened":
            errors += 1
            continue
        got[by_id.pop(reply["id"])] = reply["hash"]
    hashes.extend(got[k] for k in sorted(got))
    return errors


def time_lookups(dealer: Dealer, hashes: list[str]) -> dict:
    """Lock-step window requests, alternating earliest and latest handles."""
    n = min(LOOKUPS, len(hashes) // 2)
    samples = {"early": [], "late": []}
    misses = 0
    for k in range(n):
        for side, handle in (("early", hashes[k]), ("late", hashes[-1 - k])):
            t0 = time.perf_counter_ns()
            dealer.send({"type": "window", "hash": handle, "start": 0, "count": LOOKUP_ROWS})
            reply = dealer.recv()
            samples[side].append(time.perf_counter_ns() - t0)
            if reply.get("type") != "window":
                misses += 1
    return {side: percentiles_ns(v) for side, v in samples.items()} | {"misses": misses}


def run(total: int, checkpoints: list[int]) -> dict:
    checkpoints = sorted({c for c in checkpoints if c < total} | {total})
    out = {"total": total, "cache": total, "checkpoints": []}
    # The byte budget is set out of the way: this section measures many entries, not eviction.
    with Server(ipc_endpoint("cache"), ["--cache", str(total), "--cache-mib", "8192"]) as server:
        time.sleep(0.5)
        out["rss_idle_mib"] = server.rss_mib()
        dealer = Dealer(server.endpoint)
        hashes: list[str] = []
        errors = 0
        t_open = 0.0
        try:
            for c in checkpoints:
                t = time.perf_counter()
                errors += open_range(dealer, len(hashes), c, hashes)
                t_open += time.perf_counter() - t
                if c == checkpoints[0]:
                    time_lookups(dealer, hashes)  # warm-up: JIT and first-touch, not the cache size
                lookups = time_lookups(dealer, hashes)
                point = {"opened": len(hashes), "rss_mib": server.rss_mib(),
                         "early_p50_us": lookups["early"]["p50_us"], "late_p50_us": lookups["late"]["p50_us"],
                         "early_p99_us": lookups["early"]["p99_us"], "late_p99_us": lookups["late"]["p99_us"],
                         "misses": lookups["misses"]}
                log(f"  cache {point['opened']:7d} opened: RSS {point['rss_mib']:.1f} MiB, lookup p50 early "
                    f"{point['early_p50_us']:.0f} µs late {point['late_p50_us']:.0f} µs, misses {point['misses']}")
                out["checkpoints"].append(point)
        finally:
            dealer.close()
        out["open_errors"] = errors
        out["opens_per_s"] = len(hashes) / t_open if t_open else 0.0
        out["server_alive"] = server.alive()
    return out


def targets(result: dict) -> list[dict]:
    last = result["checkpoints"][-1]
    first = result["checkpoints"][0]
    slowdown = median([last["early_p50_us"], last["late_p50_us"]]) / median([first["early_p50_us"], first["late_p50_us"]])
    ok = last["misses"] == 0 and result["open_errors"] == 0 and result["server_alive"]
    return [{
        "target": f"cache of {result['total']:,} specs: server RSS ≤ 200 MB, no misses",
        "value": f"{last['rss_mib']:.1f} MiB (idle {result['rss_idle_mib']:.1f}); lookup p50 ×{slowdown:.2f} "
                 f"vs {first['opened']:,} cached; {last['misses']} misses, {result['open_errors']} open errors",
        "pass": last["rss_mib"] * 1024 * 1024 <= TARGET_RSS_MIB * 1e6 and ok,
    }]
