"""Builders for lrbridge's library schedule specs (the grammar in proto/schema.json).

Each builder returns a plain dict; nothing is computed here. Arguments left
as ``None`` are left out, so the server fills its documented default (and
the canonical form, ``Schedule.canonical``, shows it). Validation is the
server's: a bad value raises ``lrbridge.SpecError`` naming the field when the
spec is opened.

Values are multipliers of each param group's base lr (its ``initial_lr``),
with ``absolute(spec, lr)`` the base is ``lr`` instead. Row k of a schedule is
its value after k ``step()`` calls.

    from lrbridge import spec as S
    S.warmup(S.rex(total_steps=9_000), steps=1_000)          # REX after a linear warmup
    S.sample(S.exponential(10_000, end=0.01), times=3, total_steps=10_000)  # = step decay
    S.with_momentum(S.cosine(10_000), S.inverse_momentum(0.95, 0.85))
    S.hf("cosine", num_warmup_steps=500, num_training_steps=10_000)
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = [
    "absolute",
    "combine",
    "constant",
    "cosine",
    "cycles",
    "exponential",
    "flat_cos",
    "fractal",
    "greedy",
    "hf",
    "inverse_momentum",
    "inverse_sqrt",
    "join",
    "linear",
    "module",
    "multiply",
    "noise",
    "one_cycle",
    "one_minus_sqrt",
    "phase",
    "piecewise",
    "polynomial",
    "range_test",
    "rex",
    "sample",
    "sgdr",
    "snapshot",
    "step",
    "tanh",
    "timm_cosine",
    "torch_spec",
    "warmup",
    "with_momentum",
    "wsd",
]

_UNSET: Any = object()  # for fields where an explicit None means JSON null


def _spec(type_name: str, **fields: Any) -> dict:
    """{"type": ..., fields...} without the fields left as None (defaults on the server)."""
    out: dict[str, Any] = {"type": type_name}
    for key, value in fields.items():
        if value is _UNSET or value is None:
            continue
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


# --------------------------------------------------------------------------
# Profiles over total_steps: value `start` at step 0, `end` from total_steps on.


def constant(value: float | None = None) -> dict:
    """Multiplier ``value`` (default 1) at every step."""
    return _spec("constant", value=value)


def linear(total_steps: int, start: float | None = None, end: float | None = None) -> dict:
    """``start + (end - start)·p``, p = min(t, T)/T (defaults 1 → 0)."""
    return _spec("linear", total_steps=total_steps, start=start, end=end)


def cosine(total_steps: int, start: float | None = None, end: float | None = None) -> dict:
    """``end + (start - end)·(1 + cos(π·p))/2`` (defaults 1 → 0), held at end after T."""
    return _spec("cosine", total_steps=total_steps, start=start, end=end)


def exponential(total_steps: int, end: float, start: float | None = None) -> dict:
    """Geometric ``start·(end/start)^p`` (start default 1; both > 0)."""
    return _spec("exponential", total_steps=total_steps, start=start, end=end)


def polynomial(total_steps: int, power: float | None = None, start: float | None = None, end: float | None = None) -> dict:
    """``end + (start - end)·(1 - p)^power`` (power default 1)."""
    return _spec("polynomial", total_steps=total_steps, power=power, start=start, end=end)


def rex(total_steps: int, w: float | None = None, start: float | None = None, end: float | None = None) -> dict:
    """REX: ``end + (start - end)·(1 - p)/(1 - w·p)``; w = 0.5 (default) is the paper's, 0.9 the companion code's."""
    return _spec("rex", total_steps=total_steps, w=w, start=start, end=end)


def tanh(
    total_steps: int, lb: float | None = None, ub: float | None = None, start: float | None = None, end: float | None = None
) -> dict:
    """timm's tanh profile (lb = -7, ub = 3 by default)."""
    return _spec("tanh", total_steps=total_steps, lb=lb, ub=ub, start=start, end=end)


