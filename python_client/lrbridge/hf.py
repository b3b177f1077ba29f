"""``lrbridge.get_scheduler``: transformers.get_scheduler's signature and semantics.

    sched = lrbridge.get_scheduler("cosine", optimizer, num_warmup_steps=100, num_training_steps=1000)

Which arguments each name takes, and which it ignores, follow
transformers.optimization.get_scheduler (v5); the values come from the
server's `hf` recipe, which transcribes transformers' lr lambdas. Like
transformers, polynomial and ``min_lr`` read ``optimizer.defaults["lr"]``.
Returns a ``lrbridge.Schedule`` (an LRScheduler: step, get_last_lr,
state_dict/load_state_dict as torch's; ``step(metric)`` for "greedy"), or
lrbridge's drop-in ReduceLROnPlateau for "reduce_lr_on_plateau".
"""

from __future__ import annotations

import warnings
from typing import Any

from torch.optim import Optimizer

__all__ = ["get_scheduler"]


def _shown(name: str) -> str:
    """How transformers' messages show the name (its SchedulerType member)."""
    return f"SchedulerType.{name.upper()}"


def get_scheduler(
    name: Any,
    optimizer: Optimizer,
    num_warmup_steps: int | None = None,
    num_training_steps: int | None = None,
    scheduler_specific_kwargs: dict | None = None,
    *,
    server: Any = None,
):
    """transformers.get_scheduler, served by lrbridge (``server=`` as the schedulers take it)."""
    from .schedule import Schedule

    name = str(getattr(name, "value", name))  # a transformers.SchedulerType, or its string
    if name == "constant":
        return Schedule(optimizer, {"type": "hf", "name": "constant"}, server=server)
    kwargs = dict(scheduler_specific_kwargs or {})
    if name == "reduce_lr_on_plateau":
        from .lr_scheduler import ReduceLROnPlateau

        return ReduceLROnPlateau(optimizer, **kwargs, server=server)
    if name == "greedy":
        kwargs.pop("verbose", None)  # only prints
        return Schedule(optimizer, {"type": "greedy", **kwargs}, server=server)
    if num_warmup_steps is None:
        raise ValueError(f"{_shown(name)} requires `num_warmup_steps`, please provide that argument.")
    spec: dict[str, Any] = {"type": "hf", "name": name, "num_warmup_steps": num_warmup_steps}
    if name == "constant_with_warmup":
        return Schedule(optimizer, spec, server=server)
    if name == "inverse_sqrt":
        return Schedule(optimizer, {**spec, **kwargs}, server=server)
    if name == "warmup_stable_decay":
        if num_training_steps is None and kwargs.get("num_stable_steps") is None:
            raise ValueError("Either num_training_steps or num_stable_steps must be specified.")
        if num_training_steps is not None and kwargs.get("num_stable_steps") is not None:
            warnings.warn("Both num_training_steps and num_stable_steps are specified. num_stable_steps will be used.")
        if num_training_steps is not None:
            spec["num_training_steps"] = num_training_steps
        return Schedule(optimizer, {**spec, **kwargs}, server=server)
    if num_training_steps is None:
        raise ValueError(f"{_shown(name)} requires `num_training_steps`, please provide that argument.")
    spec["num_training_steps"] = num_training_steps
    return Schedule(optimizer, {**spec, **kwargs}, server=server)
