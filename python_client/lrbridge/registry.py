"""The schedule registry from Python: named, immutable versions, aliases, audit.

    v = lrbridge.publish("team/cosine", spec, message="longer warmup")   # admin
    lrbridge.alias("team/cosine", "prod", v.version, expect=v.version - 1)  # admin
    lrbridge.resolve("team/cosine@prod")        # -> Version(name, version, spec_hash, canonical, ...)
    sched = lrbridge.Schedule(optimizer, "team/cosine@prod")

A ref is ``namespace/name[@selector]`` (a version ``@3``, an alias ``@prod``,
a content address ``@sha256:HEX``; none means ``@latest``). The server owns
every rule about refs: ``parse_ref`` here only splits one for messages.

``publish`` and ``alias`` change the registry and go to the admin endpoint:
``admin=`` (an endpoint string or a Client), else ``LRBRIDGE_ADMIN_ENDPOINT``,
else the serving endpoint (which accepts them over ipc://, or with
``--dev-admin``; otherwise the server answers ``Forbidden``). Reads go to
``server=`` as the schedulers take it (None: ``LRBRIDGE_ENDPOINT`` or the
embedded server).

What a scheduler opened from a ref keeps in ``state_dict()['_registry']``
(the pin): the ref as written; the resolved name, version and ``spec_hash``;
the canonical spec (a checkpoint resumes without the registry); the engine
(the server's ``hello.server``); a digest of the first rows; the group state
it was opened with; and the version switches of the run.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
import warnings
import weakref
from dataclasses import dataclass, replace
from typing import Any

import msgpack
import numpy as np

from .client import Client, Opened, resolve_client
from .errors import LRBridgeError, ProtocolError, UnpinnedRef
from .protocol import open_message

__all__ = [
    "Ref",
    "Version",
    "alias",
    "diff",
    "history",
    "is_ref",
    "parse_ref",
    "publish",
    "resolve",
    "runs",
]

# Rows of a schedule hashed into a pin's digest: enough to tell two engines apart.
DIGEST_ROWS = 64
# diff's row limit (PROTOCOL.md, "diff")
MAX_DIFF_STEPS = 1 << 20
MAX_DIFF_GROUPS = 64
_UNSET: Any = object()


# --------------------------------------------------------------------------
# Refs, for messages (the server validates them)


@dataclass(frozen=True)
class Ref:
    """A ref split at its ``/`` and ``@``: ``namespace``, ``name``, ``selector`` (None: latest)."""

    text: str
    namespace: str
    name: str
    selector: str | None

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def unpinned(self) -> bool:
        """A bare name or ``@latest``: the version it means changes with each publish."""
        return self.selector in (None, "latest")

    def at(self, version: int) -> str:
        return f"{self.full_name}@{version}"


def parse_ref(ref: str) -> Ref:
    """Split ``namespace/name[@selector]`` for display; never raises (the server says what is wrong)."""
    text = str(ref)
    base, sep, selector = text.partition("@")
    namespace, slash, name = base.partition("/")
    if not slash:
        namespace, name = "", base
    return Ref(text, namespace, name, selector if sep else None)


def is_ref(value: Any) -> bool:
    """A str that is not JSON: what ``Schedule(optimizer, "team/cosine@prod")`` takes as a ref."""
    return isinstance(value, str) and not value.lstrip().startswith("{")


# --------------------------------------------------------------------------
# Which endpoint


def admin_client(admin: "None | str | Client" = None, server: "None | str | Client" = None) -> Client:
    """Where publish/alias go: ``admin``, LRBRIDGE_ADMIN_ENDPOINT, else the serving endpoint."""
    if admin is not None:
        return resolve_client(admin)
    endpoint = os.environ.get("LRBRIDGE_ADMIN_ENDPOINT")
    if endpoint:
        return _admin_from_env(endpoint)
    return resolve_client(server)


_env_admin: dict[tuple[int, str], Client] = {}


def _admin_from_env(endpoint: str) -> Client:
    key = (os.getpid(), endpoint)
    client = _env_admin.get(key)
    if client is None:
        client = _env_admin[key] = Client(endpoint)
    return client


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in containers without a passwd entry
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def _reply(reply: dict, expected: str) -> dict:
    if reply.get("type") != expected:
        raise ProtocolError("BAD_REPLY", f"expected a {expected!r} reply, got {reply.get('type')!r}")
    return {k: v for k, v in reply.items() if k not in ("v", "id", "type")}


# --------------------------------------------------------------------------
# Messages


def resolve_message(ref: str) -> dict:
    return {"type": "resolve", "ref": str(ref)}


def publish_message(
    name: str, spec: dict, message: str | None = None, author: str | None = None, params: dict | None = None
) -> dict:
    msg: dict[str, Any] = {"type": "publish", "name": str(name), "spec": spec}
    if params is not None:
        msg["params"] = params  # a module's probe params: not part of the version
    if message is not None:
        msg["message"] = str(message)
    if author is not None:
        msg["author"] = str(author)
    return msg


def alias_message(
    name: str, alias: str, version: int, expect: Any = _UNSET, who: str | None = None, why: str | None = None
) -> dict:
    """``expect``: left out (unconditional), None (the alias must not exist yet) or a version."""
    msg: dict[str, Any] = {"type": "alias", "name": str(name), "alias": str(alias), "version": int(version)}
    if expect is not _UNSET:
        msg["expect"] = None if expect is None else int(expect)
    if who is not None:
        msg["who"] = str(who)
    if why is not None:
        msg["why"] = str(why)
    return msg


def history_message(name: str, at: float | None = None) -> dict:
    msg: dict[str, Any] = {"type": "history", "name": str(name)}
    if at is not None:
        msg["at"] = float(at)
    return msg


def diff_message(a: str, b: str, steps: int, groups: list | None = None) -> dict:
    msg: dict[str, Any] = {"type": "diff", "a": str(a), "b": str(b), "steps": int(steps)}
    if groups is not None:
        msg["groups"] = groups
    return msg


def runs_message(ref: str | None = None, run: str | None = None) -> dict:
    msg: dict[str, Any] = {"type": "runs"}
    if ref is not None:
        msg["ref"] = str(ref)
    if run is not None:
        msg["run"] = str(run)
    return msg


@dataclass(frozen=True)
class Version:
    """One immutable version of a name (``resolve`` and ``publish`` replies)."""

    name: str
    version: int
    spec_hash: str
    canonical: Any
    message: str | None = None
    author: str | None = None
    created_at: float | None = None
    # resolve: the ref asked for, and whether it named the version or its hash
    ref: str | None = None
    pinned: bool | None = None
    # publish: False when the content equals an existing version (that version is returned)
    created: bool | None = None
    # resolve: answered from the server's memory while its store is unavailable
    cached: bool = False

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


def resolve(ref: str, *, server: "None | str | Client" = None) -> Version:
    """What ``ref`` names now. UnknownRef / BadRef when it names nothing."""
    r = _reply(resolve_client(server).request(resolve_message(ref)), "resolved")
    return Version(
        name=str(r["name"]),
        version=int(r["version"]),
        spec_hash=str(r["spec_hash"]),
        canonical=r.get("canonical"),
        message=r.get("message"),
        author=r.get("author"),
        created_at=None if r.get("created_at") is None else float(r["created_at"]),
        ref=str(r.get("ref", ref)),
        pinned=bool(r.get("pinned")),
        cached=bool(r.get("cached")),
    )


def publish(
    name: str,
    spec: Any,
    message: str | None = None,
    *,
    author: str | None = None,
    admin: "None | str | Client" = None,
    params: dict | None = None,
) -> Version:
    """Publish ``spec`` (a dict or a ``lrbridge.spec`` builder) as the next version of ``name``.

    ``spec`` may be a TypeScript module's path (``"./fractal.ts"``): it is
    compiled here (``lrbridge compile``) and its module node, without params,
    is the version; ``params`` are what the module is probed with.
    Content equal to an existing version returns that version (``created``
    False). An invalid spec raises SpecError and writes nothing."""
    from .schedule import as_spec  # torch only when publishing (as_spec lives with Schedule)

    if isinstance(spec, (str, os.PathLike)) and os.fspath(spec).endswith(".ts"):
        from .modules import compile_module

        node = {k: v for k, v in compile_module(spec, params).items() if k != "params"}
    else:
        node = as_spec(spec)
    msg = publish_message(name, node, message, author if author is not None else _who(), params)
    r = _reply(admin_client(admin).request(msg), "published")
    return Version(
        name=str(r["name"]),
        version=int(r["version"]),
        spec_hash=str(r["spec_hash"]),
        canonical=r.get("canonical"),
        message=message,
        author=msg.get("author"),
        created=bool(r.get("created")),
    )


def alias(
    name: str,
    alias: str,
    version: int,
    *,
    expect: "int | None" = _UNSET,
    why: str | None = None,
    who: str | None = None,
    admin: "None | str | Client" = None,
) -> dict:
    """Point ``name@alias`` at ``version``; returns ``{name, alias, from, to, at}``.

    ``expect``: compare-and-set, the version the alias points at now (None:
    the alias must not exist yet); a lost race raises AliasConflict and moves
    nothing. Left out, the move is unconditional."""
    msg = alias_message(name, alias, version, expect, who if who is not None else _who(), why)
    return _reply(admin_client(admin).request(msg), "aliased")


def history(name: str, at: float | None = None, *, server: "None | str | Client" = None) -> dict:
    """``{name, versions, aliases, events}``, oldest first; ``at`` (Unix seconds): the aliases then."""
    return _reply(resolve_client(server).request(history_message(name, at)), "history")


def diff(a: str, b: str, steps: int = 1000, groups: list | None = None, *, server: "None | str | Client" = None) -> dict:
    """Where two refs part: ``{a, b, paths, first_step, max_abs, max_rel}`` over rows ``[0, steps)``."""
    return _reply(resolve_client(server).request(diff_message(a, b, steps, groups)), "diff")


def runs(ref: str | None = None, *, run: str | None = None, server: "None | str | Client" = None) -> list[dict]:
    """Runs newest first: those that used what ``ref`` resolves to (each with its first 10 uses and
    ``uses_total``), or the run ``run`` with all its uses and events."""
    return list(_reply(resolve_client(server).request(runs_message(ref, run)), "runs")["runs"])


# --------------------------------------------------------------------------
# Pins: what a checkpoint keeps of a schedule opened from a ref

_engines: "weakref.WeakKeyDictionary[Client, str]" = weakref.WeakKeyDictionary()


def engine(client: Client) -> str:
    """The server's engine version (``hello.server``), asked once per client."""
    value = _engines.get(client)
    if value is None:
        value = _engines[client] = str(client.hello().get("server", "unknown"))
    return value


