"""lrbridge.get_scheduler against the real transformers.get_scheduler: same
argument sets accepted, same warnings and errors for missing arguments, and
the same lrs within 1e-12 (two groups whose lrs differ from the optimizer's
default lr, which polynomial and min_lr read)."""

from __future__ import annotations

import warnings

import pytest
import torch
import transformers

import lrbridge

STEPS = 130
CASES = [
    ("linear", 10, 100, None),
    ("cosine", 10, 100, None),
    ("cosine", 0, 100, {"num_cycles": 1.5}),
    ("cosine_with_restarts", 10, 100, {"num_cycles": 3}),
    ("polynomial", 10, 100, None),
    ("polynomial", 10, 100, {"power": 2.0, "lr_end": 1e-4}),
    ("constant", None, None, None),
    ("constant", 10, 100, None),
    ("constant_with_warmup", 10, None, None),
    ("constant_with_warmup", 10, 100, None),
    ("inverse_sqrt", 10, None, None),
    ("inverse_sqrt", 10, 100, {"timescale": 50}),
    ("inverse_sqrt", 0, None, None),
    ("cosine_with_min_lr", 10, 100, {"min_lr": 1e-3}),
    ("cosine_with_min_lr", 10, 100, {"min_lr_rate": 0.1, "num_cycles": 0.7}),
    ("cosine_warmup_with_min_lr", 10, 100, {"min_lr": 1e-3}),
    ("cosine_warmup_with_min_lr", 10, 100, {"min_lr_rate": 0.1, "warmup_lr_rate": 0.05}),
    ("warmup_stable_decay", 10, 100, {"num_decay_steps": 30}),
    ("warmup_stable_decay", 10, None, {"num_decay_steps": 30, "num_stable_steps": 40}),
    ("warmup_stable_decay", 5, 100, {"num_decay_steps": 30, "warmup_type": "cosine", "decay_type": "1-sqrt", "min_lr_ratio": 0.1}),
]


def _optimizer():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    return torch.optim.AdamW([{"params": [a]}, {"params": [b], "lr": 0.03}], lr=0.05)


def _lrs(make, steps=STEPS):
    opt = _optimizer()
    sched = make(opt)
    rows = [sched.get_last_lr()]
    for _ in range(steps):
        opt.step()
        sched.step()
        rows.append(sched.get_last_lr())
    return rows


def _close(ours, theirs):
    for k, (a, b) in enumerate(zip(ours, theirs)):
        for x, y in zip(a, b):
            assert abs(x - y) <= 1e-12 * abs(y) + 1e-300, f"step {k}: {x!r} != {y!r}"


@pytest.mark.parametrize("name,w,n,kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_values_equal_transformers(name, w, n, kwargs):
    def args(opt):
        return dict(optimizer=opt, num_warmup_steps=w, num_training_steps=n, scheduler_specific_kwargs=kwargs)

    theirs = _lrs(lambda opt: transformers.get_scheduler(name, **args(opt)))
    ours = _lrs(lambda opt: lrbridge.get_scheduler(name, **args(opt)))
    _close(ours, theirs)


def test_a_scheduler_type_is_taken_as_its_name():
    kind = transformers.SchedulerType.COSINE
    theirs = _lrs(lambda opt: transformers.get_scheduler(kind, opt, 5, 50))
    ours = _lrs(lambda opt: lrbridge.get_scheduler(kind, opt, 5, 50))
    _close(ours, theirs)


def test_reduce_lr_on_plateau_takes_its_kwargs():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85]

    def run(get):
        opt = _optimizer()
        sched = get("reduce_lr_on_plateau", opt, scheduler_specific_kwargs={"patience": 1, "factor": 0.5})
        out = []
        for m in metrics:
            opt.step()
            sched.step(m)
            out.append([g["lr"] for g in opt.param_groups])
        return out

    assert run(lrbridge.get_scheduler) == run(transformers.get_scheduler)


# Improving, then flat, then noisy: increases, reductions to min_lr, a reset and smoothing all happen.
GREEDY_METRICS = [1.0 - 0.05 * k for k in range(12)] + [0.45] * 30 + [0.5 + 0.1 * ((k * 7) % 5) for k in range(30)]
GREEDY_KWARGS = [
    {"patience": 2, "factor": 0.5, "min_lr": 0.01, "max_lr": 0.2, "reset_start": 3},
    {"patience": 1, "cooldown": 2, "warmup": 1, "threshold_mode": "rel", "threshold": 0.01, "min_lr": [0.005, 0.02]},
    {"patience": 3, "smooth": True, "window_size": 4, "mode": "max", "verbose": True},
]


