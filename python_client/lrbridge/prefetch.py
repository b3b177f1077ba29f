"""Windows of schedule values ahead of time, so ``scheduler.step()`` never waits on the network.

``WindowStream`` holds one window of rows as flat ``array('d')`` buffers, the
reply's bytes copied once (~30 µs per MB): value ``(k - lo) * groups + g`` is
group g at row k, and indexing makes the Python float. An array is not
tracked by the garbage collector, so a window adds nothing to the GC's count
(a tuple per row did: 8192 tuples per window triggered full collections over
the user's whole heap, ~80 ms each), and installing one costs no per-value
conversion, so no single ``step()`` pays for a whole window.

Fast path, for callers that inline it (``Bridged.step``)::

    i = k - stream.lo
    if 0 <= i < stream.n:                      # n == stream.hi - stream.lo
        lr = stream.lr_flat[i * groups : (i + 1) * groups]
        mom = None if stream.mom_flat is None else stream.mom_flat[i * groups : ...]
    else:
        lr, mom = stream.row(k)                # slow path: the next window, or a fetch

A window is at most WINDOW_VALUES values per array (fewer rows with many
groups), so taking one off the socket stays well under a millisecond.

Prefetch: as soon as a window is installed, the next one is requested on the
stream's own DEALER socket (``PrefetchChannel``). The request travels and the
reply arrives on ZeroMQ's I/O thread while the caller steps; at the window's
end the reply is already waiting and is taken in the calling thread (decode
and copy, well under 1 ms). No Python thread is involved, so a tight loop of
``step()`` calls never waits on the GIL either. A prefetch that failed (no
reply within the client's timeout, or an error reply) is asked again through
the ``Client`` in the calling thread (Lazy Pirate retries, re-open after a
server restart), whose error, if any, is raised there.

A stream is used by one thread at a time (the training loop's).
"""

from __future__ import annotations

import sys
from array import array
from typing import Any

from .client import Client
from .protocol import Opened, Window, window_from_reply, window_message
from .errors import LRBridgeError, py_exception

DEFAULT_WINDOW = 1024
# Values per array in one window (rows x groups): 512 KiB, taken off the socket in ~0.2 ms.
WINDOW_VALUES = 65536


class _Pending:
    """A window request in flight on the prefetch channel."""

    __slots__ = ("start", "count", "request_id", "window")

    def __init__(self, start: int, count: int, request_id: int | None) -> None:
        self.start, self.count, self.request_id = start, count, request_id
        self.window: Window | None = None  # set once the reply is taken off the socket


