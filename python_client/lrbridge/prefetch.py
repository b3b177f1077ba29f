"""Windows of schedule values ahead of time, so ``scheduler.step()`` never waits on the network.

``WindowStream`` holds one window of rows as Python tuples. Once half of it is
consumed it asks for the next window in a background thread, so in steady
state ``row(k)`` is a bounds check and a list index.

Fast path, for callers that inline it (``lr_scheduler.step``)::

    i = k - stream.lo
    if 0 <= i < stream.n:            # n == stream.hi - stream.lo
        lr = stream.lr_rows[i]       # tuple of floats, one per group
        mom = stream.mom_rows[i] if stream.mom_rows is not None else None
    else:
        lr, mom = stream.row(k)      # slow path: prefetch bookkeeping or a fetch

``[lo, hi)`` is the part of the buffer that needs no bookkeeping; it is
shorter than the buffer until the next window has been asked for.

The background fetches use one worker thread per process with its own Client
per endpoint (ZeroMQ sockets must stay in one thread). A failed prefetch is not
reported until its rows are needed; then the rows are fetched again in the
calling thread and, if that fails too, its error is raised there. Every wait is
bounded by the Lazy Pirate deadline (timeout × retries).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .client import Client, Opened, Window
from .errors import BadRequest

DEFAULT_WINDOW = 1024


def rows_of(window: Window) -> tuple[list[tuple[float, ...]], list[tuple[float, ...]] | None]:
    """Window → (lr rows, momentum rows) as tuples of Python floats (converted once)."""
    lr_rows = list(map(tuple, window.lr.tolist()))
    mom_rows = None if window.momentum is None else list(map(tuple, window.momentum.tolist()))
    return lr_rows, mom_rows


# --------------------------------------------------------------------------
# The background worker (one per process)


_worker_lock = threading.Lock()
_worker: ThreadPoolExecutor | None = None
_worker_clients = threading.local()


def _executor() -> ThreadPoolExecutor:
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lrbridge-prefetch")
        return _worker


def _reset_after_fork() -> None:
    # The worker thread does not exist in a forked child; its sockets must not be used.
    global _worker, _worker_clients
    _worker, _worker_clients = None, threading.local()


os.register_at_fork(after_in_child=_reset_after_fork)


def _worker_client(endpoint: str, timeout: float, retries: int) -> Client:
    """The worker thread's own Client for this endpoint and deadline."""
    clients = getattr(_worker_clients, "by_key", None)
    if clients is None:
        clients = _worker_clients.by_key = {}
    key = (endpoint, timeout, retries)
    if key not in clients:
        clients[key] = Client(endpoint, timeout=timeout, retries=retries)
    return clients[key]


def _fetch_in_worker(endpoint: str, timeout: float, retries: int, opened: Opened, start: int, count: int, origin):
    window = _worker_client(endpoint, timeout, retries).window(opened, start, count, origin)
    return window.start, rows_of(window)


# --------------------------------------------------------------------------
# The stream


