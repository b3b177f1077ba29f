"""``lrbridge.Schedule``: a torch LRScheduler for any lrbridge spec.

    sched = lrbridge.Schedule(optimizer, {"type": "StepLR", "step_size": 30})
    sched = lrbridge.Schedule(optimizer, spec.warmup(spec.rex(total_steps=10_000), steps=500))

The spec is a plain dict: a torch class spec (what ``lrbridge.lr_scheduler``
sends), a composite, or a generic/recipe spec (``lrbridge.spec`` builds
those). It is bound on the server against the optimizer's param groups; the
values, their momentum and, for cyclic specs, the cycle boundaries all come
from there. Stepping, prefetch, ``state_dict``/resume and the momentum
writes are the drop-in classes' own (``_scheduler_base.Bridged``).

Deterministic specs step with ``step()``; metric-driven specs (a plateau
rule) step with ``step(metric)``, one round trip each, their state carried
here and saved in ``state_dict()``. (For torch's exact ReduceLROnPlateau
behaviour, hand-edited lrs included, use ``lrbridge.lr_scheduler.ReduceLROnPlateau``;
for the range test, ``lrbridge.find_lr``.)

Written to the param groups: ``lr`` and, when the spec has momentum,
``momentum`` or ``betas[0]``. Torch-class specs run through ``Schedule`` give
torch's values, but the extra group keys torch's classes write (OneCycleLR's
``max_lr``/``min_lr``/``initial_lr``) are the drop-in classes' business.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Mapping
from typing import Any

from torch.optim import Optimizer

from ._metric import MetricDriven
from ._scheduler_base import Bridged, check_optimizer, group_value, loadable
from .errors import ProtocolError, ScheduleChanged
from .registry import changed_message, check_engine, defer_use, is_ref, label, make_pin, pin_diff, send_use, warn_resolution
from .run import current_run

__all__ = ["Schedule", "as_spec"]

# What a resume does when the checkpoint's registry ref now names another version.
ON_CHANGE = ("raise", "checkpoint", "current")


def _plain(value: Any, path: str) -> Any:
    """A JSON value (what the server takes): mappings, lists, str, bool, None, finite-or-not numbers."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"lrbridge: spec key {k!r} at {path or 'top'} is not a string")
            out[k] = _plain(v, f"{path}.{k}" if path else k)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if hasattr(value, "dtype") and hasattr(value, "item"):
        return _plain(value.item(), path)  # numpy scalar, 0-d tensor
    if callable(value):
        raise TypeError(
            f"lrbridge: spec field {path} is a Python callable; the server computes schedules "
            "and cannot run Python: use an expression string or a builder from lrbridge.spec"
        )
    raise TypeError(f"lrbridge: spec field {path} has type {type(value).__name__}, which is not JSON")


def as_spec(spec: Any) -> dict:
    """A spec given as a dict (or a builder's output, or a JSON string) → a plain dict copy."""
    if isinstance(spec, str):
        spec = json.loads(spec)
    if hasattr(spec, "to_spec") and callable(spec.to_spec):
        spec = spec.to_spec()
    if not isinstance(spec, Mapping):
        raise TypeError(f"lrbridge: a spec is a dict (see lrbridge.spec), got {type(spec).__name__}")
    if "type" not in spec:
        raise ValueError("lrbridge: a spec needs a 'type' field")
    return _plain(spec, "")


