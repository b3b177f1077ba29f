"""Heartbeats: where each run really is, for the server's live view.

A daemon thread wakes once a second, reads what ``step()`` already stored
(``last_epoch``, ``_last_lr``, the groups' momentum) and sends a small
``heartbeat`` message on its own DEALER socket to the scheduler's endpoint.
The server never answers it, so it takes no reply slot and cannot be
mistaken for another request's reply. ``step()`` itself does nothing
extra. A run that has not moved is re-announced every ``KEEPALIVE_S`` only,
and a scheduler that is collected, or a process that exits, says
``finished``.

``LRBRIDGE_HEARTBEAT=0`` turns heartbeats off.
"""

from __future__ import annotations

import atexit
import itertools
import os
import threading
import time
import weakref
from typing import Any

import zmq

from .protocol import request_body
from .transport import endpoint_list, open_socket
from .run import current_run

INTERVAL_S = 1.0
# Below the server's lost-after (15 s): a quiet run stays "running".
KEEPALIVE_S = 5.0
# At exit, how long the last (finished) heartbeats may wait to get out.
EXIT_LINGER_MS = 300

# The server keeps at most this many values per heartbeat (a view, not a record).
MAX_GROUPS = 64

_run_name: str | None = None


def set_run_name(name: str | None) -> None:
    """Name this process's run (else ``LRBRIDGE_RUN_NAME``, else ``host:pid script``)."""
    global _run_name
    _run_name = name


def heartbeat_message(run: dict, hash_: str, spec_hash: str, step: int, lr: list, momentum: list | None,
                      total: int | None, state: str, ref: str | None = None) -> dict:
    """The `heartbeat` message (PROTOCOL.md): no reply comes back."""
    msg = {
        "type": "heartbeat",
        "run": run,
        "hash": hash_,
        "spec_hash": spec_hash,
        "step": int(step),
        "lr": [float(v) for v in lr[:MAX_GROUPS]],
        "momentum": None if momentum is None else [float(v) for v in momentum[:MAX_GROUPS]],
        "total": None if total is None else int(total),
        "state": state,
    }
    if ref is not None:
        msg["ref"] = ref  # the server shows it, and the version it resolved the ref to
    return msg


def _value(v: Any) -> float:
    return float(v.item()) if hasattr(v, "item") else float(v)


# lr changes a heartbeat carries at most (older ones in a burst are dropped).
MAX_CHANGES = 16


def lr_changed(scheduler: Any, step: int, lr: list) -> None:
    """A metric-driven scheduler changed its lr at ``step``: the next heartbeat says so."""
    for w in _beats.watching(scheduler):
        w.changes.append({"step": int(step), "lr": [float(v) for v in lr[:MAX_GROUPS]]})
        del w.changes[:-MAX_CHANGES]


class _Watched:
    """One scheduler, read through its ``__dict__``: when the scheduler is
    collected its last position is still there to say ``finished`` with."""

    __slots__ = ("ref", "registry_ref", "state", "endpoint", "hash", "spec_hash", "total", "momentum_key", "sent_step", "sent_at", "final",
                 "changes", "metric")

    def __init__(self, scheduler: Any, endpoint: str, opened: Any) -> None:
        self.state: dict | None = scheduler.__dict__
        self.ref = weakref.ref(scheduler, self._collected)
        self.endpoint = endpoint
        self.hash = opened.hash
        self.spec_hash = opened.spec_hash
        resolved = getattr(opened, "resolved", None)
        self.registry_ref = str(resolved["ref"]) if isinstance(resolved, dict) and resolved.get("ref") else None
        row_end = getattr(opened, "row_end", None)
        self.total = None if row_end is None else max(0, int(row_end) - 1)
        self.momentum_key = getattr(opened, "momentum_key", None)
        self.sent_step: int | None = None
        self.sent_at = 0.0
        self.final: dict | None = None  # the finished message, once the scheduler is gone
        self.metric = getattr(opened, "kind", None) == "metric"
        self.changes: list[dict] = []  # lr changes not yet sent (metric-driven schedulers)

    def _collected(self, _ref: Any) -> None:
        try:
            self.final = self.read("finished")
        except Exception:
            self.final = None
        self.state = None  # let the optimizer (and the model) go

    def read(self, state: str = "running") -> dict | None:
        """The scheduler's position as ``step()`` left it; None when it is not a stepping one."""
        d = self.state
        if d is None or d.get("_inert") or "optimizer" not in d:
            return None
        groups = d["optimizer"].param_groups
        lr = [_value(v) for v in d.get("_last_lr") or [g["lr"] for g in groups]]
        momentum = None
        if self.momentum_key == "betas":
            momentum = [_value(g["betas"][0]) for g in groups if "betas" in g]
        elif self.momentum_key:
            momentum = [_value(g[self.momentum_key]) for g in groups if self.momentum_key in g]
        run = current_run(d.get("_run_name") or _run_name).to_wire()
        step = max(0, int(d.get("last_epoch", 0)))
        msg = heartbeat_message(run, self.hash, self.spec_hash, step, lr, momentum or None, self.total, state,
                                self.registry_ref)
        if self.metric:
            msg["changes"] = list(self.changes)
        return msg


