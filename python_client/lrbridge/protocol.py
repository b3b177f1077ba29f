"""Wire protocol v2 (proto/PROTOCOL.md) as values: the codec, the request
builders, and the replies parsed into ``Opened``/``Window`` or the exception
an `error` reply stands for. No sockets here (``transport.py``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from .errors import (
    REGISTRY_ERRORS,
    BadRequest,
    LRBridgeError,
    ProtocolError,
    ReplayPending,
    UnknownHash,
    py_exception,
    spec_error_class,
)

PROTOCOL_VERSION = 2


# --------------------------------------------------------------------------
# Encoding


def _to_plain(obj: Any) -> Any:
    """msgpack fallback for numpy scalars/arrays and 0-d tensors (`.item()`/`.tolist()`)."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"lrbridge cannot send a value of type {type(obj).__name__}: {obj!r}")


def encode(msg: dict) -> bytes:
    """One request body: a msgpack map, str as str, bytes as bin, no extensions."""
    return msgpack.packb(msg, use_bin_type=True, default=_to_plain)


def request_body(msg: dict, request_id: int) -> bytes:
    """The bytes of one request: ``v``, ``id``, then the message's own fields in order."""
    return encode({"v": PROTOCOL_VERSION, "id": request_id, **msg})


CLIENT_NAME = "lrbridge-python/0.1"


def hello_message() -> dict:
    return {"type": "hello", "client": CLIENT_NAME}


def open_message(
    spec: dict | None,
    groups: list[dict],
    client: str | None = None,
    last_epoch: int = -1,
    *,
    ref: str | None = None,
    run: dict | None = None,
    params: dict | None = None,
) -> dict:
    """`open` of a spec, or of a registry ``ref`` (exactly one, ``params`` with a ref to a
    module version); ``run``: the run identity to audit."""
    msg: dict[str, Any] = {"type": "open"}
    if ref is not None:
        msg["ref"] = ref
        if params is not None:
            msg["params"] = params
    else:
        msg["spec"] = spec
    msg["groups"] = groups
    if last_epoch != -1:
        msg["last_epoch"] = int(last_epoch)
    if client is not None:
        msg["client"] = client  # shown by `lrbridge top`; not part of the handle
    if run is not None:
        msg["run"] = run
    return msg


def client_label() -> str:
    """How this process shows up in the server's live view: host:pid script."""
    import socket
    import sys

    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    return f"{socket.gethostname()}:{os.getpid()} {script}"[:256]


def window_message(handle: str, start: int, count: int, origin: dict | None = None, run: str | None = None) -> dict:
    """`window`, or `rebase` when an origin is given (same reply; says what it means in logs).

    ``run``: the run id. The server records an origin (the one input of a
    window a replay cannot recompute) and, for a plain window, only how far the
    run got."""
    if origin is None:
        msg: dict[str, Any] = {"type": "window", "hash": handle, "start": int(start), "count": int(count)}
        if run is not None:
            msg["run"] = run
        return msg
    wire: dict[str, Any] = {"step": int(origin["step"]), "lr": [float(v) for v in origin["lr"]]}
    if origin.get("attrs"):
        wire["attrs"] = {name: float(v) for name, v in origin["attrs"].items()}
    msg = {"type": "rebase", "hash": handle, "start": int(start), "count": int(count), "origin": wire}
    if run is not None:
        msg["run"] = run
    return msg


def epoch_message(handle: str, epochs: list[float], lr: list[float] | None = None, run: str | None = None) -> dict:
    msg: dict[str, Any] = {"type": "epoch", "hash": handle, "epochs": [float(e) for e in epochs]}
    if lr is not None:
        msg["lr"] = [float(v) for v in lr]
    if run is not None:
        msg["run"] = run
    return msg


def metric_message(handle: str, state: dict, metric: float, run: str | None = None) -> dict:
    msg: dict[str, Any] = {"type": "metric", "hash": handle, "state": state, "metric": float(metric)}
    if run is not None:
        msg["run"] = run
    return msg