class Schedule(MetricDriven, Bridged):
    """An LRScheduler whose values come from any lrbridge spec.

    ``spec``: a dict (``{"type": ...}``), e.g. built with ``lrbridge.spec``;
    or a registry ref (``"team/cosine@prod"``, see ``lrbridge.registry``): the
    server resolves it, ``state_dict`` pins the version it named, and
    ``on_change`` says what a resume does when the ref has moved since
    (``"raise"``: ScheduleChanged; ``"checkpoint"``: keep the pinned version;
    ``"current"``: switch at the resume step). ``run_name``: how the registry's
    audit names this run (default ``LRBRIDGE_RUN_NAME``, else ``host:pid script``).
    ``module``/``params``: instead of ``spec``, a TypeScript schedule module
    file and its params, compiled by ``lrbridge.compile_module``.
    ``server``: None (``LRBRIDGE_ENDPOINT`` or a private embedded server), an
    endpoint string, or a ``lrbridge.Client``.

    Beyond torch's API: ``spec`` / ``spec_hash`` / ``canonical`` (the spec with
    defaults filled in, as the server bound it), ``kind``, and
    ``cycle_starts(lo, hi)`` for cyclic specs.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        spec: Any = None,
        last_epoch: int = -1,
        *,
        server: Any = None,
        run_name: str | None = None,
        on_change: str = "raise",
        module: Any = None,
        params: dict | None = None,
    ) -> None:
        check_optimizer(optimizer)
        if on_change not in ON_CHANGE:
            raise ValueError(f"lrbridge: on_change must be one of {', '.join(map(repr, ON_CHANGE))}, got {on_change!r}")
        self._metric_state: dict | None = None
        self._on_change = on_change
        self._run_name = run_name
        self._ref: str | None = None
        if (spec is None) == (module is None):
            raise TypeError("lrbridge.Schedule: give a spec or module=PATH (a TypeScript schedule module), not both")
        if module is not None:
            from .modules import compile_module

            spec = compile_module(module, params)
        elif params is not None and not is_ref(spec):
            raise TypeError("lrbridge.Schedule: params go with module=PATH or a registry ref to a module")
        elif params is not None and not isinstance(params, dict):
            raise TypeError(f"lrbridge.Schedule: params must be a dict, got {type(params).__name__}")
        if is_ref(spec):
            # Opened by ref: the server resolves it and records this run's use of it.
            self._ref = spec
            self._ref_params = params  # a module version's params: the server lays them over its node
            self._open_via = self._by_ref(spec)  # the run's use is recorded at its first step (registry.defer_use)
            self._bridge_init(optimizer, None, last_epoch, server)  # type: ignore[arg-type]
            return
        spec = as_spec(spec)
        if spec["type"] == "hf" and spec.get("lr_init") is None:
            # transformers' schedules read the optimizer's default lr (polynomial, min_lr);
            # the server ignores it where the schedule does not.
            spec["lr_init"] = optimizer.defaults["lr"]
        self._bridge_init(optimizer, spec, last_epoch, server)

    # -- what the server said ------------------------------------------------

    @property
    def spec(self) -> dict:
        return copy.deepcopy(self._spec)

    @property
    def spec_hash(self) -> str:
        return self._opened.spec_hash

    @property
    def canonical(self) -> Any:
        return self._opened.canonical

    @property
    def kind(self) -> str:
        return self._opened.kind

    def cycle_starts(self, lo: int, hi: int) -> list[int]:
        """Steps in [lo, hi) where a new cycle starts (step 0 starts cycle 0).

        Only cyclic specs have cycles; for others this raises TypeError. The
        boundaries use the server's own cycle arithmetic, so they agree with
        the lr values exactly.
        """
        try:
            return self._client_for().cycle_starts(self._opened, lo, hi)
        except TypeError as exc:
            raise TypeError(f"{exc} (spec type {self._spec.get('type')!r})") from None

    # -- metric-driven specs ---------------------------------------------------

    def _by_ref(self, ref: str) -> dict:
        params = self.__dict__.get("_ref_params")
        return {"ref": ref} if params is None else {"ref": ref, "params": params}

    @property
    def ref(self) -> str | None:
        """The registry ref as written (None: built from a spec)."""
        return self._ref

    @property
    def resolved(self) -> dict | None:
        """What the ref resolved to, as pinned in ``state_dict``: ``{ref, name, version, spec_hash, canonical, ...}``."""
        pin = self.__dict__.get("_registry")
        return None if pin is None else copy.deepcopy(pin)

    def _pin(self, opened) -> None:
        """After the open by ref: pin the version in state_dict, and warn when the ref was unpinned."""
        inits, last_epoch = self._snapshot
        client = self._client_for()
        run = current_run(self._run_name)
        self._registry = make_pin(client, opened, self._ref, inits, last_epoch, run.id, self._stream)
        defer_use(self, run)
        warn_resolution(self._ref, self._registry, opened.resolved, stacklevel=4)

    def _initial_step(self) -> None:
        self._step_count = 0
        opened = self._open()
        if opened.kind == "metric":
            self._start_metric(opened)
        else:
            self._start(opened)
        if self._ref is not None:
            self._pin(opened)  # after the first window: the digest's rows are in it

    def _start_metric(self, opened) -> None:
        """Metric-driven: the values right after construction came with `opened`."""
        if self.last_epoch != -1:
            raise ValueError("lrbridge: a metric-driven Schedule resumes through load_state_dict, not last_epoch")
        self._metric_begin(opened)
        self._step_count = 1
        self.last_epoch = 0
        self._write(tuple(opened.lr), None if opened.momentum is None else tuple(opened.momentum))
        self._mirror(on=False)

    def step(self, metrics: Any = None, epoch: Any = None) -> None:  # type: ignore[override]
        """``step()`` for deterministic specs (``step(epoch)`` deprecated as in torch);
        ``step(metric)`` for metric-driven ones."""
        if self._metric_state is None:
            if metrics is not None and epoch is None:
                epoch = metrics  # torch's positional step(epoch)
            return Bridged.step(self, epoch)
        if metrics is None:
            raise TypeError("lrbridge: this schedule is metric-driven: call step(metric)")
        if self._use_pending is not None:
            send_use(self)
        reply = self._metric_step(metrics)
        self.last_epoch += 1
        self._step_count += 1
        self._write(tuple(reply["lr"]), None if reply["momentum"] is None else tuple(reply["momentum"]))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume. A checkpoint of a registry schedule keeps its pinned version: when
        the ref now resolves elsewhere, ``on_change`` says what happens (ScheduleChanged,
        the checkpoint's version, or the current one from the resume step on)."""
        if self._ref is not None and state_dict.get("_registry") is not None:
            return self._load_pinned(state_dict)
        if state_dict.get("_metric_state") is None and self._metric_state is None:
            return Bridged.load_state_dict(self, state_dict)
        saved = loadable(state_dict)
        self.__dict__.update(saved)
        if saved.get("_spec_hash") != self._opened.spec_hash:
            self._open()
        self._write(tuple(group_value(v) for v in self._last_lr), None)

    def _load_pinned(self, state_dict: dict[str, Any]) -> None:
        pinned, now = state_dict["_registry"], self._registry
        resume = int(state_dict.get("last_epoch", 0)) + 1
        moved = (pinned.get("name"), pinned.get("version")) != (now.get("name"), now.get("version"))
        client = self._client_for()
        if moved and self._on_change == "raise":
            diff = pin_diff(client, pinned, now, resume)
            raise ScheduleChanged(
                changed_message(pinned.get("ref", self._ref), pinned, now, diff, resume),
                ref=self._ref,
                pinned={k: pinned.get(k) for k in ("name", "version", "spec_hash")},
                current={k: now.get(k) for k in ("name", "version", "spec_hash")},
                diff=diff,
            )
        # The resuming process's own choices stay; the rest is the checkpoint's.
        mine = {k: self.__dict__[k] for k in ("_ref", "_ref_params", "_on_change", "_run_name") if k in self.__dict__}
        saved = loadable(state_dict)
        run = current_run(self._run_name).to_wire(resume)
        if moved and self._on_change == "current":
            switch = {"step": resume, "from": pinned.get("version"), "to": now.get("version")}
            saved["_registry"] = {**now, "switches": [*pinned.get("switches", []), switch]}
            saved["_spec"], saved["_spec_hash"] = now["canonical"], now["spec_hash"]
            # A later use at the resume step: the run's switch, so a replay follows it.
            via = {**self._by_ref(self._ref), "run": run}
        else:
            # The pinned version (its use then names it); its canonical spec itself
            # when the registry cannot answer.
            saved["_registry"] = pinned
            via = {**self._by_ref(f"{pinned['name']}@{pinned['version']}" if moved else self._ref), "run": run}
        self.__dict__.update(saved)
        self.__dict__.update(mine)
        self._use_pending = None  # the resume's open below is this run's use
        self._open_via = via
        try:
            opened = self._open()
        except ProtocolError:
            if "ref" not in via:
                raise
            # No registry now (down, or another server): the canonical spec the checkpoint or
            # the construction holds.
            self._open_via = {"run": run}
            opened = self._open()
        if opened.spec_hash != self._registry["spec_hash"]:
            raise ScheduleChanged(
                f"{self._ref} moved again while resuming: now {opened.resolved}, expected {label(self._registry)}",
                ref=self._ref,
                pinned={k: pinned.get(k) for k in ("name", "version", "spec_hash")},
                current=dict(opened.resolved or {}),
                diff=None,
            )
        warning = check_engine(client, self._registry)
        if warning:
            warnings.warn(warning, UserWarning, stacklevel=3)
        if self._metric_state is not None:
            self._write(tuple(group_value(v) for v in self._last_lr), None)
        else:
            self._reposition()