def one_minus_sqrt(total_steps: int, start: float | None = None, end: float | None = None) -> dict:
    """``end + (start - end)·(1 - √p)`` (the WSD "1-sqrt" cooldown)."""
    return _spec("one_minus_sqrt", total_steps=total_steps, start=start, end=end)


def step(every: int, gamma: float | None = None, start: float | None = None) -> dict:
    """Step decay ``start·gamma^⌊t/every⌋`` (torch StepLR; gamma default 0.1)."""
    return _spec("step", every=every, gamma=gamma, start=start)


def piecewise(boundaries: Sequence[int], values: Sequence[float]) -> dict:
    """``values[i]`` for ``boundaries[i-1] <= t < boundaries[i]`` (one more value than boundaries)."""
    return _spec("piecewise", boundaries=list(boundaries), values=list(values))


def inverse_sqrt(start: float | None = None, timescale: float | None = None) -> dict:
    """``start/√((t + τ)/τ)`` (τ default 10000)."""
    return _spec("inverse_sqrt", start=start, timescale=timescale)


# --------------------------------------------------------------------------
# Combinators


def sample(schedule: dict, every: int | None = None, times: int | None = None, total_steps: int | None = None) -> dict:
    """Sampling rate (REX paper): re-read ``schedule`` every ``every`` steps, or ``times``
    times over ``total_steps`` (a staircase); give one of the two."""
    return _spec("sample", schedule=schedule, every=every, times=times, total_steps=total_steps)


def warmup(
    then: dict,
    steps: int,
    shape: str | None = None,
    from_: float | None = None,
    mode: str | None = None,
) -> dict:
    """Warmup of ``steps`` steps before/over ``then``.

    shape: "linear" (default), "exponential" (needs from_ > 0), "cosine".
    from_: start multiplier (default 0, HF's convention: lr 0 at step 0).
    mode: "prepend" (default: ``then`` starts at step ``steps`` with its own step 0)
    or "overlay" (the ramp replaces ``then``'s first steps; ``then`` keeps its clock).
    """
    return _spec("warmup", then=then, steps=steps, shape=shape, **{"from": from_}, mode=mode)


def join(schedules: Sequence[dict], boundaries: Sequence[int]) -> dict:
    """optax join_schedules: piece i runs from boundaries[i-1] with its own step 0."""
    return _spec("join", schedules=list(schedules), boundaries=list(boundaries))


def phase(shape: str, start: float | None = None, end: float | None = None, **params: Any) -> dict:
    """One phase of ``combine``: a profile shape ("linear", "cosine", "rex", ...), its
    start/end multipliers and its own parameters (``w``, ``power``, ``lb``/``ub``)."""
    return {k: v for k, v in {"shape": shape, "start": start, "end": end, **params}.items() if v is not None}


def combine(pcts: Sequence[float], phases: Sequence[dict], total_steps: int) -> dict:
    """fastai combine_scheds: phase i covers the fraction pcts[i] of ``total_steps``."""
    return _spec("combine", pcts=list(pcts), phases=list(phases), total_steps=total_steps)


def multiply(*schedules: dict) -> dict:
    """Product of multipliers (e.g. a cosine times a slow exponential)."""
    if len(schedules) == 1 and isinstance(schedules[0], (list, tuple)):
        schedules = tuple(schedules[0])
    return _spec("multiply", schedules=list(schedules))


def cycles(
    t_initial: int,
    shape: str | None = None,
    start: float | None = None,
    end: float | None = None,
    cycle_mul: float | None = None,
    cycle_decay: float | None = None,
    cycle_limit: int | None = None,
    k_decay: float | None = None,
    **params: Any,
) -> dict:
    """Restarting cycles of any profile (SGDR generalised; timm's arithmetic).

    Cycle i lasts ``t_initial·cycle_mul^i`` steps, starts at ``start·cycle_decay^i``
    and ends at ``end``; after ``cycle_limit`` cycles it holds ``end``. ``k_decay``
    reads the profile at t^k/T^k. ``params``: the profile's own (w, power, lb, ub).
    Reports cycle boundaries (for SnapshotSaver).
    """
    return _spec(
        "cycles",
        shape=shape,
        start=start,
        end=end,
        t_initial=t_initial,
        cycle_mul=cycle_mul,
        cycle_decay=cycle_decay,
        cycle_limit=cycle_limit,
        k_decay=k_decay,
        **params,
    )