def decode(body: bytes) -> dict:
    """One reply body. Anything other than a map is a protocol violation."""
    try:
        reply = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError("BAD_REPLY", f"reply is not msgpack: {exc}") from exc
    if not isinstance(reply, dict):
        raise ProtocolError("BAD_REPLY", f"reply is a {type(reply).__name__}, not a map")
    return reply


def _floats(values: Any) -> list[float] | None:
    """msgpackr sends integer-valued floats as ints: turn them back into floats."""
    if values is None:
        return None
    return [float(v) for v in values]


def _matrix(blob: Any, count: int, groups: int, name: str) -> np.ndarray:
    """A `bin` of little-endian float64, row-major count × groups."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise ProtocolError("BAD_REPLY", f"'{name}' is a {type(blob).__name__}, expected bin")
    if len(blob) != 8 * count * groups:
        raise ProtocolError(
            "BAD_REPLY", f"'{name}' has {len(blob)} bytes, expected 8 x {count} rows x {groups} groups"
        )
    return np.frombuffer(blob, "<f8").reshape(count, groups)


def error_from_reply(reply: dict) -> LRBridgeError:
    """The exception an `error` reply stands for."""
    code = str(reply.get("code") or "UNKNOWN")
    message = str(reply.get("message") or "")
    path = reply.get("path")
    py = reply.get("py") if isinstance(reply.get("py"), dict) else None
    if code == "SPEC_INVALID":
        path = str(path or "")
        # torch's own text when torch rejects it; the server's rule otherwise.
        text = str(py["message"]) if py else message
        cls = spec_error_class(str(py["type"]) if py else "ValueError")
        return cls(text, path=path, rule=message)
    if code == "REFUSED" and py:
        exc = py_exception(py)
        exc.path = path  # type: ignore[attr-defined]
        return exc  # type: ignore[return-value]
    if code == "UNKNOWN_HASH":
        return UnknownHash(code, message, path=path)
    if code == "BAD_REQUEST":
        return BadRequest(code, message, path=path)
    if code == "REPLAY_PENDING":
        return ReplayPending(code, message, path=path)
    if code in REGISTRY_ERRORS:
        return REGISTRY_ERRORS[code](code, message, path=path)
    return ProtocolError(code, message, path=path)


# --------------------------------------------------------------------------
# Replies as values


@dataclass(frozen=True)
class Opened:
    """A spec bound to param groups on the server (`opened` reply).

    ``spec`` and ``group_inits`` are what was sent: any Client can re-open the
    handle from them after a server restart.
    """

    hash: str
    spec_hash: str
    canonical: Any
    kind: str
    momentum_key: str | None
    chainable: bool
    groups: int
    # first row the schedule refuses (OneCycleLR: total_steps + 1); None: every row exists
    row_end: int | None = None
    # deterministic torch schedules: the row construction leaves, the group keys it
    # leaves (lr = that row) and the scheduler attributes it sets
    first_row: int = 0
    group_keys: list | None = None
    attrs: dict = field(default_factory=dict)
    last_epoch: int = -1
    # most rows the server serves in one window of this handle (None: only the hello limits)
    max_rows: int | None = None
    # metric kind only: the values right after construction
    state: dict | None = None
    lr: list[float] | None = None
    momentum: list[float] | None = None
    spec: dict = field(default_factory=dict, repr=False, compare=False)
    group_inits: list = field(default_factory=list, repr=False, compare=False)
    # opened by ref: {ref, name, version, spec_hash, cached?}
    resolved: dict | None = None
    # the run id its rebase/epoch/metric requests carry (opened with a run)
    run: str | None = None


@dataclass(frozen=True)
class Window:
    """Rows [start, start+count): ``lr[k, g]`` is group g after start+k steps."""

    start: int
    count: int
    lr: np.ndarray
    momentum: np.ndarray | None
    # cyclic schedules: the steps in [start, start+count) where a cycle starts; None: no cycles
    cycle_starts: list[int] | None = None
    # per-row scheduler attributes (CosineAnnealingWarmRestarts: T_cur, T_i)
    attrs: dict | None = None
    # the rows end early: torch raises `py` at `row` ({row, py})
    stop: dict | None = None

    @property
    def groups(self) -> int:
        return self.lr.shape[1]


def opened_from_reply(reply: dict, spec: dict, groups: list) -> Opened:
    try:
        kind = str(reply["kind"])
        return Opened(
            hash=str(reply["hash"]),
            spec_hash=str(reply["spec_hash"]),
            canonical=reply.get("canonical"),
            kind=kind,
            momentum_key=reply.get("momentum_key"),
            chainable=bool(reply.get("chainable", False)),
            groups=int(reply["groups"]),
            row_end=None if reply.get("row_end") is None else int(reply["row_end"]),
            first_row=int(reply.get("first_row") or 0),
            group_keys=reply.get("group_keys"),
            attrs=dict(reply.get("attrs") or {}),
            max_rows=None if reply.get("max_rows") is None else int(reply["max_rows"]),
            state=reply.get("state") if kind == "metric" else None,
            lr=_floats(reply.get("lr")) if kind == "metric" else None,
            momentum=_floats(reply.get("momentum")) if kind == "metric" else None,
            spec=spec,
            group_inits=groups,
            resolved=reply.get("resolved") if isinstance(reply.get("resolved"), dict) else None,
        )
    except KeyError as exc:
        raise ProtocolError("BAD_REPLY", f"'opened' reply lacks {exc}") from exc


def window_from_reply(reply: dict) -> Window:
    try:
        start, count, groups = int(reply["start"]), int(reply["count"]), int(reply["groups"])
        lr = _matrix(reply["lr"], count, groups, "lr")
    except KeyError as exc:
        raise ProtocolError("BAD_REPLY", f"'window' reply lacks {exc}") from exc
    blob = reply.get("momentum")
    momentum = None if blob is None else _matrix(blob, count, groups, "momentum")
    starts = reply.get("cycle_starts")
    cycle_starts = None if starts is None else [int(s) for s in starts]
    raw_attrs = reply.get("attrs")
    attrs = None if raw_attrs is None else {k: _attr_rows(v, count, k) for k, v in raw_attrs.items()}
    return Window(start, count, lr, momentum, cycle_starts, attrs, reply.get("stop"))


def _attr_rows(blob: Any, count: int, name: str) -> np.ndarray:
    """A per-row attribute: one value per row (1-d), or several (one row each)."""
    width = len(blob) // (8 * count) if count and isinstance(blob, (bytes, bytearray, memoryview)) else 1
    rows = _matrix(blob, count, max(1, width), name)
    return rows[:, 0] if width == 1 else rows


def metric_from_reply(reply: dict) -> dict:
    """``{state, lr, momentum}`` of a `metric` reply, floats as floats."""
    try:
        return {"state": reply["state"], "lr": _floats(reply["lr"]), "momentum": _floats(reply.get("momentum"))}
    except KeyError as exc:
        raise ProtocolError("BAD_REPLY", f"'metric' reply lacks {exc}") from exc


def _concat(parts: list[Window]) -> Window:
    if len(parts) == 1:
        return parts[0]
    momentum = None if parts[0].momentum is None else np.concatenate([p.momentum for p in parts])
    cycle_starts = None if parts[0].cycle_starts is None else [s for p in parts for s in p.cycle_starts or ()]
    attrs = None if parts[0].attrs is None else {k: np.concatenate([p.attrs[k] for p in parts]) for k in parts[0].attrs}
    return Window(
        parts[0].start,
        sum(p.count for p in parts),
        np.concatenate([p.lr for p in parts]),
        momentum,
        cycle_starts,
        attrs,
        parts[-1].stop,
    )