def rows_digest(client: Client, opened: Opened, stream: Any = None) -> dict:
    """sha256 of the first rows' lr and momentum (float64 LE), or of a metric schedule's first values.

    From the rows ``stream`` (a WindowStream) already holds when they start at row 0,
    else from one window request."""
    h = hashlib.sha256()
    if opened.kind == "metric":
        h.update(msgpack.packb({"lr": opened.lr, "momentum": opened.momentum}, use_bin_type=True))
        return {"rows": 1, "sha256": h.hexdigest()}
    rows = DIGEST_ROWS if opened.row_end is None else max(1, min(DIGEST_ROWS, opened.row_end))
    if stream is not None and stream.lo == 0 and stream.n >= rows and stream.origin is None:
        values = rows * stream.groups
        lr = np.frombuffer(stream.lr_flat, dtype=np.float64)[:values]
        mom = None if stream.mom_flat is None else np.frombuffer(stream.mom_flat, dtype=np.float64)[:values]
    else:
        window = client.window(opened, 0, rows)
        rows, lr, mom = int(window.count), window.lr, window.momentum
    h.update(lr.astype("<f8").tobytes())
    if mom is not None:
        h.update(mom.astype("<f8").tobytes())
    return {"rows": rows, "sha256": h.hexdigest()}


