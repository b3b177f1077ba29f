"""Client of the lrbridge schedule server (wire protocol v2, proto/PROTOCOL.md).

One ``Client`` owns one ZeroMQ REQ socket and talks in lock-step with the
Lazy Pirate pattern (zguide ch. 4): send, poll with a timeout, and on timeout
throw the socket away (linger 0) and retry on a fresh one. The server answers
every request from its fields alone, so a retried request is harmless and any
server on the endpoint, including a restarted one, gives the same values.

A ``Client`` is not meant to be shared by threads that use it at the same time;
a lock makes such use safe but serial. Prefetch (``prefetch.py``) uses a
``PrefetchChannel``: its own DEALER socket, so a request can be in flight
while the caller goes on, with no thread of ours involved.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, TypeVar

import msgpack
import numpy as np
import zmq

from .errors import BadRequest, LRBridgeError, ProtocolError, ReplayPending, ServerUnavailable, UnknownHash, py_exception, spec_error_class

PROTOCOL_VERSION = 2
DEFAULT_TIMEOUT_S = 2.0
DEFAULT_RETRIES = 3
# Announced by the server in `hello`; the client splits larger windows.
DEFAULT_MAX_WINDOW = 65536
DEFAULT_MAX_VALUES = 1 << 20  # rows x groups in one reply
# A far resume of a replayed schedule arrives as REPLAY_PENDING slices; each is a
# live reply, so this only bounds a replay that makes no progress (its simulation
# evicted again and again).
DEFAULT_REPLAY_DEADLINE_S = 3600.0
# Re-opens in a row for one request: another client's opens may evict the handle
# between our open and our window.
REOPEN_ATTEMPTS = 5

_T = TypeVar("_T")


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


def open_message(spec: dict, groups: list[dict], client: str | None = None, last_epoch: int = -1) -> dict:
    msg: dict[str, Any] = {"type": "open", "spec": spec, "groups": groups}
    if last_epoch != -1:
        msg["last_epoch"] = int(last_epoch)
    if client is not None:
        msg["client"] = client  # shown by `lrbridge top`; not part of the handle
    return msg


def client_label() -> str:
    """How this process shows up in the server's live view: host:pid script."""
    import socket
    import sys

    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    return f"{socket.gethostname()}:{os.getpid()} {script}"[:256]


def window_message(handle: str, start: int, count: int, origin: dict | None = None) -> dict:
    """`window`, or `rebase` when an origin is given (same reply; says what it means in logs)."""
    if origin is None:
        return {"type": "window", "hash": handle, "start": int(start), "count": int(count)}
    return {
        "type": "rebase",
        "hash": handle,
        "start": int(start),
        "count": int(count),
        "origin": {"step": int(origin["step"]), "lr": [float(v) for v in origin["lr"]]},
    }


def epoch_message(handle: str, epochs: list[float], lr: list[float] | None = None) -> dict:
    msg: dict[str, Any] = {"type": "epoch", "hash": handle, "epochs": [float(e) for e in epochs]}
    if lr is not None:
        msg["lr"] = [float(v) for v in lr]
    return msg


def metric_message(handle: str, state: dict, metric: float) -> dict:
    return {"type": "metric", "hash": handle, "state": state, "metric": float(metric)}


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


# --------------------------------------------------------------------------
# The client


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


