"""Golden vectors for lrbridge's generic schedule recipes (ts/src/schedules).

Writes proto/vectors/recipes/*.json; each file holds cases
`{name, spec, groups, steps, lr: [[per group] per row], momentum?, source}`
that the TS tests (ts/test/recipes.test.ts) replay through `bindGeneric`.

Sources:
- hf.json: the real transformers library (`get_scheduler` on a torch SGD,
  row 0 after construction, then one `step()` per row). transformers is a
  dev-only tool here: `pip install transformers --no-deps tokenizers
  huggingface-hub safetensors regex pyyaml`. Without it hf.json is kept.
- fastai.json: fastai's `combine_scheds`/`combined_cos`/`sched_cos`
  transcribed line by line, with the same float32 torch tensors fastai uses
  for the phase boundaries (fastai itself needs torchvision).
- timm.json: timm `CosineLRScheduler._get_lr` transcribed (timm needs
  torchvision); noise-free (our noise generator is not torch's).
- misc.json: Keras CosineDecayRestarts (SGDR, float64), snapshot ensembles,
  fractal Chebyshev schedule (numpy, as in the paper's construction), and
  fastai's lr_find suggestion functions on a fixed loss curve.

Run: .venv/bin/python proto/vectors/generate_recipes.py [--check]
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parent / "recipes"


def dump(name: str, payload: dict) -> str:
    return json.dumps(payload, indent=1, sort_keys=True) + "\n"


# ---------------------------------------------------------------- HF transformers

HF_CASES = [
    ("linear", dict(num_warmup_steps=10, num_training_steps=100), {}),
    ("linear_nowarmup", dict(num_warmup_steps=0, num_training_steps=50), {}),
    ("cosine", dict(num_warmup_steps=10, num_training_steps=100), {}),
    ("cosine_1.5", dict(num_warmup_steps=5, num_training_steps=60), {"num_cycles": 1.5}),
    ("cosine_with_restarts", dict(num_warmup_steps=10, num_training_steps=100), {"num_cycles": 3}),
    ("polynomial", dict(num_warmup_steps=10, num_training_steps=100), {"power": 2.0, "lr_end": 1e-4}),
    ("constant", dict(), {}),
    ("constant_with_warmup", dict(num_warmup_steps=7), {}),
    ("inverse_sqrt", dict(num_warmup_steps=10), {}),
    ("inverse_sqrt_timescale", dict(num_warmup_steps=10), {"timescale": 25}),
    ("cosine_with_min_lr", dict(num_warmup_steps=10, num_training_steps=100), {"min_lr_rate": 0.1}),
    ("cosine_with_min_lr_abs", dict(num_warmup_steps=10, num_training_steps=100), {"min_lr": 0.01}),
    ("cosine_warmup_with_min_lr", dict(num_warmup_steps=10, num_training_steps=100), {"min_lr_rate": 0.05}),
    ("cosine_warmup_with_min_lr_rate", dict(num_warmup_steps=10, num_training_steps=100), {"min_lr_rate": 0.05, "warmup_lr_rate": 0.1}),
    ("warmup_stable_decay", dict(num_warmup_steps=10, num_training_steps=100), {"num_decay_steps": 30}),
    ("wsd_cosine_1sqrt", dict(num_warmup_steps=10, num_training_steps=100), {"num_decay_steps": 40, "warmup_type": "cosine", "decay_type": "1-sqrt", "min_lr_ratio": 0.1}),
    ("wsd_1sqrt_linear", dict(num_warmup_steps=8), {"num_stable_steps": 30, "num_decay_steps": 20, "warmup_type": "1-sqrt", "decay_type": "linear", "min_lr_ratio": 0.05}),
]
HF_GROUPS = [0.1, 0.03]
HF_STEPS = 120


def hf_name(case: str) -> str:
    for n in ["cosine_warmup_with_min_lr", "cosine_with_min_lr", "cosine_with_restarts", "constant_with_warmup", "inverse_sqrt", "polynomial", "cosine", "linear", "constant"]:
        if case.startswith(n):
            return n
    return "warmup_stable_decay"


def hf_vectors() -> dict | None:
    try:
        from transformers import get_scheduler
    except Exception:  # transformers absent: keep the committed file
        return None
    cases = []
    for case, args, kwargs in HF_CASES:
        name = hf_name(case)
        params = [torch.nn.Parameter(torch.zeros(1)) for _ in HF_GROUPS]
        opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, HF_GROUPS)], lr=HF_GROUPS[0])
        sched = get_scheduler(name, opt, scheduler_specific_kwargs=dict(kwargs), **args)
        rows = [list(sched.get_last_lr())]
        for _ in range(HF_STEPS - 1):
            opt.step()
            sched.step()
            rows.append(list(sched.get_last_lr()))
        spec = {"type": "hf", "name": name, **args, **kwargs}
        if name == "polynomial" or "min_lr" in kwargs:
            spec["lr_init"] = opt.defaults["lr"]  # optimizer.defaults["lr"]
        cases.append({"name": case, "spec": spec, "groups": HF_GROUPS, "steps": HF_STEPS, "lr": rows,
                      "source": "transformers.get_scheduler"})
    import transformers
    return {"library": f"transformers {transformers.__version__}", "cases": cases}


# ---------------------------------------------------------------- fastai (transcribed)

def sched_cos(start, end, pos):
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def combine_scheds(pcts, scheds):
    """fastai.callback.schedule.combine_scheds, verbatim logic (float32 tensors)."""
    assert sum(pcts) == 1.0
    pcts = torch.tensor([0] + list(pcts))
    assert torch.all(pcts >= 0)
    pcts = torch.cumsum(pcts, 0)
    pct_lim = len(pcts) - 2

    def _inner(pos):
        idx = min((pos >= pcts).nonzero().max(), pct_lim)
        actual_pos = (pos - pcts[idx]) / (pcts[idx + 1] - pcts[idx])
        return scheds[idx](actual_pos.item())

    return _inner


def combined_cos(pct, start, middle, end):
    return combine_scheds([pct, 1 - pct], [lambda p: sched_cos(start, middle, p), lambda p: sched_cos(middle, end, p)])


def fastai_vectors() -> dict:
    cases = []
    groups = [0.01, 0.002]
    for total, pct, div, div_final, moms in [(100, 0.25, 25.0, 1e5, (0.95, 0.85, 0.95)), (77, 0.3, 10.0, 1e4, (0.9, 0.8, 0.9))]:
        lr_max = np.array(groups)
        f_lr = combined_cos(pct, lr_max / div, lr_max, lr_max / div_final)
        f_mom = combined_cos(pct, *moms)
        lr = [[float(v) for v in f_lr(k / total)] for k in range(total)]
        mom = [[float(f_mom(k / total))] * len(groups) for k in range(total)]
        spec = {"type": "one_cycle", "total_steps": total, "pct_start": pct, "div": div, "div_final": div_final, "moms": list(moms)}
        cases.append({"name": f"one_cycle_{total}", "spec": spec, "groups": groups, "momentum_groups": True,
                      "steps": total, "lr": lr, "momentum": mom, "source": "fastai fit_one_cycle (transcribed)"})
    for total, pct, div_final in [(100, 0.75, 1e5), (64, 0.5, 100.0)]:
        lr0 = np.array(groups)
        f_lr = combined_cos(pct, lr0, lr0, lr0 / div_final)
        lr = [[float(v) for v in f_lr(k / total)] for k in range(total)]
        spec = {"type": "flat_cos", "total_steps": total, "pct_start": pct, "div_final": div_final}
        cases.append({"name": f"flat_cos_{total}", "spec": spec, "groups": groups, "steps": total, "lr": lr,
                      "source": "fastai fit_flat_cos (transcribed)"})
    return {"library": "fastai 2.x callback/schedule.py (transcribed)", "cases": cases}


# ---------------------------------------------------------------- timm (transcribed)

def timm_cosine_get_lr(t, base_values, t_initial, lr_min=0.0, cycle_mul=1.0, cycle_decay=1.0, cycle_limit=1,
                       warmup_t=0, warmup_lr_init=0.0, warmup_prefix=False, k_decay=1.0):
    """timm/scheduler/cosine_lr.py CosineLRScheduler._get_lr, verbatim logic."""
    warmup_steps = [(v - warmup_lr_init) / warmup_t for v in base_values] if warmup_t else [1 for _ in base_values]
    if t < warmup_t:
        return [warmup_lr_init + t * s for s in warmup_steps]
    if warmup_prefix:
        t = t - warmup_t
    if cycle_mul != 1:
        i = math.floor(math.log(1 - t / t_initial * (1 - cycle_mul), cycle_mul))
        t_i = cycle_mul ** i * t_initial
        t_curr = t - (1 - cycle_mul ** i) / (1 - cycle_mul) * t_initial
    else:
        i = t // t_initial
        t_i = t_initial
        t_curr = t - (t_initial * i)
    gamma = cycle_decay ** i
    lr_max_values = [v * gamma for v in base_values]
    k = k_decay
    if i < cycle_limit:
        return [lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * t_curr ** k / t_i ** k)) for lr_max in lr_max_values]
    return [lr_min for _ in base_values]


TIMM_CASES = [
    ("plain", dict(t_initial=50)),
    ("warmup_lr_min", dict(t_initial=60, lr_min=1e-5, warmup_t=5, warmup_lr_init=1e-6)),
    ("warmup_prefix_cycles", dict(t_initial=20, lr_min=1e-4, warmup_t=4, warmup_lr_init=1e-5, warmup_prefix=True, cycle_limit=3, cycle_decay=0.5)),
    ("cycle_mul_2", dict(t_initial=10, cycle_mul=2.0, cycle_limit=4, cycle_decay=0.8, lr_min=1e-6)),
    ("cycle_mul_1.5", dict(t_initial=8, cycle_mul=1.5, cycle_limit=5)),
    ("k_decay_2", dict(t_initial=40, k_decay=2.0, lr_min=1e-5)),
    ("k_decay_0.5", dict(t_initial=40, k_decay=0.5)),
]


def timm_vectors() -> dict:
    groups = [0.1, 0.05]
    steps = 90
    cases = []
    for name, kw in TIMM_CASES:
        lr = [timm_cosine_get_lr(t, groups, **kw) for t in range(steps)]
        cases.append({"name": name, "spec": {"type": "timm_cosine", **kw}, "groups": groups, "steps": steps, "lr": lr,
                      "source": "timm CosineLRScheduler._get_lr (transcribed)"})
    return {"library": "timm scheduler/cosine_lr.py (transcribed)", "cases": cases}


# ---------------------------------------------------------------- misc

def keras_sgdr(step, initial, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0):
    """keras.optimizers.schedules.CosineDecayRestarts.__call__ in float64."""
    completed_fraction = step / first_decay_steps
    if t_mul == 1.0:
        i_restart = math.floor(completed_fraction)
        completed_fraction -= i_restart
    else:
        i_restart = math.floor(math.log(1.0 - completed_fraction * (1.0 - t_mul)) / math.log(t_mul))
        sum_r = (1.0 - t_mul ** i_restart) / (1.0 - t_mul)
        completed_fraction = (completed_fraction - sum_r) / t_mul ** i_restart
    m_fac = m_mul ** i_restart
    cosine_decayed = 0.5 * m_fac * (1.0 + math.cos(math.pi * completed_fraction))
    decayed = (1 - alpha) * cosine_decayed + alpha
    return initial * decayed


def snapshot_alpha(t, a0, T, M):
    """Huang et al. 2017 eq. (2), t = 1..T."""
    L = math.ceil(T / M)
    return a0 / 2 * (math.cos(math.pi * ((t - 1) % L) / L) + 1)


def fractal_schedule(m, M, T):
    c, r = (M + m) / 2.0, (M - m) / 2.0
    thetas = (np.arange(T) + 0.5) / T * np.pi
    steps = 1.0 / (c - r * np.cos(thetas))
    perm = np.array([0])
    while len(perm) < T:
        perm = np.vstack([perm, 2 * len(perm) - 1 - perm]).T.flatten()
    return steps[perm]


def fa_valley(lrs, losses):
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if (losses[i] < losses[j]) and (lds[i] < lds[j] + 1):
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx])


def fa_slide(lrs, losses, lr_diff=15, thresh=.005, adjust_value=1.):
    loss_grad = np.gradient(np.array(losses))
    r_idx = -1
    l_idx = r_idx - lr_diff
    local_min_lr = lrs[l_idx]
    while (l_idx >= -len(losses)) and (abs(loss_grad[r_idx] - loss_grad[l_idx]) > thresh):
        local_min_lr = lrs[l_idx]
        r_idx -= 1
        l_idx -= 1
    return float(local_min_lr) * adjust_value


def fa_minimum(lrs, losses):
    return float(lrs[int(np.argmin(losses))]) / 10


def fa_steep(lrs, losses):
    lrs, losses = np.array(lrs), np.array(losses)
    grads = (losses[1:] - losses[:-1]) / (np.log(lrs[1:]) - np.log(lrs[:-1]))
    return float(lrs[int(np.argmin(grads))])


def range_test_case():
    """A synthetic loss curve: falls, flattens, then blows up (no randomness)."""
    start, end, num, beta = 1e-7, 10.0, 100, 0.98
    lrs_all = [start * (end / start) ** (i / num) for i in range(num)]
    raw = [2.5 - 1.5 / (1 + math.exp(-(math.log10(lr) + 3.5) * 2.2)) + 40 * max(0.0, lr - 0.3) ** 2 + 0.05 * math.sin(7 * i)
           for i, lr in enumerate(lrs_all)]
    avg, best, smoothed, stop = 0.0, None, [], None
    for i, loss in enumerate(raw):
        avg = beta * avg + (1 - beta) * loss
        s = avg / (1 - beta ** (i + 1))
        smoothed.append(s)
        if best is None or s < best:
            best = s
        if s > 4 * best:
            stop = i
            break
    lrs = lrs_all[: len(smoothed)][num // 10: len(smoothed) - 5]
    losses = smoothed[num // 10: len(smoothed) - 5]
    return {
        "spec": {"type": "range_test", "start_lr": start, "end_lr": end, "num_steps": num, "beta": beta},
        "losses": raw, "smoothed": smoothed, "stopped_at": stop,
        "suggestions": {"valley": fa_valley(lrs, losses), "slide": fa_slide(lrs, losses),
                        "minimum": fa_minimum(lrs, losses), "steep": fa_steep(lrs, losses)},
        "source": "fastai LRFinder / AvgSmoothLoss / valley, slide, minimum, steep (transcribed, float64)",
    }


def misc_vectors() -> dict:
    cases = []
    groups = [0.1, 0.02]
    for name, kw in [("sgdr_tmul2", dict(first_decay_steps=10, t_mul=2.0, m_mul=0.5, alpha=0.01)),
                     ("sgdr_tmul1", dict(first_decay_steps=15, t_mul=1.0, m_mul=0.9)),
                     ("sgdr_tmul3", dict(first_decay_steps=4, t_mul=3.0))]:
        lr = [[keras_sgdr(t, g, **kw) for g in groups] for t in range(100)]
        spec = {"type": "sgdr", "t_0": kw["first_decay_steps"], "t_mult": kw["t_mul"], "m_mul": kw.get("m_mul", 1.0), "alpha": kw.get("alpha", 0.0)}
        cases.append({"name": name, "spec": spec, "groups": groups, "steps": 100, "lr": lr, "source": "Keras CosineDecayRestarts (transcribed, float64)"})
    lr = [[snapshot_alpha(k + 1, g, 100, 6) for g in groups] for k in range(100)]
    cases.append({"name": "snapshot_T100_M6", "spec": {"type": "snapshot", "total_steps": 100, "snapshots": 6}, "groups": groups,
                  "steps": 100, "lr": lr, "source": "Huang et al. 2017 eq. 2"})
    sched = fractal_schedule(0.05, 1.0, 16)
    lr = [[float(sched[k % 16]) * g for g in [1.0]] for k in range(40)]
    cases.append({"name": "fractal_T16", "spec": {"type": "fractal", "horizon": 16, "lambda_min": 0.05, "lambda_max": 1.0},
                  "groups": [1.0], "steps": 40, "lr": lr, "source": "Agarwal, Goel, Zhang 2021 (numpy construction)"})
    return {"library": "transcriptions", "cases": cases, "range_test": range_test_case()}


def build() -> dict[str, str]:
    files = {"fastai.json": dump("fastai", fastai_vectors()), "timm.json": dump("timm", timm_vectors()),
             "misc.json": dump("misc", misc_vectors())}
    hf = hf_vectors()
    if hf is not None:
        files["hf.json"] = dump("hf", hf)
    return files


def main(argv: list[str]) -> int:
    files = build()
    if "--check" in argv:
        bad = [n for n, text in files.items() if (OUT / n).read_text() != text]
        print("stale:", bad) if bad else print("up to date:", sorted(files))
        return 1 if bad else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for n, text in files.items():
        (OUT / n).write_text(text)
    print("wrote", sorted(files))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
