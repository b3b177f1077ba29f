"""The LR range test (Smith 2015; fastai ``lr_find``), driven by the schedule server.

    result = lrbridge.find_lr(model, optimizer, F.cross_entropy, train_loader)
    result.valley, result.steep, result.minimum, result.slide
    OneCycleLR(optimizer, **result.suggest_bounds(only="max_lr"), total_steps=...)

The lr rises from ``start_lr`` to ``end_lr`` over ``num_steps`` batches; each
batch's loss is sent to the server (a ``metric`` message), which smooths it,
decides whether to stop, and answers with the next lr. The smoothing (EMA,
β = 0.98, bias-corrected), the stop rule (smoothed loss > 4 × best) and the
suggestions are the server's (its ``range_test`` schedule); this module
runs the batches and puts the model and optimizer back as they were.

The suggestions (fastai's, computed on the smoothed losses with the first
``num_steps // 10`` and the last 5 points left out):

- ``valley`` (fastai's default): the longest run over which the smoothed loss
  keeps falling, and the lr about halfway into it: fast but still safe.
- ``steep``: the lr where the loss falls fastest against log(lr).
- ``minimum``: the lr of the lowest smoothed loss divided by 10 (at the
  minimum itself training is already near divergence).
- ``slide``: fastai's interval slide rule: walking back from the end, the
  left edge of the first 15-point window whose two ends have loss gradients
  within 0.005 of each other (where the curve has flattened).

Any of them may be None when the test stopped after too few points.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn

from ._metric import MetricDriven
from ._row_writer import row_writer
from ._scheduler_base import check_optimizer, group_inits
from .client import Client, Opened, resolve_client

__all__ = ["RangeTestResult", "find_lr"]

SUGGESTIONS = ("valley", "steep", "minimum", "slide")


@dataclass
class RangeTestResult:
    """The curve and the server's suggestions."""

    lrs: list[float]
    """lr used for each batch"""
    losses: list[float]
    """raw batch losses"""
    smoothed: list[float]
    """smoothed losses (EMA β, bias-corrected), one per batch"""
    valley: float | None
    steep: float | None
    minimum: float | None
    slide: float | None
    reason: str
    """"finished" (num_steps batches) or "diverged" (stopped early)"""
    spec: dict = field(default_factory=dict)
    """the range test spec as the server bound it (defaults filled in)"""

    @property
    def suggestion(self) -> float | None:
        """The default suggestion: valley (fastai's), else steep, else minimum."""
        return next((v for v in (self.valley, self.steep, self.minimum) if v is not None), None)

    @property
    def diverged(self) -> bool:
        return self.reason == "diverged"

    def suggestions(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in SUGGESTIONS}

    def suggest_bounds(self, method: str = "valley", div: float = 4.0, only: str | None = None) -> dict[str, float]:
        """Bounds for a cyclical or 1cycle schedule: ``max_lr`` = the chosen suggestion,
        ``base_lr`` = max_lr / div (Smith 2015: the lower bound 3–4× below the upper).

        ``CyclicLR(opt, **r.suggest_bounds())``; ``OneCycleLR(opt, **r.suggest_bounds(only="max_lr"), ...)``.
        """
        if method not in SUGGESTIONS:
            raise ValueError(f"lrbridge: method must be one of {SUGGESTIONS}, got {method!r}")
        max_lr = getattr(self, method)
        if max_lr is None:
            max_lr = self.suggestion
        if max_lr is None:
            raise ValueError(
                f"lrbridge: the range test stopped after {len(self.lrs)} batches ({self.reason}), "
                "too few to suggest an lr; lower start_lr or raise num_steps"
            )
        bounds = {"base_lr": max_lr / div, "max_lr": max_lr}
        if only is not None:
            return {only: bounds[only]}
        return bounds

    def plot(self, path: "str | None" = None, ax: Any = None, title: str | None = None) -> Any:
        """Smoothed (and raw) loss against lr on a log axis, suggestions marked.

        Needs matplotlib (imported here, not by lrbridge). Writes ``path`` when given;
        returns the matplotlib Figure.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError as exc:
            raise ImportError(
                "lrbridge: RangeTestResult.plot needs matplotlib, which is not installed "
                "(pip install matplotlib, or lrbridge[examples])"
            ) from exc
        if ax is None:
            fig = Figure(figsize=(6.4, 4.2))
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        ax.plot(self.lrs, self.losses, color="0.75", linewidth=0.8, label="batch loss")
        ax.plot(self.lrs, self.smoothed, color="C0", label="smoothed loss")
        colors = {"valley": "C1", "steep": "C2", "minimum": "C3", "slide": "C4"}
        for name, value in self.suggestions().items():
            if value is not None:
                ax.axvline(value, color=colors[name], linestyle="--", linewidth=1, label=f"{name} {value:.2e}")
        ax.set_xscale("log" if self.spec.get("mode", "exp") == "exp" else "linear")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        finite = [v for v in self.smoothed if math.isfinite(v)]
        if finite:
            low, first = min(finite), finite[0]
            ax.set_ylim(low - 0.1 * abs(first - low) - 1e-3, max(first, low) + 0.5 * abs(first - low) + 1e-3)
        ax.set_title(title or f"LR range test ({self.reason} after {len(self.lrs)} batches)")
        ax.legend(fontsize=8)
        if path is not None:
            fig.savefig(path, dpi=120, bbox_inches="tight")
        return fig


class _RangeTest(MetricDriven):
    """The range test's state and its round trip per batch: a metric-driven schedule
    with no scheduler object around it."""

    __slots__ = ("optimizer", "_opened", "_client", "_metric_state")

    def __init__(self, client: Client, optimizer: torch.optim.Optimizer, opened: Opened) -> None:
        self._client, self.optimizer, self._opened = client, optimizer, opened
        self._metric_begin(opened)

    def _client_for(self) -> Client:
        return self._client


def _cycled(batches: Iterable) -> Iterator:
    """Batches forever: a re-iterable (list, DataLoader) is iterated again (a DataLoader
    reshuffles); a one-shot iterator's batches are kept and replayed."""
    if iter(batches) is batches:  # one-shot iterator
        seen = []
        for batch in batches:
            seen.append(batch)
            yield batch
        if not seen:
            raise ValueError("lrbridge: find_lr got no batches")
        while True:
            yield from seen
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise ValueError("lrbridge: find_lr got no batches")


