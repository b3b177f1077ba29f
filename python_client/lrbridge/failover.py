"""Several replicas of the server behind one client: zguide's Freelance pattern (ch. 4).

``LRBRIDGE_ENDPOINT=tcp://a:5555,tcp://b:5555`` (or a list) gives a client
one DEALER socket per replica, each with ZMQ_IMMEDIATE, so a send to a replica
with no live connection fails at once and goes to the next one. Every reply
is matched by its ``id``: a late reply from a slow or dead replica to an
earlier request is read and dropped.

A request goes to the replica that answered last (it holds the handles this
client opened, and the re-open after an UNKNOWN_HASH reaches the replica that
sent it); clients start at a random replica, which spreads them out. A request
with no reply within the per-attempt timeout, or whose replica's connection
went away while it waited, is sent again to the next live replica; after
``retries`` attempts the client raises ServerUnavailable naming every replica.

On tcp each socket's monitor watches its CURVE handshakes: a replica that
refuses our keys is passed over, and a client every replica refuses raises
AuthError at once instead of retrying into ServerUnavailable.

Any replica gives the same answer to the same request, so resending is
harmless and any reply with the right id is the answer. A replica that does
not hold a handle answers UNKNOWN_HASH and the ``Client`` re-opens it there.

One socket per replica rather than one socket connected to all: a DEALER
connected to several peers sends round-robin and cannot say which peer gets
a message or which one answered, and both are needed here.
"""

from __future__ import annotations

import io
import itertools
import os
import random
import time
from typing import Any

import msgpack
import zmq

from .errors import AuthError, ProtocolError, ServerUnavailable
from .protocol import decode, request_body
from .curve import CurveKeys, Watch

# How often a wait checks that its replica is still connected: a replica that
# died with our request costs about this much, not a whole timeout.
LOST_CHECK_S = 0.02
# ZMTP heartbeats: a replica whose machine vanished (no FIN) is dropped after 3 of these.
HEARTBEAT_MS = 1000
# New sockets connect in parallel: the replica a client prefers gets this long
# to finish connecting before the first request goes to whichever did first.
CONNECT_GRACE_S = 0.1
# Requests a channel remembers for resending (a stream waits for its newest one).
CHANNEL_REMEMBERS = 8

LOST = object()  # the replica's connection went away while we waited for its reply


def request_id(body: bytes) -> Any:
    """The ``id`` of an encoded request, read without decoding the rest of it."""
    unpacker = msgpack.Unpacker(io.BytesIO(body), read_size=64, raw=False)
    for _ in range(unpacker.read_map_header()):
        if unpacker.unpack() == "id":
            return unpacker.unpack()
        unpacker.skip()
    return None


