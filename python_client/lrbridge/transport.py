"""How request bytes reach a server: Lazy Pirate on a REQ socket for requests
answered now, a DEALER ``PrefetchChannel`` for requests answered later.

``ZmqTransport`` is what a ``Client`` sends through; anything with the same
``exchange``/``channel``/``close`` methods can stand in for it (an in-process
server in unit tests). ``connect`` picks the transport for an endpoint string:
several comma-separated endpoints (replicas) get ``failover.FreelanceTransport``.

Every socket is made by ``open_socket``, so options that apply to all of them
go in one place.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Callable

import zmq

from .curve import CurveKeys, Watch, use_keys
from .errors import ProtocolError, ServerUnavailable
from .protocol import decode, request_body


def open_socket(
    kind: int,
    endpoint: str,
    *,
    immediate: bool = False,
    heartbeat_ms: int = 0,
    curve: CurveKeys | None = None,
    connect: bool = True,
) -> zmq.Socket:
    """A socket of type ``kind`` connected to ``endpoint`` (unless ``connect`` is False), linger 0.

    ``immediate`` (ZMQ_IMMEDIATE): messages queue only on a completed
    connection, so a send to a peer that is not there fails at once instead of
    waiting in a queue for it. ``heartbeat_ms``: ZMTP pings at that interval; a
    peer silent for three of them counts as disconnected (a machine that
    vanished without closing its connections). ``curve``: the client's CURVE
    keys, applied on tcp (curve.py).
    """
    # Context.instance() is per process (pyzmq re-creates it after fork).
    sock = zmq.Context.instance().socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    if immediate:
        sock.setsockopt(zmq.IMMEDIATE, 1)
    if heartbeat_ms > 0:
        sock.setsockopt(zmq.HEARTBEAT_IVL, heartbeat_ms)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * heartbeat_ms)
    use_keys(sock, endpoint, curve)
    if connect:
        sock.connect(endpoint)
    return sock


def endpoint_list(endpoint: "str | list[str] | tuple[str, ...]") -> list[str]:
    """``tcp://a:5555,tcp://b:5555`` (or a list of endpoints) as a list; empty items dropped."""
    items = endpoint.split(",") if isinstance(endpoint, str) else list(endpoint)
    endpoints = [item.strip() for item in items if item and item.strip()]
    if not endpoints:
        raise ValueError(f"lrbridge: no endpoint in {endpoint!r}")
    return endpoints


def connect(
    endpoint: "str | list[str] | tuple[str, ...]",
    revive: Callable[[], bool] | None = None,
    curve: CurveKeys | None = None,
):
    """The transport for ``endpoint``: Lazy Pirate for one server, Freelance failover for several.

    With ``revive`` (a server this process started) the endpoint is taken whole.
    ``curve``: the client's keys for tcp endpoints.
    """
    if revive is not None and isinstance(endpoint, str):
        return ZmqTransport(endpoint, revive, curve)
    endpoints = endpoint_list(endpoint)
    if len(endpoints) == 1:
        return ZmqTransport(endpoints[0], revive, curve)
    from .failover import FreelanceTransport

    return FreelanceTransport(endpoints, curve)


class ZmqTransport:
    """Lock-step REQ with Lazy Pirate retries (zguide ch. 4): send, poll with a
    timeout, and on timeout throw the socket away (linger 0) and retry on a
    fresh one. The server answers every request from its fields alone, so a
    retried request is harmless."""

    def __init__(self, endpoint: str, revive: Callable[[], bool] | None = None, curve: CurveKeys | None = None) -> None:
        self.endpoint = endpoint
        self._curve = curve  # CURVE keys for tcp (curve.py); a refused handshake raises AuthError
        self._watch: Watch | None = None
        # Called when a request got no reply: restarts a server this process
        # owns if it died (True), or raises ServerUnavailable when it gives up.
        self._revive = revive
        self._socket: zmq.Socket | None = None
        self._pid = os.getpid()

    def _fresh_socket(self) -> zmq.Socket:
        self._watch = Watch(zmq.REQ, self.endpoint, self._curve)
        return self._watch.socket

    def _drop_socket(self) -> None:
        if self._socket is not None:
            self._watch.close()
            self._socket = self._watch = None

    def close(self) -> None:
        """Close the socket; a later request opens a new one."""
        if self._pid == os.getpid():
            self._drop_socket()
        self._socket = self._watch = None

    def channel(self) -> "PrefetchChannel":
        return PrefetchChannel(self.endpoint, self._curve)

    def exchange(self, body: bytes, timeout: float, retries: int) -> dict:
        """The decoded reply to ``body``; ServerUnavailable after ``retries`` silent attempts of ``timeout`` s."""
        if self._pid != os.getpid():
            # A forked child must not touch the parent's socket.
            self._socket, self._watch, self._pid = None, None, os.getpid()
        timeout_ms = max(1, int(timeout * 1000))
        started = time.monotonic()
        for _attempt in range(retries):
            if self._socket is None:
                self._socket = self._fresh_socket()
            self._socket.send(body)
            try:
                replied = self._watch.poll(timeout_ms)
            except BaseException:
                self._drop_socket()  # AuthError or Ctrl-C: a REQ left waiting could never send again
                raise
            if replied:
                return decode(self._socket.recv())
            # REQ is now stuck waiting for a reply: only a new socket can send again.
            self._drop_socket()
            if self._revive is not None and self._revive():
                # A new server on the same endpoint: a full set of attempts
                # (handles it does not know are re-opened by the caller).
                return self.exchange(body, timeout, retries)
        raise ServerUnavailable(
            f"lrbridge: no reply from {self.endpoint} after {retries} attempts "
            f"of {timeout:g}s (deadline {retries * timeout:g}s, "
            f"waited {time.monotonic() - started:.2f}s). Is the server running? Start one with "
            f"`lrbridge serve --bind {self.endpoint}`, or leave server=None and "
            f"LRBRIDGE_ENDPOINT unset to let lrbridge start its own; "
            f"LRBRIDGE_TIMEOUT/LRBRIDGE_RETRIES set the deadline.",
            endpoint=self.endpoint,
        )



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

    def __init__(self, endpoint: str, curve: CurveKeys | None = None) -> None:
        self.endpoint = endpoint
        self._curve = curve
        self._socket: zmq.Socket | None = None
        self._pid = os.getpid()
        self._ids = itertools.count()

    def send(self, msg: dict) -> int | None:
        """Queue one request; its id, or None when it could not even be queued."""
        if self._pid != os.getpid():
            # A forked child must not touch the parent's socket.
            self._socket, self._pid = None, os.getpid()
        if self._socket is None:
            self._socket = open_socket(zmq.DEALER, self.endpoint, curve=self._curve)
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

