"""Drop-in replacements for ``torch.optim.lr_scheduler`` whose values come from the lrbridge server.

Same constructor signatures and defaults as torch 2.13, plus a keyword-only
``server=`` (None: ``LRBRIDGE_ENDPOINT`` or a private embedded server; an
endpoint string; or a ``lrbridge.Client``). The schedule math runs in
TypeScript; these classes only play its rows onto the optimizer the way torch
writes them.

Each class subclasses torch's class of the same name (and so
``torch.optim.lr_scheduler.LRScheduler``, or ``ReduceLROnPlateau``), so
``isinstance`` checks in Lightning, HF Trainer and user code pass. Every
behaviour is overridden: torch's methods that compute values (``get_lr``,
``scale_fn``, ``_anneal_func``, ``_reduce_lr`` ...) are never used; those that
would compute schedule math raise ``NotImplementedError`` if called directly.

Differences from torch, on purpose:
- ``LambdaLR``/``MultiplicativeLR`` take an expression string over ``epoch``
  (``"0.95 ** epoch"``) or a list of them; ``CyclicLR``'s ``scale_fn`` is an
  expression over ``x``. A Python callable raises TypeError.
- ``SequentialLR``/``ChainedScheduler`` take lrbridge schedulers and compose
  their specs into one; the children become inert (their ``step()`` raises).
- ``state_dict()`` also holds the spec and its ``spec_hash``, and never the
  client or stream objects (always picklable).
"""

from __future__ import annotations

import warnings
from bisect import bisect_right
from collections import Counter
from math import floor, inf
from typing import Any

from torch import Tensor
from torch.optim import lr_scheduler as _torch
from torch.optim.lr_scheduler import EPOCH_DEPRECATION_WARNING, LRScheduler

from . import heartbeat
from ._metric import MetricDriven
from ._row_writer import write_reduced
from ._scheduler_base import (
    adopt,
    Bridged,
    check_number,
    check_optimizer,
    current_lrs,
    expression,
    group_inits,
    group_value,
    loadable,
    make_spec,
    plain,
    state_of,
    take_open_via,
)

__all__ = [
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "SequentialLR",
    "CosineAnnealingLR",
    "ChainedScheduler",
    "ReduceLROnPlateau",
    "CyclicLR",
    "CosineAnnealingWarmRestarts",
    "OneCycleLR",
    "PolynomialLR",
    "LRScheduler",
]

_SERVER_MATH = "lrbridge computes schedule values on the server; this torch method is not used"


def _format_param(name: str, optimizer: Any, param: Any) -> list:
    """torch's _format_param: one value per group (the server checks a list's length)."""
    if isinstance(param, (list, tuple)):
        return [p.clone() if isinstance(p, Tensor) else p for p in param]
    return [param.clone() if isinstance(param, Tensor) else param] * len(optimizer.param_groups)


def _lambdas(optimizer: Any, lr_lambda: Any) -> list[str]:
    """One expression per group, as torch builds lr_lambdas."""
    if not isinstance(lr_lambda, (list, tuple)):
        return [expression("lr_lambda", lr_lambda, "epoch", "0.95 ** epoch")] * len(optimizer.param_groups)
    return [expression("lr_lambda", fn, "epoch", "0.95 ** epoch") for fn in lr_lambda]


def _init_lambdas(sched: Bridged, type_name: str, optimizer, lr_lambda, last_epoch: int, server: Any) -> None:
    """LambdaLR's and MultiplicativeLR's constructor: torch's lr_lambdas as expressions, one per group."""
    check_optimizer(optimizer)
    sched.optimizer = optimizer
    sched.lr_lambdas = _lambdas(optimizer, lr_lambda)
    value = list(sched.lr_lambdas) if isinstance(lr_lambda, (list, tuple)) else sched.lr_lambdas[0]
    sched._bridge_init(optimizer, make_spec(type_name, lr_lambda=value), last_epoch, server)


# --------------------------------------------------------------------------
# Per-step schedules