class Replicas:
    """One DEALER per endpoint (made on first use, again after a fork)."""

    def __init__(self, endpoints: list[str], curve: "CurveKeys | None" = None) -> None:
        self.endpoints = list(endpoints)
        self.curve = curve  # the client's CURVE keys, for tcp replicas
        self._sockets: list[zmq.Socket] = []
        self._watches: list[Watch] = []  # each socket with its handshake monitor (tcp)
        self._poller: zmq.Poller | None = None
        self._pid = os.getpid()
        self._connecting = False  # sockets made, no request sent yet

    def __len__(self) -> int:
        return len(self.endpoints)

    def sockets(self) -> list[zmq.Socket]:
        if self._pid != os.getpid():
            # A forked child must not touch the parent's sockets.
            self._sockets, self._watches, self._poller, self._pid = [], [], None, os.getpid()
        if not self._sockets:
            self._watches = [
                Watch(zmq.DEALER, endpoint, self.curve, immediate=True, heartbeat_ms=HEARTBEAT_MS)
                for endpoint in self.endpoints
            ]
            self._sockets = [watch.socket for watch in self._watches]
            self._poller = zmq.Poller()
            for sock in self._sockets:
                self._poller.register(sock, zmq.POLLIN)
            self._connecting = True
        return self._sockets

    def refusals(self) -> list[AuthError]:
        """The replicas that refused our handshake (CURVE), as AuthErrors; never waits."""
        found = (watch.refusal() for watch in self._watches)
        return [refused for refused in found if refused is not None]

    def send(self, body: bytes, first: int, deadline: float) -> int | None:
        """Send ``body`` to the first connected replica from ``first`` on; its index.

        Waits until ``deadline`` for some replica to be connected; None if none
        was. A replica that refused our keys is passed over while another one
        may still take the request; AuthError when every replica refused, or
        when the deadline comes with none connected and one of them refused
        (a refused handshake never turns into a connection by waiting).
        """
        socks = self.sockets()
        n = len(socks)
        if self._connecting:
            self._connecting = False
            grace = min(CONNECT_GRACE_S, deadline - time.monotonic())  # none for a send that must not wait
            if grace > 0:
                socks[first % n].poll(int(grace * 1000), zmq.POLLOUT)
        order = [(first + k) % n for k in range(n)]
        while True:
            for i in order:
                try:
                    socks[i].send(body, zmq.NOBLOCK)
                    return i
                except zmq.Again:
                    continue  # no completed connection to this replica
            refused = self.refusals()
            left = deadline - time.monotonic()
            if refused and (len(refused) == n or left <= 0):
                raise refused[0]
            if left <= 0:
                return None
            writable = zmq.Poller()
            for watch in self._watches:
                writable.register(watch.socket, zmq.POLLOUT)
                if watch.monitor is not None:
                    writable.register(watch.monitor, zmq.POLLIN)  # a refusal wakes us
            writable.poll(max(1, int(left * 1000)))

    def send_to(self, i: int, body: bytes) -> bool:
        """Send ``body`` to replica ``i`` if it is connected; whether it was sent."""
        try:
            self.sockets()[i].send(body, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def connected(self, i: int) -> bool:
        """Whether replica ``i`` has a live connection (a send to it would be queued)."""
        return bool(self.sockets()[i].getsockopt(zmq.EVENTS) & zmq.POLLOUT)

    def wait(self, request_id: Any, target: int | None, deadline: float) -> "tuple[dict, int] | object | None":
        """(reply, replica index) for ``request_id`` from any replica; None at the
        deadline; LOST when ``target``'s connection went away (our request with it).

        Replies to other ids (late answers to earlier requests) are dropped.
        """
        socks = self.sockets()
        while True:
            left = deadline - time.monotonic()
            # Past the deadline, one look without waiting: a reply that came while
            # this thread waited for the GIL is still taken.
            ready = dict(self._poller.poll(int(min(max(left, 0.0), LOST_CHECK_S) * 1000)))
            for i, sock in enumerate(socks):
                if sock not in ready:
                    continue
                while True:
                    try:
                        raw = sock.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    try:
                        reply = decode(raw)
                    except ProtocolError:
                        continue  # garbage: our reply, if it comes, is another message
                    if reply.get("id") == request_id:
                        return reply, i
            if left <= 0:
                return None
            if target is not None and not self.connected(target):
                return LOST

    def close(self) -> None:
        if self._pid == os.getpid():
            for watch in self._watches:
                watch.close()
        self._sockets, self._watches, self._poller = [], [], None


class FreelanceTransport:
    """A ``Client``'s transport over several replicas (same interface as ``ZmqTransport``)."""

    def __init__(self, endpoints: list[str], curve: "CurveKeys | None" = None) -> None:
        self.endpoints = list(endpoints)
        self.endpoint = ",".join(self.endpoints)
        self.curve = curve
        self.replicas = Replicas(self.endpoints, curve)
        # Where the next request goes first: the replica that answered last.
        self.preferred = random.randrange(len(self.endpoints))

    def exchange(self, body: bytes, timeout: float, retries: int) -> dict:
        """The decoded reply to ``body`` from some replica; ServerUnavailable after ``retries`` failed attempts."""
        rid = request_id(body)
        n = len(self.replicas)
        started = time.monotonic()
        for _attempt in range(retries):
            deadline = time.monotonic() + timeout
            target = self.replicas.send(body, self.preferred, deadline)
            if target is None:
                continue  # no replica connected for a whole attempt
            got = self.replicas.wait(rid, target, deadline)
            if isinstance(got, tuple):
                reply, self.preferred = got
                return reply
            self.preferred = (target + 1) % n  # timed out or lost: the next replica first
        raise ServerUnavailable(
            f"lrbridge: no reply from any of the {n} replicas ({self.endpoint}) after {retries} attempts "
            f"of {timeout:g}s (waited {time.monotonic() - started:.2f}s). Are the servers running? "
            f"Start them with `lrbridge serve --bind ENDPOINT`; LRBRIDGE_TIMEOUT/LRBRIDGE_RETRIES "
            f"set the deadline.",
            endpoint=self.endpoint,
        )

    def channel(self) -> "FreelanceChannel":
        return FreelanceChannel(self)

    def close(self) -> None:
        self.replicas.close()


class FreelanceChannel:
    """``PrefetchChannel`` over several replicas: requests answered later, resent on failure.

    A request goes to the replica the client's transport prefers (the one that
    holds its handles). ``receive`` waits up to ``timeout_s`` per attempt and
    sends the request again to the next live replica when it got no reply or
    its replica's connection went away, trying each replica once; then it
    returns None and the caller asks through its ``Client``.
    """

    def __init__(self, transport: FreelanceTransport) -> None:
        self._transport = transport
        self.endpoint = transport.endpoint
        self.replicas = Replicas(transport.endpoints, transport.curve)
        self._ids = itertools.count()
        self._sent: dict[int, tuple[bytes, int | None]] = {}  # request id -> (body, replica it went to)
        self.replicas.sockets()  # connecting while the first window is fetched

    def send(self, msg: dict) -> int:
        """Send one request to the client's replica without waiting; its id.

        When that replica is not connected (yet, or any more), ``receive``
        sends the request, to the first live replica.
        """
        rid = next(self._ids)
        body = request_body(msg, rid)
        target = self._transport.preferred
        self._sent[rid] = (body, target if self.replicas.send_to(target, body) else None)
        while len(self._sent) > CHANNEL_REMEMBERS:
            del self._sent[next(iter(self._sent))]
        return rid

    def receive(self, request_id: int, timeout_s: float) -> dict | None:
        """The reply map to ``request_id`` (error replies too), or None if no replica answered."""
        sent = self._sent.pop(request_id, None)
        if sent is None:
            return None
        body, target = sent
        if target is None:
            preferred = self._transport.preferred
            if self._transport.replicas.connected(preferred):
                # The client's replica is up: this channel's own connection to it is on its way.
                self.replicas.sockets()[preferred].poll(int(timeout_s * 1000), zmq.POLLOUT)
            target = self.replicas.send(body, preferred, time.monotonic() + timeout_s)
            if target is None:
                return None
        for tried in range(1, len(self.replicas) + 1):
            got = self.replicas.wait(request_id, target, time.monotonic() + timeout_s)
            if isinstance(got, tuple):
                reply, self._transport.preferred = got  # an UNKNOWN_HASH is re-opened where it came from
                return reply
            if tried == len(self.replicas):
                break
            target = self.replicas.send(body, (target + 1) % len(self.replicas), time.monotonic() + timeout_s)
            if target is None:
                break
        return None

    def close(self) -> None:
        self._sent.clear()
        self.replicas.close()