def noise(
    schedule: dict,
    range: "int | Sequence[int]",
    pct: float | None = None,
    std: float | None = None,
    noise_type: str | None = None,
    seed: int | None = None,
) -> dict:
    """timm's deterministic noise ``lr·(1 + n)`` from step ``range`` (or within [start, end)),
    seeded by ``seed + t``: the same run gives the same lrs."""
    return _spec("noise", schedule=schedule, range=range, pct=pct, std=std, noise_type=noise_type, seed=seed)


# --------------------------------------------------------------------------
# Library recipes


def hf(name: str, num_warmup_steps: int | None = None, num_training_steps: int | None = None, **kwargs: Any) -> dict:
    """transformers.get_scheduler(name, ...) with the same argument names; the
    scheduler_specific_kwargs (num_cycles, power, lr_end, lr_init, min_lr,
    min_lr_rate, num_decay_steps, ...) are flattened in."""
    return _spec("hf", name=name, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps, **kwargs)


def wsd(
    decay_steps: int,
    warmup_steps: int | None = None,
    stable_steps: int | None = None,
    total_steps: int | None = None,
    warmup_shape: str | None = None,
    decay_shape: str | None = None,
    min_lr_ratio: float | None = None,
) -> dict:
    """Warmup-stable-decay (HF's arithmetic): give ``stable_steps`` or ``total_steps``.
    Shapes: "linear", "cosine", "1-sqrt" (decay default "1-sqrt")."""
    return _spec(
        "wsd",
        warmup_steps=warmup_steps,
        decay_steps=decay_steps,
        stable_steps=stable_steps,
        total_steps=total_steps,
        warmup_shape=warmup_shape,
        decay_shape=decay_shape,
        min_lr_ratio=min_lr_ratio,
    )


def timm_cosine(t_initial: int, **kwargs: Any) -> dict:
    """timm CosineLRScheduler (lr_min, cycle_mul, cycle_decay, cycle_limit, warmup_t,
    warmup_lr_init, warmup_prefix, k_decay, t_in_epochs, noise_range_t, noise_pct,
    noise_std, noise_type, noise_seed). lr_min and warmup_lr_init are absolute lrs."""
    return _spec("timm_cosine", t_initial=t_initial, **kwargs)


def sgdr(t_0: int, t_mult: float | None = None, m_mul: float | None = None, alpha: float | None = None) -> dict:
    """SGDR as Keras CosineDecayRestarts: cycles of ``t_0·t_mult^i`` steps (t_mult default 2),
    peak ``m_mul^i``, floor ``alpha``. Reports cycle boundaries."""
    return _spec("sgdr", t_0=t_0, t_mult=t_mult, m_mul=m_mul, alpha=alpha)


def snapshot(total_steps: int, snapshots: int) -> dict:
    """Snapshot ensembles (Huang et al.): ``snapshots`` cosine cycles of ⌈T/M⌉ steps
    restarting at the base lr. Reports cycle boundaries."""
    return _spec("snapshot", total_steps=total_steps, snapshots=snapshots)


def one_cycle(
    total_steps: int,
    div: float | None = None,
    div_final: float | None = None,
    pct_start: float | None = None,
    moms: "Sequence[float] | None" = _UNSET,
) -> dict:
    """fastai fit_one_cycle (div 25, div_final 1e5, pct_start 0.25, moms (0.95, 0.85, 0.95)).
    ``moms=None`` turns its momentum off. The group's base lr is lr_max."""
    out = _spec("one_cycle", total_steps=total_steps, div=div, div_final=div_final, pct_start=pct_start)
    if moms is not _UNSET:
        out["moms"] = None if moms is None else list(moms)
    return out