class LambdaLR(Bridged, _torch.LambdaLR):
    """base_lr × λ(epoch), λ an expression string over ``epoch`` (one per group allowed)."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1, *, server=None) -> None:
        _init_lambdas(self, "LambdaLR", optimizer, lr_lambda, last_epoch, server)


class MultiplicativeLR(Bridged, _torch.MultiplicativeLR):
    """lr × λ(epoch) each step (chainable), λ an expression string over ``epoch``."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1, *, server=None) -> None:
        _init_lambdas(self, "MultiplicativeLR", optimizer, lr_lambda, last_epoch, server)


class StepLR(Bridged, _torch.StepLR):
    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1, *, server=None) -> None:
        check_optimizer(optimizer)
        self.step_size = step_size
        self.gamma = gamma
        self._bridge_init(optimizer, make_spec("StepLR", step_size=step_size, gamma=gamma), last_epoch, server)


class MultiStepLR(Bridged, _torch.MultiStepLR):
    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1, *, server=None) -> None:
        check_optimizer(optimizer)
        milestones = list(milestones)  # TypeError for a non-iterable, as torch's Counter()
        self.milestones = Counter(milestones)
        self.gamma = gamma
        spec = make_spec("MultiStepLR", milestones=milestones, gamma=gamma)
        self._bridge_init(optimizer, spec, last_epoch, server)


class ConstantLR(Bridged, _torch.ConstantLR):
    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1, *, server=None) -> None:
        check_number("factor", factor)
        check_optimizer(optimizer)
        self.factor = factor
        self.total_iters = total_iters
        spec = make_spec("ConstantLR", factor=factor, total_iters=total_iters)
        self._bridge_init(optimizer, spec, last_epoch, server)


class LinearLR(Bridged, _torch.LinearLR):

    def __init__(
        self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1, *, server=None
    ) -> None:
        check_number("start_factor", start_factor)
        check_number("end_factor", end_factor)
        check_optimizer(optimizer)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        spec = make_spec("LinearLR", start_factor=start_factor, end_factor=end_factor, total_iters=total_iters)
        self._bridge_init(optimizer, spec, last_epoch, server)


class ExponentialLR(Bridged, _torch.ExponentialLR):

    def __init__(self, optimizer, gamma, last_epoch=-1, *, server=None) -> None:
        check_optimizer(optimizer)
        self.gamma = gamma
        self._bridge_init(optimizer, make_spec("ExponentialLR", gamma=gamma), last_epoch, server)


class PolynomialLR(Bridged, _torch.PolynomialLR):

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1, *, server=None) -> None:
        check_optimizer(optimizer)
        self.total_iters = total_iters
        self.power = power
        spec = make_spec("PolynomialLR", total_iters=total_iters, power=power)
        self._bridge_init(optimizer, spec, last_epoch, server)


class CosineAnnealingLR(Bridged, _torch.CosineAnnealingLR):

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1, *, server=None) -> None:
        check_optimizer(optimizer)
        self.T_max = T_max
        self.eta_min = eta_min
        self._bridge_init(optimizer, make_spec("CosineAnnealingLR", T_max=T_max, eta_min=eta_min), last_epoch, server)