def make_pin(
    client: Client, opened: Opened, ref: str, groups: list, last_epoch: int, run: str | None, stream: Any = None
) -> dict:
    """The pin of a schedule just opened by ``ref`` (see the module doc)."""
    resolved = opened.resolved or {}
    return {
        "ref": ref,
        "name": str(resolved.get("name", parse_ref(ref).full_name)),
        "version": None if resolved.get("version") is None else int(resolved["version"]),
        "spec_hash": opened.spec_hash,
        "canonical": opened.canonical,
        "engine": engine(client),
        "digest": rows_digest(client, opened, stream),
        "groups": groups,
        "last_epoch": last_epoch,
        "run": run,
        "switches": [],
    }


def warn_resolution(ref: str, pin: dict, resolved: dict | None, stacklevel: int) -> None:
    """The two things a run should hear about the version a ref gave it: that the ref was
    unpinned, and that the answer came from the server's cache (its store unavailable)."""
    if parse_ref(ref).unpinned:
        warnings.warn(
            f"lrbridge: {ref} is unpinned (it means the latest version); resolved to "
            f"{pin['name']}@{pin['version']}, recorded in state_dict. "
            "Name a version or an alias for a reproducible run.",
            UnpinnedRef,
            stacklevel=stacklevel + 1,
        )
    if resolved and resolved.get("cached"):
        warnings.warn(
            f"lrbridge: {ref} → {pin['name']}@{pin['version']} came from the server's cache: its "
            "registry store is unavailable, so the ref may have moved since.",
            UserWarning,
            stacklevel=stacklevel + 1,
        )


def label(pin: dict) -> str:
    return f"v{pin['version']}" if pin.get("version") is not None else f"spec_hash {str(pin.get('spec_hash'))[:12]}"


def check_engine(client: Client, pin: dict) -> str | None:
    """A warning when this server's engine computes the pinned spec's first rows differently."""
    now = engine(client)
    if now == pin.get("engine") or not pin.get("digest"):
        return None
    opened = client.open(pin["canonical"], pin["groups"], int(pin.get("last_epoch", -1)))
    digest = rows_digest(client, opened)
    if digest == pin["digest"]:
        return None
    return (
        f"lrbridge: {pin['ref']} ({pin['name']} {label(pin)}): engine {now} computes its first "
        f"{digest['rows']} rows differently from the checkpoint's engine {pin.get('engine')}"
    )