@pytest.mark.parametrize("kwargs", GREEDY_KWARGS)
def test_greedy_equals_transformers_greedy_lr(kwargs):
    def run(get):
        opt = _optimizer()
        sched = get("greedy", opt, scheduler_specific_kwargs=dict(kwargs))
        out = []
        for m in GREEDY_METRICS:
            opt.step()
            sched.step(m)
            out.append([g["lr"] for g in opt.param_groups])
        return out, sched

    theirs, _ = run(transformers.get_scheduler)
    ours, sched = run(lrbridge.get_scheduler)
    _close(ours, theirs)
    assert len({tuple(r) for r in theirs}) > 3  # the lrs really moved
    assert sched.get_last_lr() == ours[-1]


def test_greedy_starts_from_the_groups_current_lrs_and_resumes():
    def run(get, stop=None):
        opt = _optimizer()
        sched = get("greedy", opt, scheduler_specific_kwargs={"patience": 1, "factor": 0.5, "min_lr": 1e-4})
        out = []
        for k, m in enumerate(GREEDY_METRICS[:20]):
            if k == 5:
                opt.param_groups[0]["lr"] = 0.04  # changed by hand: the next step starts from it
            opt.step()
            sched.step(m)
            out.append([g["lr"] for g in opt.param_groups])
            if k == stop:
                return out, sched, opt
        return out, sched, opt

    theirs, _, _ = run(transformers.get_scheduler)
    ours, _, _ = run(lrbridge.get_scheduler)
    _close(ours, theirs)
    head, saved, opt = run(lrbridge.get_scheduler, stop=9)
    state = saved.state_dict()
    fresh_opt = _optimizer()
    fresh_opt.load_state_dict(opt.state_dict())
    resumed = lrbridge.get_scheduler("greedy", fresh_opt, scheduler_specific_kwargs={"patience": 1, "factor": 0.5, "min_lr": 1e-4})
    resumed.load_state_dict(state)
    tail = []
    for m in GREEDY_METRICS[10:20]:
        fresh_opt.step()
        resumed.step(m)
        tail.append([g["lr"] for g in fresh_opt.param_groups])
    _close(head + tail, theirs)


def test_both_wsd_step_counts_warn_as_transformers_does():
    kwargs = {"num_decay_steps": 30, "num_stable_steps": 40}
    caught = {}
    for label, get in (("theirs", transformers.get_scheduler), ("ours", lrbridge.get_scheduler)):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            get("warmup_stable_decay", _optimizer(), 10, 100, kwargs)
        caught[label] = [str(w.message) for w in seen if issubclass(w.category, UserWarning)]
    assert caught["ours"] == caught["theirs"] and caught["ours"]
    theirs = _lrs(lambda opt: transformers.get_scheduler("warmup_stable_decay", opt, 10, 100, kwargs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = _lrs(lambda opt: lrbridge.get_scheduler("warmup_stable_decay", opt, 10, 100, kwargs))
    _close(ours, theirs)


@pytest.mark.parametrize(
    "name,w,n,kwargs",
    [("linear", None, 100, None), ("cosine", 10, None, None), ("warmup_stable_decay", 10, None, {"num_decay_steps": 3})],
)
def test_missing_arguments_raise_what_transformers_raises(name, w, n, kwargs):
    with pytest.raises(ValueError) as theirs:
        transformers.get_scheduler(name, _optimizer(), w, n, kwargs)
    with pytest.raises(ValueError) as ours:
        lrbridge.get_scheduler(name, _optimizer(), w, n, kwargs)
    assert str(ours.value) == str(theirs.value)


def test_schedule_with_an_hf_spec_reads_lr_init_from_the_optimizer():
    theirs = _lrs(lambda opt: transformers.get_scheduler("polynomial", opt, 10, 100, {"power": 3.0}))
    ours = _lrs(lambda opt: lrbridge.Schedule(opt, lrbridge.spec.hf("polynomial", 10, 100, power=3.0)))
    _close(ours, theirs)


def test_a_resumed_get_scheduler_continues_exactly():
    opt = _optimizer()
    sched = lrbridge.get_scheduler("cosine", opt, 10, 100)
    for _ in range(37):
        opt.step()
        sched.step()
    saved = sched.state_dict()
    opt2 = _optimizer()
    resumed = lrbridge.get_scheduler("cosine", opt2, 10, 100)
    resumed.load_state_dict(saved)
    ref_opt = _optimizer()
    ref = transformers.get_scheduler("cosine", ref_opt, 10, 100)
    for _ in range(37):
        ref_opt.step()
        ref.step()
    for _ in range(20):
        opt2.step()
        resumed.step()
        ref_opt.step()
        ref.step()
        _close([resumed.get_last_lr()], [ref.get_last_lr()])