class CosineAnnealingWarmRestarts(Bridged, _torch.CosineAnnealingWarmRestarts):
    """SGDR. Like torch, ``step()`` keeps ``_step_count`` at 0 and never warns.

    ``step(epoch)`` (fractional epochs allowed) asks the server for that epoch;
    plain ``step()`` calls after it continue at epoch + 1, + 2, ... (torch's
    ``T_cur += 1`` with restarts), also from the server, as do ``T_cur`` and
    ``T_i`` (per row on the wire). ``T_cur`` or ``T_i`` set by hand (a manual
    restart) is sent as the origin of the rows after it, and the server's
    step() continues from it as torch's does.
    """

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1, *, server=None) -> None:
        # torch compares them first (TypeError for a non-number); int vs float
        # (T_0=5.0) does not survive the wire; the ranges are the server's.
        check_number("T_0", T_0)
        check_number("T_mult", T_mult)
        if not isinstance(T_0, int) or isinstance(T_0, bool):
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if not isinstance(T_mult, int) or isinstance(T_mult, bool):
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        check_optimizer(optimizer)
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = last_epoch
        self._epoch_float = None  # set once step(epoch) was used: later steps are epoch + n
        spec = make_spec("CosineAnnealingWarmRestarts", T_0=T_0, T_mult=T_mult, eta_min=eta_min)
        self._bridge_init(optimizer, spec, last_epoch, server)

    def _initial_step(self) -> None:
        super()._initial_step()
        self._step_count = 0  # torch's override of step() never counts
        self._mirror()

    def _advance_to(self, k: int) -> None:
        super()._advance_to(k)
        # What the server's row says: any other T_cur/T_i was set by hand.
        self._tcur_w, self._ti_w = self.T_cur, self.T_i

    def _resume_origin(self) -> dict | None:
        # torch's step() continues T_cur/T_i as loaded (a restart set by hand included).
        if self._epoch_float is not None or self._inert:
            return None
        lrs = [group_value(g["lr"]) for g in self.optimizer.param_groups]
        return {"step": self.last_epoch, "lr": lrs, "attrs": {"T_cur": float(self.T_cur), "T_i": float(self.T_i)}}

    def step(self, epoch=None) -> None:
        k = self.last_epoch + 1
        if epoch is None and self._lo <= k < self._hi and self.T_cur == self._tcur_w and self.T_i == self._ti_w:
            i = k - self._lo
            self._last_lr = self._write_row(self.optimizer.param_groups, self._lr_flat, None, i * self._groups)
            self.last_epoch = k
            self.T_cur = self._tcur_w = int(self._tcur_flat[i])
            self.T_i = self._ti_w = int(self._ti_flat[i])
            return
        if self._inert:
            super()._general_step(None)  # raises: the composite steps it
        if epoch is None and self._epoch_float is None:
            if self.T_cur != self._tcur_w or self.T_i != self._ti_w:
                lrs = [group_value(g["lr"]) for g in self.optimizer.param_groups]
                self._origin = {"step": k - 1, "lr": lrs, "attrs": {"T_cur": float(self.T_cur), "T_i": float(self.T_i)}}
                self._stream.seek(k, self._origin)
            self._advance_to(k)
            self._mirror()
            return
        if epoch is None:
            epoch = self._epoch_float + 1
        elif epoch < 0:
            raise ValueError(f"Expected non-negative epoch, but got {epoch}")
        window = self._client_for().epoch(self._opened, [epoch])
        self._write(tuple(window.lr[0].tolist()), None)
        if window.attrs:
            t_cur = float(window.attrs["T_cur"][0])
            self.T_cur = t_cur if isinstance(epoch, float) else int(t_cur)
            self.T_i = int(window.attrs["T_i"][0])
        self._tcur_w, self._ti_w = self.T_cur, self.T_i
        self._epoch_float = epoch
        self.last_epoch = floor(epoch)
        self._mirror(on=False)

    def cycle_starts(self, lo: int, hi: int) -> list[int]:
        """Steps in [lo, hi) where a restart begins a cycle (0, T_0, T_0 + T_0·T_mult, ...),
        counted in plain ``step()`` calls, from the server: what
        ``lrbridge.callbacks.SnapshotSaver`` needs. (After ``step(epoch)`` the
        restarts follow the epochs given instead.)"""
        return self._client_for().cycle_starts(self._opened, lo, hi)