class WindowStream:
    """Rows of a deterministic schedule from ``start_step`` on, fetched ``window`` rows at a time.

    ``end``: the first row not to ask for; None takes the server's
    ``opened.row_end`` (the first row the schedule refuses; None there means
    every row exists). Windows and prefetches never reach it (the last window
    is clamped); ``row(k)`` for ``k >= end`` asks the server for row k alone,
    which raises the schedule's own error (torch's OneCycleLR message, as
    BadRequest).
    """

    def __init__(
        self,
        client: Client,
        opened: Opened,
        start_step: int = 0,
        window: int = DEFAULT_WINDOW,
        origin: dict | None = None,
        end: int | None = None,
    ) -> None:
        if window < 2:
            raise ValueError(f"lrbridge: window must be >= 2 rows, got {window}")
        self.client = client
        self.opened = opened
        self.window = min(int(window), client.max_window)
        self.end = opened.row_end if end is None else int(end)
        self.origin = _copy_origin(origin)
        # Current buffer: rows [lo, lo + len(lr_rows)); fast range [lo, hi).
        self.lo = 0
        self.hi = 0
        self.n = 0
        self.lr_rows: list[tuple[float, ...]] = []
        self.mom_rows: list[tuple[float, ...]] | None = None
        self._buffer_end = 0
        self._next: Future | None = None  # the prefetch of [_next_start, ...)
        self._next_start = -1
        self._start_hint = int(start_step)

    # -- public --------------------------------------------------------------

    def row(self, k: int) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
        """(lr per group, momentum per group or None) after k ``step()`` calls."""
        i = k - self.lo
        if 0 <= i < self.n:
            return self.lr_rows[i], (None if self.mom_rows is None else self.mom_rows[i])
        self._make_available(k)
        i = k - self.lo
        return self.lr_rows[i], (None if self.mom_rows is None else self.mom_rows[i])

    def seek(self, k: int, origin: dict | None = None) -> None:
        """Forget the buffered rows: the next rows start at ``k``, continuing from ``origin`` if given.

        Used on resume (``load_state_dict``) and when the lrs were changed
        outside the scheduler (``origin = {step, lr}``, chainable schedules).
        """
        self.origin = _copy_origin(origin)
        self._install(int(k), [], None)
        self._drop_prefetch()
        self._start_hint = int(k)

    def prefetch(self) -> None:
        """Ask now for the rows a first ``row(start_step)`` will need (optional warm-up)."""
        if self.n == 0 and self._next is None:
            self._submit(self._start_hint)

    def close(self) -> None:
        self._drop_prefetch()

    # -- slow path -------------------------------------------------------------

    def _make_available(self, k: int) -> None:
        if self.end is not None and k >= self.end:
            self.client.window(self.opened, k, 1, self.origin)  # raises the schedule's error for row k
            raise IndexError(f"lrbridge: row {k} is past the end of this schedule (row {self.end})")
        if self.origin is not None and k <= self.origin["step"]:
            raise ValueError(
                f"lrbridge: row {k} is at or before the rebase point (step {self.origin['step']}); "
                "seek() to it without an origin"
            )
        if self.lo <= k < self._buffer_end:
            # Past the half-way mark of the current buffer: ask for the next one.
            self._submit(self._buffer_end)
            self.hi = self._buffer_end
            self.n = self.hi - self.lo
            return
        if self._next is not None and self._next_start <= k < self._next_start + self.window:
            if self._take_prefetched(k):
                return
        self._drop_prefetch()
        self._fetch_now(k)

    def _take_prefetched(self, k: int) -> bool:
        """Install the prefetched window if it covers k; on a failed prefetch, re-fetch here."""
        future, self._next = self._next, None
        try:
            start, (lr_rows, mom_rows) = future.result()  # bounded by the client's deadline
        except Exception as background_error:
            try:
                self._fetch_now(k)
            except Exception as error:
                raise error from background_error
            return True
        if not start <= k < start + len(lr_rows):
            return False
        self._install(start, lr_rows, mom_rows)
        return True

    def _count_from(self, start: int) -> int:
        """Rows to ask for from ``start``: a window, clamped to the schedule's end."""
        return self.window if self.end is None else min(self.window, self.end - start)

    def _fetch_now(self, k: int) -> None:
        count = self._count_from(k)
        try:
            window = self.client.window(self.opened, k, count, self.origin)
        except BadRequest:
            # A row the server could not foresee refusing (a user expression
            # that raises at some epoch) fails the whole window: take the rows
            # before it, or raise the schedule's own error for row k.
            window = _longest_window(self.client, self.opened, k, count, self.origin)
        lr_rows, mom_rows = rows_of(window)
        self._install(window.start, lr_rows, mom_rows)

    def _install(self, start: int, lr_rows: list, mom_rows: list | None) -> None:
        self.lr_rows, self.mom_rows = lr_rows, mom_rows
        self.lo = start
        self._buffer_end = start + len(lr_rows)
        # Until the next window is asked for, the fast range stops half-way.
        self.hi = start + (len(lr_rows) + 1) // 2
        self.n = self.hi - self.lo

    def _submit(self, start: int) -> None:
        if self._next is not None and self._next_start == start:
            return
        self._drop_prefetch()
        count = self._count_from(start)
        if count < 1:
            return  # nothing exists past the end
        c = self.client
        self._next_start = start
        self._next = _executor().submit(
            _fetch_in_worker, c.endpoint, c.timeout, c.retries, self.opened, start, count, self.origin
        )

    def _drop_prefetch(self) -> None:
        if self._next is not None:
            self._next.cancel()  # a running fetch finishes in the worker; its result is ignored
            self._next = None
            self._next_start = -1


def _longest_window(client: Client, opened: Opened, start: int, count: int, origin: dict | None) -> Window:
    """The longest window from ``start`` the schedule gives (bisection, ~log2(count) requests).

    Raises the BadRequest for ``start`` itself when not even that row exists.
    """
    good, good_count, bad_count = None, 0, count
    while bad_count - good_count > 1:
        middle = (good_count + bad_count) // 2
        try:
            good, good_count = client.window(opened, start, middle, origin), middle
        except BadRequest:
            bad_count = middle
    if good is None:
        return client.window(opened, start, 1, origin)  # raises the schedule's own error
    return good


def _copy_origin(origin: Any) -> dict | None:
    if origin is None:
        return None
    return {"step": int(origin["step"]), "lr": [float(v) for v in origin["lr"]]}
