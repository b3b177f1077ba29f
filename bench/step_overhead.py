"""Section 1: `scheduler.step()` of lrbridge.lr_scheduler.X vs torch.optim.lr_scheduler.X.

Both run in this one Python process against one server the harness started.
Amortized cost: a tight loop of N steps timed as a whole, several repeats,
lrbridge and torch interleaved (order flipped every repeat) so machine drift
hits both alike. Tail: one more run per implementation with perf_counter_ns
around every single call (window refills included).
"""

from __future__ import annotations

import gc
import itertools
import time
import warnings

import torch

import lrbridge.lr_scheduler as bridged
from common import log, median, percentiles_ns, spread
from specs import STEP_SCHEDULERS, step_kwargs

IMPLS = ("lrbridge", "torch")


def make_optimizer(groups: int, tensor_lr: bool) -> torch.optim.Optimizer:
    params = [torch.zeros(2, requires_grad=True) for _ in range(groups)]
    param_groups = [{"params": [p], "lr": torch.tensor(0.1) if tensor_lr else 0.1} for p in params]
    opt = torch.optim.SGD(param_groups, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = torch.zeros_like(p)  # zero grads: optimizer.step() leaves the params alone
    return opt


def make_scheduler(impl: str, name: str, opt, steps: int, endpoint: str):
    kwargs = step_kwargs(name, steps)
    if impl == "torch":
        sched = getattr(torch.optim.lr_scheduler, name)(opt, **kwargs)
    else:
        sched = getattr(bridged, name)(opt, **kwargs, server=endpoint)
    # One optimizer step after construction, as in training: neither implementation
    # then takes the "step() before optimizer.step()" warning path on its first call.
    opt.step()
    return sched


def amortized_us(step, n: int) -> float:
    """Mean µs per call over n back-to-back calls."""
    t0 = time.perf_counter_ns()
    for _ in itertools.repeat(None, n):
        step()
    return (time.perf_counter_ns() - t0) / n / 1e3


def per_call_ns(step, n: int) -> list[int]:
    clock = time.perf_counter_ns
    samples = [0] * n
    for i in range(n):
        t0 = clock()
        step()
        samples[i] = clock() - t0
    return samples


def with_optimizer_us(opt, sched, n: int) -> float:
    """The real loop's shape: a (trivial) optimizer.step() then scheduler.step()."""
    t0 = time.perf_counter_ns()
    for _ in itertools.repeat(None, n):
        opt.step()
        sched.step()
    return (time.perf_counter_ns() - t0) / n / 1e3


def run_config(name: str, groups: int, tensor_lr: bool, steps: int, repeats: int, endpoint: str) -> dict:
    times = {impl: [] for impl in IMPLS}
    for rep in range(repeats):
        for impl in IMPLS if rep % 2 == 0 else IMPLS[::-1]:
            sched = make_scheduler(impl, name, make_optimizer(groups, tensor_lr), steps, endpoint)
            times[impl].append(amortized_us(sched.step, steps))
    tails = {}
    for impl in IMPLS:
        sched = make_scheduler(impl, name, make_optimizer(groups, tensor_lr), steps, endpoint)
        tails[impl] = percentiles_ns(per_call_ns(sched.step, steps))
    result = {
        "scheduler": name,
        "groups": groups,
        "lr": "tensor" if tensor_lr else "float",
        "steps": steps,
        "us_per_step": {impl: spread(times[impl]) for impl in IMPLS},
        "tail": tails,
    }
    # Ratio per repeat pair, then the median: each pair ran back to back.
    pair_ratios = [a / b for a, b in zip(times["lrbridge"], times["torch"])]
    result["ratio"] = median(times["lrbridge"]) / median(times["torch"])
    result["ratio_pairs"] = spread(pair_ratios)
    return result


def run_with_optimizer(name: str, steps: int, repeats: int, endpoint: str) -> dict:
    times = {impl: [] for impl in IMPLS}
    for rep in range(repeats):
        for impl in IMPLS if rep % 2 == 0 else IMPLS[::-1]:
            opt = make_optimizer(1, False)
            sched = make_scheduler(impl, name, opt, steps, endpoint)
            times[impl].append(with_optimizer_us(opt, sched, steps))
    return {
        "scheduler": name,
        "groups": 1,
        "lr": "float",
        "steps": steps,
        "us_per_iteration": {impl: spread(times[impl]) for impl in IMPLS},
        "ratio": median(times["lrbridge"]) / median(times["torch"]),
    }


def run(endpoint: str, steps: int, repeats: int, opt_steps: int) -> dict:
    warnings.filterwarnings("ignore", category=UserWarning)
    configs = []
    for name in STEP_SCHEDULERS:
        for tensor_lr in (False, True):
            for groups in (1, 4, 16):
                gc.collect()
                r = run_config(name, groups, tensor_lr, steps, repeats, endpoint)
                log(
                    f"  step {name:18s} {groups:2d} groups {r['lr']:6s}: lrbridge "
                    f"{r['us_per_step']['lrbridge']['median']:.3f} µs, torch {r['us_per_step']['torch']['median']:.3f} µs,"
                    f" ratio {r['ratio']:.3f}; lrbridge p99.9 {r['tail']['lrbridge']['p999_us']:.1f} µs"
                    f" max {r['tail']['lrbridge']['max_us']:.0f} µs"
                )
                configs.append(r)
    with_opt = []
    for name in STEP_SCHEDULERS:
        r = run_with_optimizer(name, opt_steps, repeats, endpoint)
        log(f"  step+optimizer {name:18s}: ratio {r['ratio']:.3f}")
        with_opt.append(r)
    return {"configs": configs, "with_optimizer_step": with_opt}


def targets(result: dict) -> list[dict]:
    out = []
    for lr, limit in (("float", 0.5), ("tensor", 1.0)):
        rows = [c for c in result["configs"] if c["lr"] == lr]
        worst = max(rows, key=lambda c: c["ratio"])
        out.append({
            "target": f"amortized step ≤ {limit}× torch ({lr} lrs, worst config)",
            "value": f"{worst['ratio']:.3f}× ({worst['scheduler']}, {worst['groups']} groups)",
            "pass": worst["ratio"] <= limit,
        })
    # p99.9: with float lrs a step is the client's own work; with tensor lrs every
    # call also pays torch's fill_ per group (torch's own p50 is ~40 µs at 16
    # groups), so there the bound is torch's p50 + 20 µs.
    def excess(c):
        bound = 20.0 if c["lr"] == "float" else c["tail"]["torch"]["p50_us"] + 20.0
        return c["tail"]["lrbridge"]["p999_us"] - bound

    worst999 = max(result["configs"], key=excess)
    out.append({
        "target": "single step() p99.9 ≤ 20 µs (float lrs; tensor lrs: ≤ torch's p50 + 20 µs), worst config",
        "value": f"{worst999['tail']['lrbridge']['p999_us']:.1f} µs ({worst999['scheduler']}, "
                 f"{worst999['groups']} groups, {worst999['lr']}; torch p50 {worst999['tail']['torch']['p50_us']:.1f})",
        "pass": excess(worst999) <= 0,
    })
    worstmax = max(result["configs"], key=lambda c: c["tail"]["lrbridge"]["max_us"])
    out.append({
        "target": "single step() max ≤ 1 ms (worst config)",
        "value": f"{worstmax['tail']['lrbridge']['max_us']:.0f} µs ({worstmax['scheduler']}, "
                 f"{worstmax['groups']} groups, {worstmax['lr']}); torch's own worst max "
                 f"{max(c['tail']['torch']['max_us'] for c in result['configs']):.0f} µs",
        "pass": worstmax["tail"]["lrbridge"]["max_us"] <= 1000.0,
    })
    return out