class _Beats:
    """The process's heartbeat thread and its sockets (one DEALER per endpoint)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: list[_Watched] = []
        self._sockets: dict[str, zmq.Socket] = {}
        self._ids = itertools.count()
        self._keys: dict[str, Any] = {}  # endpoint -> the client's CURVE keys
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def watch(self, scheduler: Any, endpoint: str, opened: Any, keys: Any = None) -> None:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's thread and sockets are not ours
                self.__init__()  # type: ignore[misc]
            if keys is not None:
                self._keys[endpoint] = keys
            # A re-open (resume, new spec) replaces the scheduler's entry.
            before = [w for w in self._watched if w.ref() is scheduler]
            self._watched = [w for w in self._watched if w.ref() is not scheduler]
            entry = _Watched(scheduler, endpoint, opened)
            # A ref opens once; re-opens of the same content go by spec and still ran from that ref.
            if entry.registry_ref is None:
                entry.registry_ref = next((w.registry_ref for w in before if w.spec_hash == entry.spec_hash), None)
            self._watched.append(entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="lrbridge-heartbeat", daemon=True)
                self._thread.start()

    def watching(self, scheduler: Any) -> list[_Watched]:
        return [w for w in list(self._watched) if w.ref() is scheduler]

    def _loop(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            try:
                self.beat()
            except Exception:  # never let the live view hurt training
                pass

    def beat(self, final: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            watched = list(self._watched)
        gone = []
        for w in watched:
            if w.state is None:  # collected: say finished once, then forget it
                gone.append(w)
                if w.final is not None:
                    self._send(w.endpoint, w.final)
                continue
            try:
                msg = w.read("finished" if final else "running")
            except Exception:  # one scheduler in an odd state must not silence the others
                continue
            if msg is None or (not final and msg["step"] == w.sent_step and now - w.sent_at < KEEPALIVE_S):
                continue
            try:
                self._send(w.endpoint, msg)
            except Exception:
                continue
            w.sent_step, w.sent_at = msg["step"], now
            if msg.get("changes"):
                del w.changes[: len(msg["changes"])]
        if gone:
            with self._lock:
                self._watched = [w for w in self._watched if w not in gone]

    def _send(self, endpoint: str, msg: dict) -> None:
        sock = self._sockets.get(endpoint)
        if sock is None:
            # Replicas (a comma-separated list): the DEALER takes turns between them.
            first, *others = endpoint_list(endpoint)
            sock = open_socket(zmq.DEALER, first, curve=self._keys.get(endpoint))
            sock.setsockopt(zmq.SNDHWM, 16)
            for one in others:
                sock.connect(one)
            self._sockets[endpoint] = sock
        # A server older than heartbeats answers with an error: read and drop it.
        while sock.poll(0, zmq.POLLIN):
            sock.recv(zmq.NOBLOCK)
        try:
            sock.send(request_body(msg, next(self._ids)), zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # no server, or a full queue: the next beat says it again

    def finish(self) -> None:
        """Stop the thread, then say ``finished`` for every run still watched."""
        if self._pid != os.getpid() or self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=2 * INTERVAL_S)
        try:
            self.beat(final=True)
        except Exception:
            pass
        for sock in self._sockets.values():
            sock.close(linger=EXIT_LINGER_MS)
        self._sockets.clear()


_beats = _Beats()


def watch(scheduler: Any, client: Any, opened: Any) -> None:
    """Report ``scheduler``'s position to ``client``'s server from now on."""
    endpoint = getattr(client, "endpoint", "")
    if os.environ.get("LRBRIDGE_HEARTBEAT", "1") == "0" or not endpoint.startswith(("tcp://", "ipc://")):
        return
    if current_run().rank not in (None, 0):
        return  # the ranks of a job share one run id: rank 0 speaks for the run
    transport = getattr(client, "_transport", None)
    keys = getattr(transport, "_curve", None) or getattr(transport, "curve", None)  # CURVE servers take heartbeats too
    _beats.watch(scheduler, endpoint, opened, keys)


atexit.register(_beats.finish)