def _default_step(model: nn.Module, loss_fn: Callable, batch: Any) -> torch.Tensor:
    inputs, targets = batch[0], batch[1]
    return loss_fn(model(inputs), targets)


def find_lr(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable,
    batches: Iterable,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exp",
    *,
    beta: float | None = None,
    diverge_factor: float | None = None,
    compute_loss: Callable[[nn.Module, Callable, Any], torch.Tensor] | None = None,
    server: Any = None,
) -> RangeTestResult:
    """Run the LR range test and put ``model`` and ``optimizer`` back as they were.

    ``batches``: (inputs, targets) pairs, e.g. a DataLoader; cycled when shorter
    than ``num_steps``. ``loss_fn(model(inputs), targets)`` is the loss, unless
    ``compute_loss(model, loss_fn, batch)`` says otherwise. Every param group
    gets the same lr (fastai's lr_find). ``mode``: "exp" (geometric) or "linear".
    ``beta`` (0.98) and ``diverge_factor`` (4) tune the server's smoothing and
    stop rule.

    Afterwards the model's state_dict, its train/eval mode and the optimizer's
    state_dict (lrs, momentum buffers, step counts) are restored; the global
    RNG is not (the test's batches and dropout consumed it).
    """
    check_optimizer(optimizer)
    if not isinstance(model, nn.Module):
        raise TypeError(f"lrbridge: model must be an nn.Module, got {type(model).__name__}")
    step_loss = compute_loss or _default_step
    spec: dict[str, Any] = {"type": "range_test", "start_lr": start_lr, "end_lr": end_lr, "num_steps": num_steps, "mode": mode}
    if beta is not None:
        spec["beta"] = beta
    if diverge_factor is not None:
        spec["diverge_factor"] = diverge_factor

    client = resolve_client(server)
    opened = client.open(spec, group_inits(optimizer))
    if opened.kind != "metric":
        raise RuntimeError(f"lrbridge: the server bound range_test as {opened.kind!r}, expected a metric-driven spec")

    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    was_training = model.training
    test = _RangeTest(client, optimizer, opened)
    lrs: list[float] = []
    losses: list[float] = []
    next_lrs = list(opened.lr or [])
    groups = optimizer.param_groups
    write_row = row_writer(groups, None)  # lr only: the range test leaves momentum alone
    try:
        model.train()
        for batch in _cycled(batches):
            write_row(groups, next_lrs, None, 0)
            loss = step_loss(model, loss_fn, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            lrs.append(next_lrs[0])
            losses.append(value)
            next_lrs = test._metric_step(value)["lr"]
            if test._metric_state.get("done"):
                break
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        model.train(was_training)

    state = test._metric_state or {}
    suggestions = state.get("suggestions") or {}
    return RangeTestResult(
        lrs=lrs,
        losses=losses,
        smoothed=[float(v) for v in state.get("losses", [])],
        reason=str(state.get("reason") or "finished"),
        spec=dict(opened.canonical or spec),
        **{name: None if suggestions.get(name) is None else float(suggestions[name]) for name in SUGGESTIONS},
    )
