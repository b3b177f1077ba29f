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
from collections.abc import Mapping
from typing import Any

from torch.optim import Optimizer

from ._scheduler_base import TRANSIENT, Bridged, check_optimizer, group_value

__all__ = ["Schedule", "as_spec"]


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


class Schedule(Bridged):
    """An LRScheduler whose values come from any lrbridge spec.

    ``spec``: a dict (``{"type": ...}``), e.g. built with ``lrbridge.spec``.
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
        module: Any = None,
        params: dict | None = None,
    ) -> None:
        check_optimizer(optimizer)
        self._metric_state: dict | None = None
        if (spec is None) == (module is None):
            raise TypeError("lrbridge.Schedule: give a spec or module=PATH (a TypeScript schedule module), not both")
        if module is not None:
            from .modules import compile_module

            spec = compile_module(module, params)
        elif params is not None:
            raise TypeError("lrbridge.Schedule: params go with module=PATH")
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

    def _open(self):  # type: ignore[override]
        # The first open is done by _initial_step to learn the kind; Bridged's reuses it.
        pending = self.__dict__.pop("_pending_open", None)
        return pending if pending is not None else Bridged._open(self)

    def _initial_step(self) -> None:
        self._step_count = 0
        opened = self._open()
        if opened.kind != "metric":
            self._pending_open = opened
            Bridged._initial_step(self)
            return
        # Metric-driven: the values right after construction came with `opened`.
        if self.last_epoch != -1:
            raise ValueError("lrbridge: a metric-driven Schedule resumes through load_state_dict, not last_epoch")
        self._metric_state = opened.state
        self._step_count = 1
        self.last_epoch = 0
        self._write(tuple(opened.lr), None if opened.momentum is None else tuple(opened.momentum))
        self._hi = 0

    def step(self, metrics: Any = None, epoch: Any = None) -> None:  # type: ignore[override]
        """``step()`` for deterministic specs (``step(epoch)`` deprecated as in torch);
        ``step(metric)`` for metric-driven ones."""
        if self._metric_state is None:
            if metrics is not None and epoch is None:
                epoch = metrics  # torch's positional step(epoch)
            return Bridged.step(self, epoch)
        if metrics is None:
            raise TypeError("lrbridge: this schedule is metric-driven: call step(metric)")
        state = self._metric_state
        if "lr" in state:
            # A metric state's lr is what the step starts from: the groups' lrs as they are now.
            state = {**state, "lr": [group_value(g["lr"]) for g in self.optimizer.param_groups]}
        reply = self._client_for().metric(self._opened, state, float(metrics))
        self._metric_state = reply["state"]
        self.last_epoch += 1
        self._step_count += 1
        self._write(tuple(reply["lr"]), None if reply["momentum"] is None else tuple(reply["momentum"]))

    @property
    def metric_state(self) -> dict | None:
        """The server's state of a metric-driven spec (opaque; carried by the client)."""
        return copy.deepcopy(self._metric_state)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("_metric_state") is None and self._metric_state is None:
            return Bridged.load_state_dict(self, state_dict)
        saved = {k: v for k, v in state_dict.items() if k not in TRANSIENT}
        self.__dict__.update(saved)
        if saved.get("_spec_hash") != self._opened.spec_hash:
            self._open()
        self._write(tuple(group_value(v) for v in self._last_lr), None)