class CyclicLR(Bridged, _torch.CyclicLR):
    """Cyclical lr (and inverse momentum). ``scale_fn``: an expression string over ``x``, or None."""

    def __init__(
        self,
        optimizer,
        base_lr,
        max_lr,
        step_size_up=2000,
        step_size_down=None,
        mode="triangular",
        gamma=1.0,
        scale_fn=None,
        scale_mode="cycle",
        cycle_momentum=True,
        base_momentum=0.8,
        max_momentum=0.9,
        last_epoch=-1,
        *,
        server=None,
    ) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer
        if scale_fn is not None:
            scale_fn = expression("scale_fn", scale_fn, "x", "1 / (2.0 ** (x - 1))")
        base_lrs = _format_param("base_lr", optimizer, base_lr)
        self.max_lrs = _format_param("max_lr", optimizer, max_lr)
        # torch converts these with float() at construction (its ValueError/TypeError).
        float(step_size_up)
        if step_size_down is not None:
            float(step_size_down)
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self.cycle_momentum = cycle_momentum
        # The lr := base_lr write, momentum seeding and group keys come from the
        # server's simulation of this constructor (opened.group_keys).
        spec = make_spec(
            "CyclicLR",
            base_lr=[group_value(v) for v in base_lrs] if isinstance(base_lr, (list, tuple)) else group_value(base_lr),
            max_lr=max_lr if not isinstance(max_lr, Tensor) else group_value(max_lr),
            step_size_up=step_size_up,
            step_size_down=step_size_down,
            mode=mode,
            gamma=gamma,
            scale_fn=scale_fn,
            scale_mode=scale_mode,
            cycle_momentum=cycle_momentum,
            base_momentum=base_momentum,
            max_momentum=max_momentum,
        )
        self._bridge_init(optimizer, spec, last_epoch, server)
        self.base_lrs = base_lrs

    def scale_fn(self, x):
        raise NotImplementedError(_SERVER_MATH)

    def cycle_starts(self, lo: int, hi: int) -> list[int]:
        """Steps in [lo, hi) where a cycle starts (every step_size_up + step_size_down
        steps, from 0), from the server: what ``lrbridge.callbacks.SnapshotSaver`` needs."""
        return self._client_for().cycle_starts(self._opened, lo, hi)

    def _init_scale_fn(self) -> None:
        pass


class OneCycleLR(Bridged, _torch.OneCycleLR):
    """1cycle. Raises torch's ValueError "Tried to step N times..." past ``total_steps``."""

    def __init__(
        self,
        optimizer,
        max_lr,
        total_steps=None,
        epochs=None,
        steps_per_epoch=None,
        pct_start=0.3,
        anneal_strategy="cos",
        cycle_momentum=True,
        base_momentum=0.85,
        max_momentum=0.95,
        div_factor=25.0,
        final_div_factor=1e4,
        three_phase=False,
        last_epoch=-1,
        *,
        server=None,
    ) -> None:
        check_optimizer(optimizer)
        self.optimizer = optimizer
        # int/float distinctions the server cannot see once numbers are on the wire.
        # int vs float (total_steps=10.0, pct_start=1) does not survive the wire;
        # the ranges and the total_steps/epochs rule are the server's.
        if total_steps is not None:
            if not isinstance(total_steps, int):
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
        elif epochs is not None and steps_per_epoch is not None:
            if not isinstance(epochs, int):
                raise ValueError(f"Expected positive integer epochs, but got {epochs}")
            if not isinstance(steps_per_epoch, int):
                raise ValueError(f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}")
        if not isinstance(pct_start, float):
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        self._anneal_func_type = anneal_strategy
        self.cycle_momentum = cycle_momentum
        # initial_lr/max_lr/min_lr, momentum seeding and total_steps come from the
        # server's simulation of this constructor (opened.group_keys, opened.attrs).
        spec = make_spec(
            "OneCycleLR",
            max_lr=max_lr,
            total_steps=total_steps,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            pct_start=pct_start,
            anneal_strategy=anneal_strategy,
            cycle_momentum=cycle_momentum,
            base_momentum=base_momentum,
            max_momentum=max_momentum,
            div_factor=div_factor,
            final_div_factor=final_div_factor,
            three_phase=three_phase,
        )
        self._bridge_init(optimizer, spec, last_epoch, server)

    def _anneal_func(self, *args, **kwargs):
        raise NotImplementedError(_SERVER_MATH)


# --------------------------------------------------------------------------
# Composites


