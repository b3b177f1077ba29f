"""The schedules the benchmarks run, as lrbridge specs (`{"type": <torch class>, ...kwargs}`).

One place for them, so the Python sections and the TS compute benchmark agree.
"""

from __future__ import annotations

# Per-step overhead: torch constructor kwargs, the same for both implementations.
# Sized so 100k steps stay inside each schedule's valid range (OneCycleLR raises past total_steps).
def step_kwargs(name: str, steps: int) -> dict:
    return {
        "OneCycleLR": dict(max_lr=0.1, total_steps=steps + 1),
        "CosineAnnealingLR": dict(T_max=10_000, eta_min=1e-4),
        "StepLR": dict(step_size=1000, gamma=0.9),
        "CyclicLR": dict(base_lr=0.01, max_lr=0.1, step_size_up=2000),
    }[name]


STEP_SCHEDULERS = ["OneCycleLR", "CosineAnnealingLR", "StepLR", "CyclicLR"]

# Closed-form families for the server compute benchmark.
_TOTAL = 1_000_000
CLOSED_FORM = {
    "StepLR": {"type": "StepLR", "step_size": 1000, "gamma": 0.9},
    "CosineAnnealingLR": {"type": "CosineAnnealingLR", "T_max": 10_000, "eta_min": 1e-4},
    "OneCycleLR": {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": _TOTAL},
    "CyclicLR": {"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2000},
    "LambdaLR": {"type": "LambdaLR", "lr_lambda": "0.9999 ** epoch"},
}

# Children a composite cycles through (all closed form on their own).
_CHILDREN = [
    {"type": "LinearLR", "start_factor": 0.1, "total_iters": 500},
    {"type": "CosineAnnealingLR", "T_max": 5000, "eta_min": 1e-4},
    {"type": "StepLR", "step_size": 700, "gamma": 0.8},
    {"type": "ExponentialLR", "gamma": 0.9999},
]


def sequential(depth: int, every: int = 1000) -> dict:
    """SequentialLR over `depth` children, a milestone every `every` steps."""
    children = [dict(_CHILDREN[i % len(_CHILDREN)]) for i in range(depth)]
    return {"type": "SequentialLR", "schedulers": children, "milestones": [every * (i + 1) for i in range(depth - 1)]}


def chained(depth: int) -> dict:
    """ChainedScheduler over `depth` children: their effects multiply every step."""
    return {"type": "ChainedScheduler", "schedulers": [dict(_CHILDREN[i % len(_CHILDREN)]) for i in range(depth)]}


def compute_cases() -> list[dict]:
    """(name, spec, groups, closed_form) for bench/server_compute.ts."""
    one = [{"lr": 0.1, "momentum": 0.9}]
    cases = [{"name": n, "spec": s, "groups": one, "closed_form": True} for n, s in CLOSED_FORM.items()]
    cases.append(
        {"name": "OneCycleLR x4 groups", "spec": CLOSED_FORM["OneCycleLR"],
         "groups": [{"lr": 0.1 / (g + 1), "momentum": 0.9} for g in range(4)], "closed_form": True}
    )
    cases.append(
        {"name": "OneCycleLR random starts", "spec": CLOSED_FORM["OneCycleLR"], "groups": one,
         "closed_form": False, "access": "random", "sizes": [1024, 65536]}
    )
    for depth in (1, 2, 4):
        cases.append({"name": f"SequentialLR depth {depth}", "spec": sequential(depth), "groups": one,
                      "closed_form": False})
        cases.append({"name": f"ChainedScheduler depth {depth}", "spec": chained(depth), "groups": one,
                      "closed_form": False})
    return cases


def load_spec(total_steps: int) -> dict:
    """What the load test serves: OneCycleLR, lr and momentum, checked against torch."""
    return {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": total_steps}


def cache_spec(i: int) -> dict:
    """The i-th of many distinct specs for the cache-scale test."""
    return {"type": "CosineAnnealingLR", "T_max": 1000 + i, "eta_min": 0.0}