class Client:
    """Lock-step client with Lazy Pirate retries.

    ``timeout`` (seconds per attempt) and ``retries`` (attempts in all) default
    to the env vars LRBRIDGE_TIMEOUT (2.0) and LRBRIDGE_RETRIES (3): a dead
    server is reported after about ``timeout * retries`` seconds.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        revive: Callable[[], bool] | None = None,
        on_open: "Callable[[Client, Opened], None] | None" = None,
    ):
        self.endpoint = endpoint
        # Called when a request got no reply: restarts a server this process
        # owns if it died (True), or raises ServerUnavailable when it gives up.
        self._revive = revive
        self._on_open = on_open  # sees every schedule this client opens (the cross-rank check)
        self.timeout = float(timeout) if timeout is not None else _env_float("LRBRIDGE_TIMEOUT", DEFAULT_TIMEOUT_S)
        self.retries = int(retries) if retries is not None else _env_int("LRBRIDGE_RETRIES", DEFAULT_RETRIES)
        if self.timeout <= 0 or self.retries < 1:
            raise ValueError(f"lrbridge: timeout must be > 0 and retries >= 1, got {self.timeout}, {self.retries}")
        self.max_window = DEFAULT_MAX_WINDOW
        self.max_values = DEFAULT_MAX_VALUES
        self.replay_deadline = DEFAULT_REPLAY_DEADLINE_S
        self._ids = itertools.count()
        self._socket: zmq.Socket | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        # hash -> (spec, groups, last_epoch): what re-opens a handle the server forgot
        self._opened: dict[str, tuple[dict, list, int]] = {}

    def __repr__(self) -> str:
        return f"Client({self.endpoint!r}, timeout={self.timeout}, retries={self.retries})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- socket ------------------------------------------------------------

    def _fresh_socket(self) -> zmq.Socket:
        # Context.instance() is per process (pyzmq re-creates it after fork).
        sock = zmq.Context.instance().socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        return sock

    def _drop_socket(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def close(self) -> None:
        """Close the socket; a later request opens a new one."""
        with self._lock:
            if self._pid == os.getpid():
                self._drop_socket()
            self._socket = None

    # -- one request -------------------------------------------------------

    def request(self, msg: dict) -> dict:
        """Send one request (adds ``v`` and ``id``) and return its reply map.

        Error replies become exceptions (SpecError, UnknownHash, ProtocolError);
        no reply after ``retries`` attempts of ``timeout`` seconds raises
        ServerUnavailable.
        """
        with self._lock:
            if self._pid != os.getpid():
                # A forked child must not touch the parent's socket.
                self._socket, self._pid = None, os.getpid()
            request_id = next(self._ids)
            body = request_body(msg, request_id)
            reply = self._send_with_retries(body)
        if reply.get("type") == "error":
            raise error_from_reply(reply)
        if reply.get("id") != request_id:
            raise ProtocolError("BAD_REPLY", f"reply id {reply.get('id')!r} does not match request id {request_id}")
        return reply

    def _send_with_retries(self, body: bytes) -> dict:
        timeout_ms = max(1, int(self.timeout * 1000))
        started = time.monotonic()
        for _attempt in range(self.retries):
            if self._socket is None:
                self._socket = self._fresh_socket()
            self._socket.send(body)
            if self._socket.poll(timeout_ms, zmq.POLLIN):
                return decode(self._socket.recv())
            # REQ is now stuck waiting for a reply: only a new socket can send again.
            self._drop_socket()
            if self._revive is not None and self._revive():
                # A new server on the same endpoint: a full set of attempts
                # (handles it does not know are re-opened by the caller).
                return self._send_with_retries(body)
        raise ServerUnavailable(
            f"lrbridge: no reply from {self.endpoint} after {self.retries} attempts "
            f"of {self.timeout:g}s (deadline {self.retries * self.timeout:g}s, "
            f"waited {time.monotonic() - started:.2f}s). Is the server running? Start one with "
            f"`lrbridge serve --bind {self.endpoint}`, or leave server=None and "
            f"LRBRIDGE_ENDPOINT unset to let lrbridge start its own; "
            f"LRBRIDGE_TIMEOUT/LRBRIDGE_RETRIES set the deadline.",
            endpoint=self.endpoint,
        )

    def _with_reopen(self, opened: Opened, call: Callable[[], _T]) -> _T:
        """Run ``call``; if the server forgot the handle, re-open it and run it again.

        A few times in a row: under heavy open churn from other clients the
        handle can be evicted again before our request reaches it.
        """
        for _attempt in range(REOPEN_ATTEMPTS):
            try:
                return call()
            except UnknownHash:
                self._reopen(opened)
        return call()

    def _until_replayed(self, call: Callable[[], _T]) -> _T:
        """Run ``call`` again while the server answers REPLAY_PENDING (it continues each time)."""
        deadline = time.monotonic() + self.replay_deadline
        while True:
            try:
                return call()
            except ReplayPending:
                if time.monotonic() > deadline:
                    raise

    def _reopen(self, opened: Opened) -> None:
        spec, groups, last_epoch = self._opened.get(
            opened.hash, (opened.spec, opened.group_inits, opened.last_epoch)
        )
        if not spec:
            raise UnknownHash("UNKNOWN_HASH", f"the server forgot {opened.hash} and its spec is not known here")
        again = self.open(spec, groups, last_epoch)
        if again.hash != opened.hash:
            raise ProtocolError(
                "BAD_REPLY", f"re-opening gave hash {again.hash}, expected {opened.hash}: server version changed?"
            )

    # -- messages ----------------------------------------------------------

    def hello(self) -> dict:
        reply = self.request(hello_message())
        if "max_window" in reply:
            self.max_window = int(reply["max_window"])
        if "max_values" in reply:
            self.max_values = int(reply["max_values"])
        return reply

    def open(self, spec: dict, groups: list[dict], last_epoch: int = -1) -> Opened:
        """Bind ``spec`` to param groups as the constructor finds them:
        ``groups`` = [{lr, initial_lr?, momentum?, betas?, lr_dtype?}, ...], and its ``last_epoch``."""
        reply = self.request(open_message(spec, groups, client_label(), last_epoch))
        if reply.get("type") != "opened":
            raise ProtocolError("BAD_REPLY", f"expected an 'opened' reply, got {reply.get('type')!r}")
        opened = replace(opened_from_reply(reply, spec, groups), last_epoch=last_epoch)
        self._opened[opened.hash] = (spec, groups, last_epoch)
        if self._on_open is not None:
            self._on_open(self, opened)
        return opened

    def window(self, opened: Opened, start: int, count: int, origin: dict | None = None) -> Window:
        """Rows [start, start+count). ``origin = {step, lr}`` rebases a chainable schedule.

        Windows over the server's limits (``max_window`` rows, ``max_values``
        rows x groups) are fetched in pieces.
        """
        if count < 1 or start < 0:
            raise ValueError(f"lrbridge: window needs start >= 0 and count >= 1, got {start}, {count}")
        piece_rows = max(1, min(self.max_window, self.max_values // max(1, opened.groups), opened.max_rows or self.max_window))
        parts = []
        for piece_start in range(start, start + count, piece_rows):
            piece_count = min(piece_rows, start + count - piece_start)
            parts.append(self._window_piece(opened, piece_start, piece_count, origin))
            if parts[-1].stop is not None:
                break
        return _concat(parts)

    def _window_piece(self, opened: Opened, start: int, count: int, origin: dict | None) -> Window:
        msg = window_message(opened.hash, start, count, origin)
        window = self._with_reopen(opened, lambda: self._until_replayed(lambda: window_from_reply(self.request(msg))))
        if window.stop is not None and window.start == start and window.count < count:
            return window  # torch raises at window.stop["row"]: the caller decides when
        if window.start != start or window.count != count:
            raise ProtocolError(
                "BAD_REPLY", f"asked rows [{start}, {start + count}), got [{window.start}, {window.start + window.count})"
            )
        return window

    def cycle_starts(self, opened: Opened, lo: int, hi: int) -> list[int]:
        """Steps in [lo, hi) where a cycle of a cyclic schedule starts (step 0 starts the first).

        The server's own cycle arithmetic, so the boundaries agree with the
        values. Raises TypeError for a schedule without cycles. Windows are
        clamped to ``opened.row_end`` (a schedule has no cycles past its end).
        """
        hi = int(hi) if opened.row_end is None else min(int(hi), opened.row_end)
        if hi <= lo:
            return []
        window = self.window(opened, int(lo), hi - int(lo))
        if window.cycle_starts is None:
            raise TypeError(
                "lrbridge: this schedule reports no cycle boundaries: it is not cyclic, "
                "or the server is older than cycle reporting"
            )
        return window.cycle_starts

    def epoch(self, opened: Opened, epochs: list[float], lr: list[float] | None = None) -> Window:
        """torch's deprecated ``step(epoch)``: row k = state after ``step(epochs[k])``,
        starting from the group lrs ``lr`` when given (recursive forms)."""
        msg = epoch_message(opened.hash, epochs, lr)
        return self._with_reopen(opened, lambda: window_from_reply(self.request(msg)))

    def metric(self, opened: Opened, state: dict, metric: float) -> dict:
        """One ReduceLROnPlateau-style step: returns ``{state, lr, momentum}``."""
        msg = metric_message(opened.hash, state, metric)
        return self._with_reopen(opened, lambda: metric_from_reply(self.request(msg)))


# --------------------------------------------------------------------------
# Requests answered later


class PrefetchChannel:
    """Requests whose replies are picked up later, on one DEALER socket.

    ``send`` hands the request to ZeroMQ's I/O thread and returns at once;
    ``receive`` takes the reply when it is wanted. Neither needs a Python
    thread, so nothing waits for the GIL behind a busy training loop. Replies
    to requests nobody waits for any more (dropped by a seek) are skipped by
    id. There are no retries here: a request that got no reply, or an error
    reply, is the caller's cue to ask again through a ``Client`` (Lazy Pirate
    retries, re-open after a server restart). One user, one thread at a time.
    """

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._socket: zmq.Socket | None = None
        self._pid = os.getpid()
        self._ids = itertools.count()

    def send(self, msg: dict) -> int | None:
        """Queue one request; its id, or None when it could not even be queued."""
        if self._pid != os.getpid():
            # A forked child must not touch the parent's socket.
            self._socket, self._pid = None, os.getpid()
        if self._socket is None:
            self._socket = zmq.Context.instance().socket(zmq.DEALER)
            self._socket.setsockopt(zmq.LINGER, 0)
            self._socket.connect(self.endpoint)
        request_id = next(self._ids)
        try:
            self._socket.send(request_body(msg, request_id), zmq.NOBLOCK)
        except zmq.ZMQError:
            self.close()
            return None
        return request_id

    def receive(self, request_id: int, timeout_s: float) -> dict | None:
        """The reply map to ``request_id`` (error replies too), or None if none came within ``timeout_s``.

        A timeout closes the socket, so requests queued for a dead server go
        with it.
        """
        sock = self._socket
        if sock is None or self._pid != os.getpid():
            return None
        deadline = time.monotonic() + timeout_s
        while True:
            wait_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if not sock.poll(wait_ms, zmq.POLLIN):
                self.close()
                return None
            try:
                reply = decode(sock.recv())
            except ProtocolError:
                continue  # garbage: the caller asks again if its own reply never comes
            if reply.get("id") == request_id:
                return reply

    def close(self) -> None:
        if self._socket is not None and self._pid == os.getpid():
            self._socket.close(linger=0)
        self._socket = None


# --------------------------------------------------------------------------
# Which server


_default_lock = threading.Lock()
_default: Client | None = None
_default_pid: int | None = None


def check_ranks_once(client: Client, opened: Opened) -> None:
    from .distributed import check_ranks_once as check  # torch.distributed only when it is in use

    check(client, opened)


def default_client() -> Client:
    """The process's shared client: LRBRIDGE_ENDPOINT if set, else a private embedded server."""
    global _default, _default_pid
    with _default_lock:
        if _default is None or _default_pid != os.getpid():
            endpoint = os.environ.get("LRBRIDGE_ENDPOINT")
            if not endpoint:
                from . import embedded  # starts node only when it is needed

                _default = Client(**embedded.client_options(), on_open=check_ranks_once)
            else:
                _default = Client(endpoint, on_open=check_ranks_once)
            _default_pid = os.getpid()
        return _default


def resolve_client(server: "None | str | Client") -> Client:
    """``server=`` as the schedulers take it: None, an endpoint string, or a Client."""
    if server is None:
        return default_client()
    if isinstance(server, Client):
        return server
    if isinstance(server, str):
        return Client(server)
    raise TypeError(f"lrbridge: server must be None, an endpoint string or a Client, got {type(server).__name__}")