def _check_children(owner: str, optimizer: Any, schedulers: Any) -> list:
    schedulers = list(schedulers)
    for idx, scheduler in enumerate(schedulers):
        if not hasattr(scheduler, "optimizer"):
            raise TypeError(f"{owner} at index {idx} should have `optimizer` as its attribute.")
        if isinstance(scheduler, _torch.ReduceLROnPlateau):
            raise ValueError(
                f"{owner} does not support `ReduceLROnPlateau` scheduler as it "
                "requires additional kwargs to be specified when calling `step`, "
                f"but got one at index {idx} in the given schedulers sequence."
            )
        if not isinstance(scheduler, Bridged):
            raise TypeError(
                f"lrbridge: {owner} composes lrbridge schedulers; the one at index {idx} is "
                f"{type(scheduler).__module__}.{type(scheduler).__name__}. Build it with "
                f"lrbridge.lr_scheduler.{type(scheduler).__name__} instead."
            )
        if optimizer != scheduler.optimizer:
            raise ValueError(
                f"{owner} expects all schedulers to belong to the same optimizer, but "
                f"got scheduler {scheduler.__class__.__name__} at index {idx} has {scheduler.optimizer}, "
                f"which is different from {optimizer.__class__.__name__}."
            )
    return schedulers


def _composite_server(server: Any, schedulers: list) -> Any:
    """By default a composite talks to the server its first child talks to."""
    return server if server is not None else schedulers[0]._client_for()


class _Composite(Bridged):
    """torch's composites nest their children's state_dicts under ``_schedulers``."""

    def state_dict(self) -> dict[str, Any]:
        self._sync_children()
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        children = state_dict.get("_schedulers")
        super().load_state_dict(state_dict)  # `_schedulers` is the children themselves: never loaded
        if isinstance(children, list):
            # The children are views of this composite's rows: their state is data only.
            for child, saved in zip(self._schedulers, children):
                child.__dict__.update(loadable(saved))
        self._children_at = None


