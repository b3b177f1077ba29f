"""``lrbridge.lr_scheduler.from_ref``: the drop-in class a registry ref names.

The canonical spec's ``type`` picks the class (``CosineAnnealingLR`` →
``lrbridge.lr_scheduler.CosineAnnealingLR``, built with the spec's fields as
its arguments); a spec that is no torch class (a recipe, a generic spec)
gives a ``lrbridge.Schedule``. The scheduler opens the ref itself, so the
server records the run's use of the version, and ``state_dict`` pins it. On
resume the checkpoint's version wins, as torch's hyper-parameters do, with a
warning naming both versions.
"""

from __future__ import annotations

import inspect
from typing import Any

from .registry import defer_use, make_pin, resolve, warn_resolution
from .run import current_run

# Fields a canonical spec holds as numbers that a constructor checks as floats.
_FLOAT_FIELDS = {"OneCycleLR": ("pct_start",)}
_COMPOSITES = ("SequentialLR", "ChainedScheduler")


def _classes() -> dict[str, type]:
    from . import lr_scheduler

    return {name: getattr(lr_scheduler, name) for name in lr_scheduler.__all__ if name != "LRScheduler"}


def _arguments(cls: type, spec: dict) -> dict:
    """The constructor's arguments from a canonical spec (its fields, defaults filled in)."""
    params = inspect.signature(cls.__init__).parameters
    args = {k: v for k, v in spec.items() if k != "type" and k in params}
    for key in _FLOAT_FIELDS.get(spec["type"], ()):
        if isinstance(args.get(key), int):
            args[key] = float(args[key])
    return args


def from_spec(optimizer: Any, spec: dict, *, server: Any = None, last_epoch: int = -1, open_via: dict | None = None) -> Any:
    """The drop-in scheduler for a torch-class spec (composites build their children first)."""
    classes = _classes()
    cls = classes[spec["type"]]
    args = _arguments(cls, spec)
    if spec["type"] in _COMPOSITES:
        args["schedulers"] = [from_spec(optimizer, child, server=server) for child in spec["schedulers"]]
    scheduler = cls.__new__(cls)
    if open_via is not None:
        scheduler._open_via = open_via
    if spec["type"] == "ChainedScheduler":
        scheduler.__init__(args["schedulers"], optimizer, server=server)
    elif spec["type"] == "ReduceLROnPlateau":
        scheduler.__init__(optimizer, **args, server=server)
    else:
        scheduler.__init__(optimizer, **args, last_epoch=last_epoch, server=server)
    return scheduler


def from_ref(optimizer: Any, ref: str, *, server: Any = None, run_name: str | None = None, last_epoch: int = -1, **kw: Any) -> Any:
    """The scheduler ``ref`` names: a ``lrbridge.lr_scheduler`` class for a torch spec, else a ``Schedule``.

    ``server``/``run_name``/``last_epoch`` as the classes take them;
    ``on_change`` (Schedule only) as ``Schedule`` takes it."""
    from .client import resolve_client

    client = resolve_client(server)
    version = resolve(ref, server=client)
    canonical = version.canonical
    if not isinstance(canonical, dict) or canonical.get("type") not in _classes():
        from .schedule import Schedule

        return Schedule(optimizer, ref, last_epoch, server=client, run_name=run_name, **kw)
    if kw:
        raise TypeError(f"lrbridge: from_ref got arguments a {canonical['type']} does not take here: {sorted(kw)}")
    run = current_run(run_name)
    scheduler = from_spec(
        optimizer, canonical, server=client, last_epoch=last_epoch, open_via={"ref": ref}
    )
    if scheduler._spec_hash != version.spec_hash:
        # The ref moved between the resolve and the open: the class's arguments are stale.
        return from_ref(optimizer, ref, server=client, run_name=run_name, last_epoch=last_epoch)
    from ._scheduler_base import group_inits

    snapshot = getattr(scheduler, "_snapshot", None) or (group_inits(optimizer), -1)
    scheduler._run_name = run_name
    stream = getattr(scheduler, "_stream", None)
    scheduler._registry = make_pin(client, scheduler._opened, ref, snapshot[0], snapshot[1], run.id, stream)
    defer_use(scheduler, run)
    warn_resolution(ref, scheduler._registry, scheduler._opened.resolved, stacklevel=2)
    return scheduler
