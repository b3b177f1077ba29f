"""Client of the lrbridge schedule server (wire protocol v2, proto/PROTOCOL.md).

One ``Client`` sends through one transport (``transport.py``: a ZeroMQ REQ
socket in lock-step with Lazy Pirate retries) and speaks the messages of
``protocol.py``. The server answers every request from its fields alone, so a
retried request is harmless and any server on the endpoint, including a
restarted one, gives the same values.

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
from dataclasses import replace
from typing import Any, Callable, TypeVar

from .errors import ProtocolError, ReplayPending, UnknownHash
from .protocol import (
    Opened,
    Window,
    _concat,
    client_label,
    epoch_message,
    error_from_reply,
    hello_message,
    metric_from_reply,
    metric_message,
    open_message,
    opened_from_reply,
    request_body,
    window_from_reply,
    window_message,
)
from .curve import curve_keys
from .transport import PrefetchChannel, connect, endpoint_list

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

    ``server_key`` (the server's ``.key`` file or Z85 public key) and
    ``client_key`` (this client's ``.key_secret`` file) default to
    LRBRIDGE_SERVER_KEY and LRBRIDGE_CLIENT_KEY: CURVE on tcp endpoints
    (``curve.py``); a refused handshake raises AuthError.
    """

    def __init__(
        self,
        endpoint: "str | list[str]",
        *,
        timeout: float | None = None,
        retries: int | None = None,
        revive: Callable[[], bool] | None = None,
        on_open: "Callable[[Client, Opened], None] | None" = None,
        transport: Any = None,
        server_key: str | None = None,
        client_key: str | None = None,
    ):
        # Several endpoints (a list, or one string with commas) are replicas: failover.py.
        self.endpoint = endpoint if isinstance(endpoint, str) else ",".join(endpoint_list(endpoint))
        # revive: called when a request got no reply (see ZmqTransport).
        if transport is None:
            on_tcp = any(e.startswith("tcp://") for e in endpoint_list(endpoint))
            transport = connect(endpoint, revive, curve_keys(server_key, client_key) if on_tcp else None)
        self._transport = transport
        self._on_open = on_open  # sees every schedule this client opens (the cross-rank check)
        self.timeout = float(timeout) if timeout is not None else _env_float("LRBRIDGE_TIMEOUT", DEFAULT_TIMEOUT_S)
        self.retries = int(retries) if retries is not None else _env_int("LRBRIDGE_RETRIES", DEFAULT_RETRIES)
        if self.timeout <= 0 or self.retries < 1:
            raise ValueError(f"lrbridge: timeout must be > 0 and retries >= 1, got {self.timeout}, {self.retries}")
        self.max_window = DEFAULT_MAX_WINDOW
        self.max_values = DEFAULT_MAX_VALUES
        self.replay_deadline = DEFAULT_REPLAY_DEADLINE_S
        self._ids = itertools.count()
        self._lock = threading.Lock()
        # hash -> (spec, groups, last_epoch): what re-opens a handle the server forgot
        self._opened: dict[str, tuple[dict, list, int]] = {}

    def __repr__(self) -> str:
        return f"Client({self.endpoint!r}, timeout={self.timeout}, retries={self.retries})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket; a later request opens a new one."""
        with self._lock:
            self._transport.close()

    def channel(self) -> PrefetchChannel:
        """A channel for requests answered later (one per window stream)."""
        return self._transport.channel()

    # -- one request -------------------------------------------------------

    def request(self, msg: dict) -> dict:
        """Send one request (adds ``v`` and ``id``) and return its reply map.

        Error replies become exceptions (SpecError, UnknownHash, ProtocolError);
        no reply after ``retries`` attempts of ``timeout`` seconds raises
        ServerUnavailable.
        """
        with self._lock:
            request_id = next(self._ids)
            reply = self._transport.exchange(request_body(msg, request_id), self.timeout, self.retries)
        if reply.get("type") == "error":
            raise error_from_reply(reply)
        if reply.get("id") != request_id:
            raise ProtocolError("BAD_REPLY", f"reply id {reply.get('id')!r} does not match request id {request_id}")
        return reply

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

    def open(
        self,
        spec: dict | None,
        groups: list[dict],
        last_epoch: int = -1,
        *,
        ref: str | None = None,
        run: dict | None = None,
        params: dict | None = None,
    ) -> Opened:
        """Bind ``spec`` to param groups as the constructor finds them:
        ``groups`` = [{lr, initial_lr?, momentum?, betas?, lr_dtype?}, ...], and its ``last_epoch``.

        ``ref``: open a registry ref instead of ``spec`` (the reply's canonical
        spec then re-opens the handle). ``params``: with a ref to a module
        version, laid over its params. ``run``: the run identity the server
        audits (``RunIdentity.to_wire``)."""
        reply = self.request(open_message(spec, groups, client_label(), last_epoch, ref=ref, run=run, params=params))
        if reply.get("type") != "opened":
            raise ProtocolError("BAD_REPLY", f"expected an 'opened' reply, got {reply.get('type')!r}")
        if ref is not None:
            spec = reply.get("canonical")
        opened = replace(
            opened_from_reply(reply, spec, groups), last_epoch=last_epoch, run=None if run is None else str(run["id"])
        )
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
        msg = window_message(opened.hash, start, count, origin, opened.run)
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
        msg = epoch_message(opened.hash, epochs, lr, opened.run)
        return self._with_reopen(opened, lambda: window_from_reply(self.request(msg)))

    def metric(self, opened: Opened, state: dict, metric: float) -> dict:
        """One ReduceLROnPlateau-style step: returns ``{state, lr, momentum}``."""
        msg = metric_message(opened.hash, state, metric, opened.run)
        return self._with_reopen(opened, lambda: metric_from_reply(self.request(msg)))


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


def resolve_client(server: "None | str | list[str] | Client") -> Client:
    """``server=`` as the schedulers take it: None, an endpoint string, a list of replicas, or a Client."""
    if server is None:
        return default_client()
    if isinstance(server, Client):
        return server
    if isinstance(server, (str, list, tuple)):
        return Client(server)
    raise TypeError(
        f"lrbridge: server must be None, an endpoint string, a list of endpoints or a Client, got {type(server).__name__}"
    )