class SequentialLR(_Composite, _torch.SequentialLR):
    """Children run one after another; at a milestone the next restarts at its own step 0."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1, *, server=None) -> None:
        if len(schedulers) < 1:
            raise ValueError(f"{self.__class__.__name__} expects at least one scheduler, but got no scheduler.")
        schedulers = _check_children(self.__class__.__name__, optimizer, schedulers)
        milestones = list(milestones)  # their count is checked by the server
        self._schedulers = schedulers
        self._milestones = milestones
        spec = make_spec("SequentialLR", schedulers=[s._spec for s in schedulers], milestones=milestones)
        for s in schedulers:
            adopt(self, s)
        # LRScheduler.__init__ resets nothing here; the composite's row 0 is torch's
        # "lrs back to initial_lr, then the first child's initial step".
        # The server constructs the children too: from the state the first one found.
        inits = schedulers[0]._snapshot[0]
        self._bridge_init(optimizer, spec, last_epoch, _composite_server(server, schedulers), inits)

    def recursive_undo(self, sched=None) -> None:
        pass  # the composite spec replays construction on the server


class ChainedScheduler(_Composite, _torch.ChainedScheduler):
    """Every child steps each step (effects multiply). Takes no constructor step of its own."""

    def __init__(self, schedulers, optimizer=None, *, server=None) -> None:
        if len(schedulers) < 1:
            raise ValueError(
                f"{self.__class__.__name__} expects at least one scheduler to be chained, but got no scheduler."
            )
        optimizer = optimizer or schedulers[0].optimizer
        schedulers = _check_children(self.__class__.__name__, optimizer, schedulers)
        self._schedulers = schedulers
        for s in schedulers:
            adopt(self, s)
        spec = make_spec("ChainedScheduler", schedulers=[s._spec for s in schedulers])
        # Row 0 of the chain is what the children's constructions left on the groups.
        # The server constructs the children too: from the state the first one found.
        inits = schedulers[0]._snapshot[0]
        self._bridge_init(optimizer, spec, -1, _composite_server(server, schedulers), inits)


# --------------------------------------------------------------------------
# Metric-driven


class ReduceLROnPlateau(MetricDriven, _torch.ReduceLROnPlateau):
    """Reduce the lr when a metric stops improving. ``step(metrics)`` is one server round trip.

    The plateau state (best, bad epochs, cooldown) is the metric state
    (``_metric.MetricDriven``), carried by the client and part of
    ``state_dict()``; ``best``, ``num_bad_epochs``, ``cooldown_counter`` mirror it.
    """

    # The process's connection: not state (see _scheduler_base.PROCESS_SLOTS).
    __slots__ = ("_client", "_client_arg", "_opened", "_open_via", "_use_pending")

    def __init__(
        self,
        optimizer,
        mode="min",
        factor=0.1,
        patience=10,
        threshold=1e-4,
        threshold_mode="rel",
        cooldown=0,
        min_lr=0,
        eps=1e-8,
        *,
        server=None,
    ) -> None:
        check_number("factor", factor)
        check_optimizer(optimizer)
        self.factor = factor
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            self.default_min_lr = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = current_lrs(optimizer)
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self._client_arg = server
        self._client = self._use_pending = None
        self._spec = make_spec(
            "ReduceLROnPlateau",
            mode=mode,
            factor=factor,
            patience=patience,
            threshold=threshold,
            threshold_mode=threshold_mode,
            cooldown=cooldown,
            min_lr=min_lr,
            eps=eps,
        )
        self._metric_begin(self._open())
        self.mode_worse = inf if mode == "min" else -inf
        self._mirror_state()

    _client_for = Bridged._client_for

    def _open(self):
        via = take_open_via(self)  # from_ref: by ref, with the run
        client = self._client_for()
        self._opened = opened = client.open(self._spec, group_inits(self.optimizer), **via)
        if opened.resolved is not None:
            self._spec = opened.spec
        self._spec_hash = opened.spec_hash
        heartbeat.watch(self, client, opened)
        return opened

    def _mirror_state(self) -> None:
        state = self._metric_state or {}
        best = state.get("best")
        self.best = self.mode_worse if best is None else float(best)
        self.num_bad_epochs = int(state.get("num_bad_epochs", 0))
        self.cooldown_counter = int(state.get("cooldown_counter", 0))

    def step(self, metrics, epoch=None) -> None:  # type: ignore[override]
        current = float(metrics)  # a 0-dim tensor works too
        if self._use_pending is not None:
            from .registry import send_use

            send_use(self)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self.last_epoch = epoch
        self._follow_min_lrs()
        groups = self.optimizer.param_groups
        now = [group_value(g["lr"]) for g in groups]
        # torch reduces the lrs as they are now, hand edits included. After add_param_group
        # the server extends a single min_lr, or raises torch's RuntimeError.
        reply = self._metric_step(current)
        write_reduced(groups, reply["lr"], now)
        self._mirror_state()
        self._last_lr = current_lrs(self.optimizer)
        if list(reply["lr"]) != now:
            heartbeat.lr_changed(self, epoch, reply["lr"])

    def _follow_min_lrs(self) -> None:
        """torch reads ``min_lrs`` at each reduction, so a list edited by hand (one more
        entry after add_param_group) counts: the spec follows it (a re-open)."""
        if self.default_min_lr is None and list(self.min_lrs) != self._spec.get("min_lr"):
            self._spec = {**self._spec, "min_lr": plain(list(self.min_lrs))}
            self._open()

    def get_last_lr(self) -> list:
        return self._last_lr

    def state_dict(self) -> dict[str, Any]:
        return state_of(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = loadable(state_dict)
        if "_state" in saved and "_metric_state" not in saved:
            saved["_metric_state"] = saved.pop("_state")  # the key's name in older checkpoints
        constructed_pin = self.__dict__.get("_registry")
        self.__dict__.update(saved)
        if constructed_pin is not None and saved.get("_registry") is not None:
            from .registry import retarget_use

            retarget_use(self, saved["_registry"], self.last_epoch + 1)
        if saved.get("_spec") is not None and saved.get("_spec_hash") != self._opened.spec_hash:
            if constructed_pin is not None and saved.get("_registry") is not None:
                from .registry import kept_message

                warnings.warn(kept_message(saved["_registry"], constructed_pin), UserWarning, stacklevel=2)
            self._open()

    def _reduce_lr(self, epoch) -> None:
        raise NotImplementedError(_SERVER_MATH)

    def _is_better(self, a, best):
        raise NotImplementedError(_SERVER_MATH)

    def _init_is_better(self, mode, threshold, threshold_mode) -> None:
        pass


from ._from_ref import from_ref  # noqa: E402  (builds the classes above)
