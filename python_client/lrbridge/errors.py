"""Exceptions raised by the lrbridge client.

Every error the server can send back (proto/PROTOCOL.md, "error") maps to one
of these, so a caller never has to look at raw reply maps.
"""

from __future__ import annotations


class LRBridgeError(Exception):
    """Base class of every lrbridge error."""


class ServerUnavailable(LRBridgeError):
    """No reply from the schedule server within the Lazy Pirate deadline.

    The message names the endpoint, the number of attempts and the deadline,
    and says how to get a server running.
    """

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class AuthError(LRBridgeError):
    """The server refused this client's CURVE handshake: a key not in its
    allow-list, no key for a CURVE endpoint, or the wrong server key.

    Raised as soon as the socket monitor reports the failed handshake
    (``event``: ``HANDSHAKE_FAILED_AUTH``, ``_PROTOCOL`` or ``_NO_DETAIL``),
    not after the retry deadline: retrying cannot help.
    """

    def __init__(self, message: str, *, endpoint: str | None = None, event: str = "") -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.event = event


class SpecError(LRBridgeError, ValueError):
    """The spec breaks a rule. A ValueError, as torch raises for bad arguments.

    ``path`` names the offending field the way the server does
    (``schedulers[1].pct_start``); ``rule`` says what was wrong with it. When
    torch itself rejects the arguments, the message is torch's text and the
    exception is also an instance of torch's exception type (``py_type``).
    """

    py_type = "ValueError"

    def __init__(self, message: str, *, path: str = "", rule: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.rule = rule or message


# Python exception types the server may name (proto/PROTOCOL.md, `py`).
_PY_TYPES: dict[str, type] = {
    t.__name__: t
    for t in (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        ZeroDivisionError,
        OverflowError,
        RuntimeError,
        NotImplementedError,
        ArithmeticError,
    )
}
_SPEC_ERRORS: dict[str, type] = {"ValueError": SpecError}


def spec_error_class(py_type: str) -> type:
    """SpecError, also a ``py_type`` when torch raises something other than ValueError."""
    cls = _SPEC_ERRORS.get(py_type)
    if cls is None:
        base = _PY_TYPES.get(py_type, Exception)
        cls = _SPEC_ERRORS[py_type] = type("SpecError", (SpecError, base), {"py_type": py_type})
        cls.__module__ = __name__
    return cls


def py_exception(py: dict) -> BaseException:
    """The exception torch raises, from a reply's ``py: {type, message}``."""
    cls = _PY_TYPES.get(str(py.get("type")), RuntimeError)
    return cls(str(py.get("message", "")))


class ProtocolError(LRBridgeError):
    """An error reply other than SPEC_INVALID, or a reply that breaks the protocol.

    ``code`` is the server's error code (``BAD_REQUEST``, ``WRONG_KIND``, ...)
    or ``BAD_REPLY`` when the reply itself could not be understood.
    """

    def __init__(self, code: str, message: str, *, path: str | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.path = path


class BadRequest(ProtocolError, ValueError):
    """BAD_REQUEST: a field out of range, or the schedule refuses the step.

    A ValueError, as torch raises when e.g. OneCycleLR is stepped past
    ``total_steps`` ("Tried to step N times ...": the server's message).
    """


class UnknownHash(ProtocolError):
    """The server does not hold the handle (restarted or evicted).

    ``Client`` handles it by re-sending ``open``; callers only see it when the
    re-open itself is impossible.
    """


class ReplayPending(ProtocolError):
    """REPLAY_PENDING: the server simulated toward a far ``start`` for its
    per-request slice and kept the simulation where it got to.

    ``Client`` handles it by sending the same request again; callers only see
    it when the replay takes longer than ``Client.replay_deadline`` seconds.
    """


# --------------------------------------------------------------------------
# The registry (proto/PROTOCOL.md, "Registry errors")


class RegistryError(ProtocolError):
    """An error reply of the registry: the message names the ref and the rule."""


class BadRef(RegistryError, ValueError):
    """BAD_REF: a ref or name is malformed (``path`` names the field)."""


class UnknownRef(RegistryError, LookupError):
    """UNKNOWN_REF: the store holds no such name, version, alias or hash."""


class AliasConflict(RegistryError):
    """ALIAS_CONFLICT: a compare-and-set alias move lost; the message says where it points now."""


class Forbidden(RegistryError, PermissionError):
    """FORBIDDEN: publish/alias sent to a serving endpoint that does not take them.

    Send them to the admin endpoint (``LRBRIDGE_ADMIN_ENDPOINT`` or ``admin=``).
    """


class StoreUnavailable(RegistryError):
    """STORE_UNAVAILABLE: the server cannot reach or write its store. Retry later."""


REGISTRY_ERRORS: dict[str, type] = {
    "BAD_REF": BadRef,
    "UNKNOWN_REF": UnknownRef,
    "ALIAS_CONFLICT": AliasConflict,
    "FORBIDDEN": Forbidden,
    "STORE_UNAVAILABLE": StoreUnavailable,
}


class ScheduleChanged(LRBridgeError):
    """A checkpoint's schedule ref now resolves to another version.

    ``ref`` as written, ``pinned`` (the checkpoint's ``{name, version,
    spec_hash}``), ``current`` (what the ref resolves to now) and ``diff``
    (the server's diff reply, or None when it could not be had). Resume with
    ``on_change="checkpoint"`` (keep the pinned version) or ``"current"``
    (switch at the resume step).
    """

    def __init__(self, message: str, *, ref: str, pinned: dict, current: dict, diff: dict | None) -> None:
        super().__init__(message)
        self.ref = ref
        self.pinned = pinned
        self.current = current
        self.diff = diff


class UnpinnedRef(UserWarning):
    """A schedule ref without a version or alias (``@latest``): what it means can change."""