class WindowStream:
    """Rows of a deterministic schedule from ``start_step`` on, fetched ``window`` rows at a time.

    ``end``: the first row not to ask for; None takes the server's
    ``opened.row_end`` (the first row the schedule refuses; None there means
    every row exists). Windows and prefetches never reach it (the last window
    is clamped); ``row(k)`` for ``k >= end`` asks the server for row k alone,
    which raises torch's exception there (the server's ``stop``). A window
    that ends early (``stop``: a user expression that raises at some epoch)
    ends the stream there too.
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
        self.groups = max(1, int(opened.groups))
        # One request per window, never more than the server answers in one piece.
        rows_cap = min(
            client.max_window,
            client.max_values // self.groups,
            WINDOW_VALUES // self.groups,
            opened.max_rows or client.max_window,
        )
        self.window = max(2, min(int(window), rows_cap))
        self.end = opened.row_end if end is None else int(end)
        self.origin = _copy_origin(origin)
        # The current window, rows [lo, hi): the fast range.
        self.lo = 0
        self.hi = 0
        self.n = 0
        self.lr_flat: array = array("d")
        self.mom_flat: array | None = None
        # Per-row attributes of the window (T_cur, T_i), and where torch raises ({row, py}).
        self.attrs: dict | None = None
        self.stop: dict | None = None
        self._channel = client.channel()
        self._next: _Pending | None = None
        self._start_hint = int(start_step)

    # -- public --------------------------------------------------------------

    def row(self, k: int) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
        """(lr per group, momentum per group or None) after k ``step()`` calls."""
        i = k - self.lo
        if not 0 <= i < self.n:
            self._make_available(k)
            i = k - self.lo
        g = self.groups
        j = i * g
        mom = self.mom_flat
        return tuple(self.lr_flat[j : j + g]), (None if mom is None else tuple(mom[j : j + g]))

    def row_attrs(self, k: int) -> dict:
        """Per-row scheduler attributes at row k (after ``row(k)``): {} for most schedules."""
        attrs = self.attrs
        if not attrs:
            return {}
        i = k - self.lo
        return {name: (float(v[i]) if v.ndim == 1 else v[i].tolist()) for name, v in attrs.items()}

    @property
    def lr_rows(self) -> "RowView":
        """The window's lr rows as tuples (``lr_rows[k - lo]``), for callers that want rows."""
        return RowView(self.lr_flat, self.groups)

    @property
    def mom_rows(self) -> "RowView | None":
        return None if self.mom_flat is None else RowView(self.mom_flat, self.groups)

    def seek(self, k: int, origin: dict | None = None) -> None:
        """Forget the buffered rows: the next rows start at ``k``, continuing from ``origin`` if given.

        Used on resume (``load_state_dict``) and when the lrs were changed
        outside the scheduler (``origin = {step, lr}``, chainable schedules).
        """
        self.origin = _copy_origin(origin)
        self._set_window(int(k), array("d"), None)
        self.stop = None  # it depends on the origin
        self._next = None  # its reply, if one comes, is skipped by id
        self._start_hint = int(k)

    def prefetch(self) -> None:
        """Ask now for the rows a first ``row(start_step)`` will need (optional warm-up)."""
        if self.n == 0 and self._next is None:
            self._submit(self._start_hint)

    def settle(self) -> bool:
        """Wait (up to the client's timeout) until the window in flight is in memory.

        Not needed for correctness; makes "the next window is here" a fact
        (before taking a server down, say). True when there is one in memory.
        """
        pending = self._next
        if pending is None:
            return False
        self._receive(pending, self.client.timeout)
        return pending.window is not None

    def close(self) -> None:
        self._next = None
        self._channel.close()

    # -- slow path -------------------------------------------------------------

    def _make_available(self, k: int) -> None:
        if self.stop is None and self.end is not None and k >= self.end:
            window = self.client.window(self.opened, k, 1, self.origin)  # the server says what torch raises there
            self.stop = window.stop
        if self.stop is not None and k >= int(self.stop["row"]):
            raise py_exception(self.stop["py"])
        if self.end is not None and k >= self.end:
            raise IndexError(f"lrbridge: row {k} is past the end of this schedule (row {self.end})")
        if self.origin is not None and k <= self.origin["step"]:
            raise ValueError(
                f"lrbridge: row {k} is at or before the rebase point (step {self.origin['step']}); "
                "seek() to it without an origin"
            )
        pending = self._next
        if pending is not None and pending.start <= k < pending.start + pending.count:
            self._next = None
            window = self._receive(pending, self.client.timeout)
            if window is not None:
                self._install(window)
                return
        self._next = None
        self._fetch_now(k)

    def _receive(self, pending: _Pending, timeout_s: float) -> Window | None:
        """The pending window, taken off the socket if it is not yet; None when it failed."""
        if pending.window is None and pending.request_id is not None:
            reply = self._channel.receive(pending.request_id, timeout_s)
            pending.request_id = None  # one try: a failure is asked again in the caller
            if reply is not None and reply.get("type") != "error":
                try:
                    window = window_from_reply(reply)
                except LRBridgeError:
                    window = None
                whole = window is not None and (window.count == pending.count or window.stop is not None)
                if whole and window.start == pending.start:
                    pending.window = window
        return pending.window

    def _count_from(self, start: int) -> int:
        """Rows to ask for from ``start``: a window, clamped to the schedule's end."""
        end = self.end if self.stop is None else int(self.stop["row"])
        return self.window if end is None else min(self.window, end - start)

    def _fetch_now(self, k: int) -> None:
        window = self.client.window(self.opened, k, self._count_from(k), self.origin)
        self._install(window)
        if window.count == 0:
            self._make_available(k)  # raises torch's exception for row k

    def _install(self, window: Window) -> None:
        """Make ``window`` current and ask for the window after it (none past a stop)."""
        momentum = None if window.momentum is None else _flat(window.momentum)
        self._set_window(window.start, _flat(window.lr), momentum)
        self.attrs = window.attrs
        if window.stop is not None:
            self.stop = window.stop
            return
        self._submit(self.hi)

    def _set_window(self, start: int, lr_flat: array, mom_flat: array | None) -> None:
        self.lr_flat, self.mom_flat = lr_flat, mom_flat
        self.lo = start
        self.hi = start + len(lr_flat) // self.groups
        self.n = self.hi - self.lo

    def _submit(self, start: int) -> None:
        count = self._count_from(start)
        if count < 1:
            self._next = None
            return  # nothing exists past the end
        msg = window_message(self.opened.hash, start, count, self.origin, self.opened.run)
        self._next = _Pending(start, count, self._channel.send(msg))


class RowView:
    """Rows of a flat list of per-group values, as tuples: ``view[i]`` is row i."""

    __slots__ = ("flat", "groups")

    def __init__(self, flat: list, groups: int) -> None:
        self.flat, self.groups = flat, groups

    def __getitem__(self, i: int) -> tuple:
        g = self.groups
        if not 0 <= i < len(self.flat) // g:
            raise IndexError(i)
        return tuple(self.flat[i * g : (i + 1) * g])

    def __len__(self) -> int:
        return len(self.flat) // self.groups


def _flat(values) -> array:
    """A count x groups float64 matrix as one flat native array('d'), row-major (one copy)."""
    flat = array("d")
    flat.frombytes(memoryview(values).cast("B"))
    if sys.byteorder != "little" and values.dtype.byteorder != "=":
        flat.byteswap()  # the wire is little-endian
    return flat


def _copy_origin(origin: Any) -> dict | None:
    if origin is None:
        return None
    copy: dict = {"step": int(origin["step"]), "lr": [float(v) for v in origin["lr"]]}
    if origin.get("attrs"):
        copy["attrs"] = {name: float(v) for name, v in origin["attrs"].items()}
    return copy