def flat_cos(total_steps: int, pct_start: float | None = None, div_final: float | None = None) -> dict:
    """fastai fit_flat_cos: flat, then cosine from pct_start (0.75) down to 1/div_final."""
    return _spec("flat_cos", total_steps=total_steps, pct_start=pct_start, div_final=div_final)


def fractal(horizon: int, lambda_min: float, lambda_max: float) -> dict:
    """Fractal learning rates (Agarwal et al. 2021): Chebyshev steps over a power-of-2 horizon."""
    return _spec("fractal", horizon=horizon, lambda_min=lambda_min, lambda_max=lambda_max)


def module(code: str, library: str, params: dict | None = None) -> dict:
    """A schedule module's spec node: its JavaScript and the library version it was built
    against (``lrbridge compile FILE.ts`` prints one; ``lrbridge.compile_module`` returns one)."""
    return _spec("module", code=code, library=library, params=params)


def range_test(
    start_lr: float | None = None,
    end_lr: float | None = None,
    num_steps: int | None = None,
    mode: str | None = None,
    beta: float | None = None,
    diverge_factor: float | None = None,
    skip_start: int | None = None,
    skip_end: int | None = None,
) -> dict:
    """The LR range test as a metric-driven spec (absolute lrs; see lrbridge.find_lr)."""
    return _spec(
        "range_test",
        start_lr=start_lr,
        end_lr=end_lr,
        num_steps=num_steps,
        mode=mode,
        beta=beta,
        diverge_factor=diverge_factor,
        skip_start=skip_start,
        skip_end=skip_end,
    )


def greedy(
    mode: str | None = None,
    factor: float | None = None,
    patience: int | None = None,
    threshold: float | None = None,
    threshold_mode: str | None = None,
    cooldown: int | None = None,
    warmup: int | None = None,
    min_lr: "float | list[float] | None" = None,
    max_lr: "float | list[float] | None" = None,
    eps: float | None = None,
    smooth: bool | None = None,
    window_size: int | None = None,
    reset_start: int | None = None,
) -> dict:
    """transformers' GreedyLR as a metric-driven spec: step it with ``step(metric)``."""
    return _spec(
        "greedy",
        mode=mode,
        factor=factor,
        patience=patience,
        threshold=threshold,
        threshold_mode=threshold_mode,
        cooldown=cooldown,
        warmup=warmup,
        min_lr=min_lr,
        max_lr=max_lr,
        eps=eps,
        smooth=smooth,
        window_size=window_size,
        reset_start=reset_start,
    )


def torch_spec(type_name: str, **kwargs: Any) -> dict:
    """A torch scheduler spec: class name and its constructor kwargs (None left out)."""
    return _spec(type_name, **kwargs)


# --------------------------------------------------------------------------
# Top level only: absolute lrs, momentum


def absolute(spec: dict, lr: "float | Sequence[float]") -> dict:
    """``lr`` (one number, or one per group) replaces the groups' base lrs (their
    ``initial_lr``): the schedule no longer depends on how the optimizer was built.
    The server still multiplies the spec's values by it (``constant(0.5)`` with
    ``lr=0.1`` gives 0.05), so ``absolute(constant(), lr=0.1)`` is a fixed 0.1."""
    out = dict(spec)
    out["scale"] = "absolute"
    out["lr"] = list(lr) if isinstance(lr, (list, tuple)) else lr
    return out


def inverse_momentum(max: float | None = None, min: float | None = None, lr_range: "Sequence[float] | None" = None) -> dict:
    """Momentum inverse to the lr (Smith's 1cycle): ``max`` at the lowest lr, ``min`` at the
    highest (0.95/0.85). ``lr_range``: [lo, hi] multipliers, default the schedule's own range."""
    return _spec("inverse", max=max, min=min, lr_range=lr_range)


def with_momentum(spec: dict, momentum: dict) -> dict:
    """Attach momentum (or Adam's beta1) to a schedule: ``inverse_momentum(...)``, or any
    schedule spec whose values are the momentum itself."""
    out = dict(spec)
    out["momentum"] = momentum
    return out