def changed_message(ref: str, pinned: dict, current: dict, diff_reply: dict | None, resume_step: int) -> str:
    """``team/cosine@prod now → v4, checkpoint pinned v3``, the diff, and the two ways on."""
    lines = [f"{ref} now → {label(current)}, checkpoint pinned {label(pinned)}"]
    if diff_reply is not None:
        paths = diff_reply.get("paths") or []
        for p in paths[:10]:
            lines.append(f"  {p.get('path')}: {p.get('a')!r} → {p.get('b')!r}")
        if len(paths) > 10:
            lines.append(f"  … and {len(paths) - 10} more paths")
        first = diff_reply.get("first_step")
        if first is None:
            lines.append(f"  the values agree over the first {diff_reply.get('steps', 'compared')} rows")
        else:
            lines.append(
                f"  values part at step {first} (max abs diff {float(diff_reply.get('max_abs', 0)):.6g}, "
                f"max rel {float(diff_reply.get('max_rel', 0)):.6g})"
            )
    lines.append(
        f'Resume with on_change="checkpoint" (keep {label(pinned)}) or on_change="current" '
        f"(switch to {label(current)} at step {resume_step})."
    )
    return "\n".join(lines)


def pin_diff(client: Client, pinned: dict, current: dict, resume_step: int) -> dict | None:
    """The server's diff of the pinned and the current version, or None when it cannot be had."""
    if pinned.get("version") is None or current.get("version") is None:
        return None
    steps = max(1, min(MAX_DIFF_STEPS, max(1000, 2 * resume_step)))
    try:
        a, b = f"{pinned['name']}@{pinned['version']}", f"{current['name']}@{current['version']}"
        groups = pinned.get("groups")
        reply = diff(a, b, steps, groups if groups and len(groups) <= MAX_DIFF_GROUPS else None, server=client)
    except ProtocolError:
        return None
    reply["steps"] = steps
    return reply


def kept_message(pinned: dict, constructed: dict) -> str:
    """A drop-in class's warning on resume: the checkpoint's version wins, as in torch."""
    return (
        f"lrbridge: the checkpoint pinned {pinned['ref']} = {pinned['name']} {label(pinned)}; "
        f"{constructed['ref']} now resolves to {label(constructed)}. Continuing with the checkpoint's "
        f"{label(pinned)}, as torch does (the checkpoint's hyper-parameters win)."
    )


def retarget_use(scheduler: Any, pin: dict, step: int) -> None:
    """A drop-in class resumed from a checkpoint: its pending use names the checkpoint's
    version (the checkpoint wins) and starts at the resume ``step``."""
    msg = getattr(scheduler, "_use_pending", None)
    if msg is None:
        return  # already sent: the scheduler stepped before it was loaded
    if pin.get("version") is not None:
        msg["ref"] = f"{pin['name']}@{pin['version']}"
    else:
        msg["ref"] = f"{pin['name']}@sha256:{pin['spec_hash']}"
    msg["run"]["step"] = int(step)


def defer_use(scheduler: Any, run: Any) -> None:
    """After a scheduler's construction opened a ref: its run's use is sent at its first step.

    Not at construction: a resumed run constructs its scheduler before
    load_state_dict, and a use at step 0 of whatever the ref names then would
    misstate what the run trained on. The use names the pinned version
    (``name@version``): the ref may have moved since."""
    pin = scheduler._registry
    scheduler._opened = replace(scheduler._opened, run=run.id)
    stream = getattr(scheduler, "_stream", None)
    if stream is not None:
        stream.opened = scheduler._opened  # its rebases carry the run id too
    ref = f"{pin['name']}@{pin['version']}" if pin.get("version") is not None else f"{pin['name']}@sha256:{pin['spec_hash']}"
    first_row = scheduler._opened.first_row if scheduler._opened.kind != "metric" else 0
    params = scheduler.__dict__.get("_ref_params")  # a module's: the use opens what the run trains on
    scheduler._use_pending = open_message(
        None, pin["groups"], None, int(pin["last_epoch"]), ref=ref, run=run.to_wire(first_row), params=params
    )


def send_use(scheduler: Any) -> None:
    """Send the pending use: on the prefetch channel (no wait) when there is one, else in line."""
    msg, scheduler._use_pending = scheduler._use_pending, None
    stream = getattr(scheduler, "_stream", None)
    if stream is not None:
        stream._channel.send(msg)  # the reply is skipped by id; step() does not wait
        return
    try:
        scheduler._client_for().request(msg)
    except LRBridgeError as exc:
        warnings.warn(f"lrbridge: the registry did not record this run's use of {msg['ref']}: {exc}", UserWarning, stacklevel=3)
