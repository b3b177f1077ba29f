"""CURVE on tcp endpoints: the keys a client presents, and a rejected
handshake reported at once.

A server started with ``--curve-secret`` encrypts its tcp endpoints and admits
only the client public keys in its allow-list. The client needs the server's
public key (``LRBRIDGE_SERVER_KEY``: a ``.key`` file, or the 40-character Z85
text) and its own key pair (``LRBRIDGE_CLIENT_KEY``: a ``.key_secret`` file),
both in pyzmq's certificate format (``lrbridge keys`` writes them). ipc
endpoints are guarded by the file system and take no keys.

A refused handshake never produces a reply: without the socket monitor the
client would only see a timeout, retried until ServerUnavailable. ``Watch``
reads the monitor next to the socket and raises ``AuthError`` instead.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from dataclasses import dataclass

import zmq
import zmq.auth
from zmq.utils.monitor import recv_monitor_message

from .errors import AuthError

_Z85_KEY = re.compile(r"[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")

# A failed handshake with no detail is also what a server that dies mid-handshake
# looks like: only a second one in a row (the next reconnect, ~0.1 s later) counts.
_NO_DETAIL_IN_A_ROW = 2
_FAILED = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
_EVENTS = _FAILED | zmq.EVENT_HANDSHAKE_SUCCEEDED
_monitor_ids = itertools.count()


@dataclass(frozen=True)
class CurveKeys:
    """Z85 keys (bytes) a client socket presents to a CURVE server."""

    server_key: bytes
    public_key: bytes
    secret_key: bytes


def curve_keys(server_key: str | None = None, client_key: str | None = None) -> CurveKeys | None:
    """The keys from the arguments, else from LRBRIDGE_SERVER_KEY / LRBRIDGE_CLIENT_KEY; None without a server key.

    Without a client key pair, a fresh one is made: the connection is
    encrypted, and a server with an allow-list refuses it (AuthError).
    """
    server = server_key if server_key is not None else os.environ.get("LRBRIDGE_SERVER_KEY")
    client = client_key if client_key is not None else os.environ.get("LRBRIDGE_CLIENT_KEY")
    if not server:
        if client:
            raise ValueError("lrbridge: a client key (LRBRIDGE_CLIENT_KEY) needs the server's public key: set LRBRIDGE_SERVER_KEY")
        return None
    if client:
        public, secret = _load(client, "LRBRIDGE_CLIENT_KEY")
        if secret is None:
            raise ValueError(f"lrbridge: {client} holds no secret-key: LRBRIDGE_CLIENT_KEY takes the .key_secret file")
    else:
        public, secret = zmq.curve_keypair()
    return CurveKeys(server_key=_server_public(server), public_key=public, secret_key=secret)


def _server_public(value: str) -> bytes:
    if _Z85_KEY.fullmatch(value.strip()):
        return value.strip().encode()
    public, _secret = _load(value, "LRBRIDGE_SERVER_KEY")
    return public


def _load(path: str, what: str) -> tuple[bytes, bytes | None]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"lrbridge: {what}={path}: not a Z85 key or a readable certificate file ({exc})") from exc
    if not _Z85_KEY.fullmatch(public.decode("ascii", "replace")):
        raise ValueError(f"lrbridge: {what}={path}: its public-key is not a 40-character Z85 key")
    return public, secret


def use_keys(sock: zmq.Socket, endpoint: str, keys: CurveKeys | None) -> None:
    """Make ``sock`` a CURVE client of the server at ``endpoint`` (tcp only; ipc has no handshake)."""
    if keys is not None and endpoint.startswith("tcp://"):
        sock.setsockopt(zmq.CURVE_SERVERKEY, keys.server_key)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public_key)
        sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret_key)


class Watch:
    """A connected socket whose replies are awaited while its monitor reports failed handshakes.

    The monitor starts before the socket connects, so no handshake is missed;
    for ipc there is none (no CURVE there) and ``poll`` is a plain poll.
    """

    def __init__(self, kind: int, endpoint: str, keys: CurveKeys | None, **socket_options: int | bool) -> None:
        from .transport import open_socket  # transport imports this module

        self.socket = open_socket(kind, endpoint, curve=keys, connect=False, **socket_options)
        self._endpoint = endpoint
        self._keys = keys
        self._no_detail = 0
        self._refused: AuthError | None = None
        self._monitor: zmq.Socket | None = None
        if endpoint.startswith("tcp://"):
            # A name of our own: pyzmq's default (from the socket's fd) can still be
            # bound by a just-closed socket's monitor when a new socket reuses the fd.
            self._monitor = self.socket.get_monitor_socket(_EVENTS, f"inproc://lrbridge-monitor-{os.getpid()}-{next(_monitor_ids)}")
        self.socket.connect(endpoint)

    def poll(self, timeout_ms: int) -> bool:
        """True when the socket has a reply within ``timeout_ms``; AuthError when the server refused us."""
        if self._monitor is None:
            return bool(self.socket.poll(timeout_ms, zmq.POLLIN))
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            ready = dict(poller.poll(max(0, int((deadline - time.monotonic()) * 1000))))
            if self.socket in ready:
                return True
            if self._monitor in ready:
                self._read_events()
            elif time.monotonic() >= deadline:
                return False

    @property
    def monitor(self) -> zmq.Socket | None:
        """The monitor socket (None for ipc): readable when a handshake event came."""
        return self._monitor

    def refusal(self) -> AuthError | None:
        """The server's refusal of our last handshake, if its monitor reported one; never waits.

        A handshake that succeeds later (a reloaded allow-list) clears it.
        """
        if self._monitor is None:
            return None
        try:
            self._read_events()
        except AuthError as refused:
            self._refused = refused
        return self._refused

    def _read_events(self) -> None:
        while self._monitor.poll(0, zmq.POLLIN):
            event = recv_monitor_message(self._monitor)
            kind, value = event["event"], event["value"]
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._no_detail = 0
                self._refused = None
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                self._no_detail += 1
                if self._no_detail >= _NO_DETAIL_IN_A_ROW:
                    raise self._error("HANDSHAKE_FAILED_NO_DETAIL", value)
            elif kind & _FAILED:
                name = "HANDSHAKE_FAILED_AUTH" if kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH else "HANDSHAKE_FAILED_PROTOCOL"
                raise self._error(name, value)

    def _error(self, event: str, value: int) -> AuthError:
        if event == "HANDSHAKE_FAILED_AUTH":
            why = (
                f"the server refused this client's key {self._keys.public_key.decode() if self._keys else '?'} "
                f"(ZAP status {value}): it is not in the server's allow-list for this endpoint"
            )
        elif self._keys is None:
            why = "the handshake failed: the server requires CURVE; set LRBRIDGE_SERVER_KEY and LRBRIDGE_CLIENT_KEY"
        elif value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            why = "this server does not use CURVE: connect without LRBRIDGE_SERVER_KEY, or to its CURVE endpoint"
        else:
            why = (
                "the CURVE handshake failed: LRBRIDGE_SERVER_KEY is not this server's public key, "
                "or the server does not use CURVE"
            )
        return AuthError(f"lrbridge: {self._endpoint}: {why} ({event})", endpoint=self._endpoint, event=event)

    def close(self) -> None:
        """Closes the monitor and the socket."""
        if self._monitor is not None:
            try:
                self.socket.disable_monitor()
            except zmq.ZMQError:
                pass
            self._monitor.close(linger=0)
            self._monitor = None
        self.socket.close(linger=0)
