"""In-process stand-ins for server replicas, for tests of failover routing (``lrbridge.failover``).

Each ``FakeReplica`` is a ROUTER bound on its own ipc path, answered by a
thread of this process through the real codec. What it does with a request is
set per replica: ``answer`` (reply at once), ``silent`` (never reply, as a
hung server), ``late`` (reply after ``delay`` s), ``forget`` (UNKNOWN_HASH for
any handle it was not asked to open). ``stop()`` closes its socket, as a
killed server's connections close; ``start()`` binds the same path again.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import threading
import time

import msgpack
import zmq

from lrbridge.protocol import PROTOCOL_VERSION, encode

HASH = "a" * 64


class FakeReplica:
    def __init__(self, name: str, directory: str) -> None:
        self.name = name
        self.endpoint = f"ipc://{directory}/{name}.sock"
        self.mode = "answer"
        self.delay = 0.0
        self.known: set[str] = set()
        self.requests: list[dict] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    # -- life ------------------------------------------------------------------

    def start(self) -> "FakeReplica":
        self._stop.clear()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(5), f"{self.name} did not bind"
        return self

    def stop(self) -> None:
        """Close the socket: its peers see the connection go, unanswered requests are lost."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.known.clear()

    def types(self) -> list[str]:
        with self._lock:
            return [r["type"] for r in self.requests]

    # -- the server loop ---------------------------------------------------------

    def _serve(self, ready: threading.Event) -> None:
        sock = zmq.Context.instance().socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.endpoint)
        ready.set()
        later: list[tuple[float, list[bytes]]] = []
        try:
            while not self._stop.is_set():
                if sock.poll(5, zmq.POLLIN):
                    frames = sock.recv_multipart()
                    req = msgpack.unpackb(frames[-1], raw=False)
                    with self._lock:
                        self.requests.append(req)
                    reply = self._reply(req)
                    if reply is None:
                        continue
                    out = [*frames[:-1], encode(reply)]
                    if self.mode == "late":
                        later.append((time.monotonic() + self.delay, out))
                    else:
                        sock.send_multipart(out)
                now = time.monotonic()
                for item in [x for x in later if x[0] <= now]:
                    later.remove(item)
                    sock.send_multipart(item[1])
        finally:
            sock.close(linger=0)

    def _reply(self, req: dict) -> dict | None:
        if self.mode == "silent":
            return None
        head = {"v": PROTOCOL_VERSION, "id": req["id"], "replica": self.name}
        kind = req["type"]
        if kind == "hello":
            return {**head, "type": "hello", "protocol": PROTOCOL_VERSION}
        if kind == "open":
            self.known.add(HASH)
            return {
                **head, "type": "opened", "hash": HASH, "spec_hash": "e" * 64, "canonical": req["spec"],
                "kind": "deterministic", "momentum_key": None, "chainable": False, "groups": len(req["groups"]),
                "row_end": None, "max_rows": 65536, "first_row": 0,
                "group_keys": [{"lr": g["lr"], "initial_lr": g["lr"]} for g in req["groups"]], "attrs": {},
            }
        if kind == "window":
            if self.mode == "forget" and req["hash"] not in self.known:
                return {**head, "type": "error", "code": "UNKNOWN_HASH", "message": "unknown hash", "path": "hash"}
            start, count = int(req["start"]), int(req["count"])
            lr = [0.5 ** k for k in range(start, start + count)]
            return {
                **head, "type": "window", "hash": req["hash"], "start": start, "count": count, "groups": 1,
                "lr": struct.pack(f"<{count}d", *lr), "momentum": None,
            }
        return {**head, "type": "error", "code": "UNKNOWN_TYPE", "message": kind, "path": "type"}


class FakeReplicas:
    """``n`` fake replicas in one temp directory; all stopped by ``close()``."""

    def __init__(self, n: int) -> None:
        self.directory = tempfile.mkdtemp(prefix="lrbf-")
        self.replicas = [FakeReplica(f"r{i}", self.directory).start() for i in range(n)]

    def __getitem__(self, i: int) -> FakeReplica:
        return self.replicas[i]

    @property
    def endpoints(self) -> list[str]:
        return [r.endpoint for r in self.replicas]

    def close(self) -> None:
        for replica in self.replicas:
            replica.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def wait_connected(transport, i: int, timeout: float = 5.0) -> None:
    """Until ``transport``'s socket to replica ``i`` has a live connection."""
    deadline = time.monotonic() + timeout
    while not transport.replicas.connected(i):
        assert time.monotonic() < deadline, f"replica {i} never connected"
        time.sleep(0.005)
