"""An in-process stand-in for the schedule server, for unit tests of the client logic.

It answers the protocol's messages (hello, open, window, rebase) from rows
given up front, through the real codec (``lrbridge.protocol``): requests are
decoded from their bytes and replies encoded and decoded again
(``fake_transport.py``), so what the client sees has crossed the same msgpack
a socket would carry.

Rebase answers as a multiplicative schedule: the rows after ``origin`` keep
their ratios to row ``origin.step`` (the recursive form of StepLR/ExponentialLR).
"""

from __future__ import annotations

import numpy as np
from fake_transport import FakeTransport

from lrbridge.protocol import PROTOCOL_VERSION

HASH = "f" * 64


class FakeServer(FakeTransport):
    def __init__(
        self,
        lr: np.ndarray,
        momentum: np.ndarray | None = None,
        *,
        momentum_key: str | None = None,
        chainable: bool = False,
        max_window: int = 65536,
    ) -> None:
        super().__init__()
        self.lr = np.asarray(lr, dtype=float).reshape(len(lr), -1)
        self.momentum = None if momentum is None else np.asarray(momentum, dtype=float).reshape(self.lr.shape)
        self.momentum_key = momentum_key
        self.chainable = chainable
        self.max_window = max_window
        self.known: set[str] = set()

    def forget(self) -> None:
        """As after a restart: every handle is unknown until opened again."""
        self.known.clear()

    # -- the protocol ------------------------------------------------------------

    def answer(self, req: dict) -> dict:
        self.requests.append(req)
        head = {"v": PROTOCOL_VERSION, "id": req["id"]}
        kind = req["type"]
        if kind == "hello":
            return {**head, "type": "hello", "protocol": PROTOCOL_VERSION, "max_window": self.max_window, "max_values": 1 << 20}
        if kind == "open":
            return {**head, **self._opened(req)}
        if kind in ("window", "rebase"):
            if req["hash"] not in self.known:
                return {**head, "type": "error", "code": "UNKNOWN_HASH", "message": "unknown hash", "path": "hash"}
            return {**head, **self._window(req)}
        return {**head, "type": "error", "code": "UNKNOWN_TYPE", "message": f"no {kind!r} here", "path": "type"}

    def _opened(self, req: dict) -> dict:
        groups = req["groups"]
        if len(groups) != self.lr.shape[1]:
            return {"type": "error", "code": "BAD_REQUEST", "message": "group count", "path": "groups"}
        self.known.add(HASH)
        keys = [{"lr": float(self.lr[0, g]), "initial_lr": float(self.lr[0, g])} for g in range(len(groups))]
        return {
            "type": "opened", "hash": HASH, "spec_hash": "e" * 64, "canonical": req["spec"], "kind": "deterministic",
            "momentum_key": self.momentum_key, "chainable": self.chainable, "groups": len(groups),
            "row_end": len(self.lr), "max_rows": self.max_window, "first_row": 0, "group_keys": keys, "attrs": {},
        }

    def _window(self, req: dict) -> dict:
        start, count = int(req["start"]), int(req["count"])
        count = min(count, len(self.lr) - start)
        lr = self.lr[start : start + count]
        if "origin" in req:
            step, at = int(req["origin"]["step"]), np.asarray(req["origin"]["lr"], dtype=float)
            lr = lr / self.lr[step] * at
        mom = None if self.momentum is None else self.momentum[start : start + count]
        return {
            "type": "window", "hash": req["hash"], "start": start, "count": count, "groups": self.lr.shape[1],
            "lr": lr.astype("<f8").tobytes(), "momentum": None if mom is None else mom.astype("<f8").tobytes(),
        }
