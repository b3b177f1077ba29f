"""lrbridge.lr_scheduler vs torch 2.13, value for value, on the real server.

Every case builds the same optimizer twice, constructs torch's scheduler on
one and lrbridge's on the other with the same arguments, then steps both and
compares every group's lr and momentum/beta1 (1e-12 relative) after every
step, including right after construction.
"""

from __future__ import annotations

import pytest
import torch
from torch.optim import lr_scheduler as T

from lrbridge import lr_scheduler as B

from sched_helpers import PARITY, make_optimizer, mark_stepped, values

# Warnings are test_dropin's subject; here both sides emit the same ones.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Detected call of:UserWarning"),
    pytest.mark.filterwarnings("ignore:The epoch parameter:UserWarning"),
]

OPTIMIZERS = ["sgd", "adam", "sgd2"]
WORST = PARITY  # reported once per session (conftest.py)

# (name, torch kwargs, lrbridge kwargs or None when the same, steps)
CASES = [
    ("LambdaLR", {"lr_lambda": lambda e: 0.95**e}, {"lr_lambda": "0.95 ** epoch"}, 300),
    ("LambdaLR", {"lr_lambda": lambda e: 1.0 / (e // 30 + 1)}, {"lr_lambda": "1.0 / (epoch // 30 + 1)"}, 300),
    ("MultiplicativeLR", {"lr_lambda": lambda e: 0.98}, {"lr_lambda": "0.98"}, 300),
    ("StepLR", {"step_size": 7, "gamma": 0.5}, None, 300),
    ("MultiStepLR", {"milestones": [30, 80, 80, 120], "gamma": 0.5}, None, 300),
    ("ConstantLR", {"factor": 0.5, "total_iters": 40}, None, 300),
    ("LinearLR", {"start_factor": 0.25, "end_factor": 0.9, "total_iters": 100}, None, 300),
    ("ExponentialLR", {"gamma": 0.995}, None, 300),
    ("PolynomialLR", {"total_iters": 150, "power": 2.0}, None, 300),
    ("CosineAnnealingLR", {"T_max": 100, "eta_min": 0.001}, None, 500),
    ("CosineAnnealingWarmRestarts", {"T_0": 10, "T_mult": 2, "eta_min": 1e-4}, None, 400),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 20, "mode": "triangular2"}, None, 400),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 15, "step_size_down": 25, "mode": "exp_range", "gamma": 0.995}, None, 400),
    (
        "CyclicLR",
        {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 10, "scale_fn": lambda x: 1 / (2.0 ** (x - 1)), "scale_mode": "cycle"},
        {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 10, "scale_fn": "1 / (2.0 ** (x - 1))", "scale_mode": "cycle"},
        300,
    ),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 300}, None, 300),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 250, "three_phase": True, "anneal_strategy": "linear"}, None, 250),
]


def _build(module, name, optimizer, kwargs, server=None):
    extra = {} if server is None else {"server": server}
    return getattr(module, name)(optimizer, **kwargs, **extra)


def _run_twins(server, opt_kind, build, steps, between=None, lr_type=float):
    """build(module, optimizer, server) -> scheduler; between(k, t_opt, b_opt) may edit lrs."""
    t_opt, b_opt = make_optimizer(opt_kind, lr_type), make_optimizer(opt_kind, lr_type)
    t_s = build(T, t_opt, None)
    b_s = build(B, b_opt, server)
    mark_stepped(t_opt)  # after construction: the schedulers wrap optimizer.step
    mark_stepped(b_opt)
    WORST.compare(values(t_opt), values(b_opt), "after construction")
    for k in range(1, steps + 1):
        if between is not None:
            between(k, t_opt, b_opt)
        t_s.step()
        b_s.step()
        WORST.compare(values(t_opt), values(b_opt), f"step {k}")
        assert b_s.last_epoch == getattr(t_s, "last_epoch", k)  # torch's ChainedScheduler has none
    last = [float(v) for v in b_s.get_last_lr()]
    assert last == pytest.approx([float(v) for v in t_s.get_last_lr()], rel=1e-12)
    return t_s, b_s, t_opt, b_opt


@pytest.mark.parametrize("opt_kind", OPTIMIZERS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0] + "-" + "-".join(f"{k}" for k in c[1]))
def test_every_step_matches_torch(server, case, opt_kind):
    name, t_kwargs, b_kwargs, steps = case
    b_kwargs = t_kwargs if b_kwargs is None else b_kwargs

    def build(module, optimizer, srv):
        return _build(module, name, optimizer, t_kwargs if module is T else b_kwargs, srv)

    t_s, b_s, _, _ = _run_twins(server, opt_kind, build, steps)
    if name != "CosineAnnealingWarmRestarts":
        assert b_s._step_count == t_s._step_count


CHAINABLE_EDITS = [
    ("StepLR", {"step_size": 10, "gamma": 0.7}),
    ("ExponentialLR", {"gamma": 0.99}),
    ("CosineAnnealingLR", {"T_max": 60}),
    ("MultiplicativeLR", {"lr_lambda": "0.97"}),
    ("LinearLR", {"start_factor": 0.2, "total_iters": 50}),
    ("PolynomialLR", {"total_iters": 80, "power": 1.5}),
]


@pytest.mark.parametrize("case", CHAINABLE_EDITS, ids=lambda c: c[0])
def test_chainable_continues_from_a_hand_edited_lr(server, case):
    name, kwargs = case
    t_kwargs = dict(kwargs)
    if name == "MultiplicativeLR":
        t_kwargs = {"lr_lambda": lambda e: 0.97}

    def build(module, optimizer, srv):
        return _build(module, name, optimizer, t_kwargs if module is T else kwargs, srv)

    def edit(k, t_opt, b_opt):
        if k in (25, 26, 90):  # twice in a row, then once more later
            for opt in (t_opt, b_opt):
                opt.param_groups[0]["lr"] *= 0.5
                opt.param_groups[-1]["lr"] += 0.001

    _run_twins(server, "sgd2", build, 150, between=edit)


def test_sequential_lr(server):
    def build(module, optimizer, srv):
        kw = {} if srv is None else {"server": srv}
        warm = module.LinearLR(optimizer, start_factor=0.1, total_iters=10, **kw)
        cos = module.CosineAnnealingLR(optimizer, T_max=90, eta_min=1e-5, **kw)
        step = module.StepLR(optimizer, step_size=20, gamma=0.5, **kw)
        return module.SequentialLR(optimizer, [warm, cos, step], milestones=[10, 100], **kw)

    for kind in OPTIMIZERS:
        _run_twins(server, kind, build, 300)


def test_sequential_with_onecycle_and_cyclic_momentum(server):
    def build(module, optimizer, srv):
        kw = {} if srv is None else {"server": srv}
        first = module.ConstantLR(optimizer, factor=0.5, total_iters=5, **kw)
        cyc = module.CyclicLR(optimizer, base_lr=0.001, max_lr=0.01, step_size_up=7, **kw)
        return module.SequentialLR(optimizer, [first, cyc], milestones=[20], **kw)

    for kind in ("sgd", "adam"):
        _run_twins(server, kind, build, 200)


def test_chained_scheduler(server):
    def build(module, optimizer, srv):
        kw = {} if srv is None else {"server": srv}
        const = module.ConstantLR(optimizer, factor=0.5, total_iters=20, **kw)
        expo = module.ExponentialLR(optimizer, gamma=0.99, **kw)
        return module.ChainedScheduler([const, expo], **kw)

    def edit(k, t_opt, b_opt):
        if k == 60:
            for opt in (t_opt, b_opt):
                opt.param_groups[0]["lr"] = 0.05

    for kind in OPTIMIZERS:
        _run_twins(server, kind, build, 300, between=edit)


def test_tensor_lrs_are_filled_in_place(server):
    def build(module, optimizer, srv):
        return _build(module, "OneCycleLR", optimizer, {"max_lr": 0.3, "total_steps": 200}, srv)

    t_opt = make_optimizer("sgd", torch.Tensor)
    b_opt = make_optimizer("sgd", torch.Tensor)
    tensors = [g["lr"] for g in b_opt.param_groups]
    t_s, b_s = build(T, t_opt, None), build(B, b_opt, server)
    for _ in range(200):
        mark_stepped(t_opt)
        mark_stepped(b_opt)
        t_s.step()
        b_s.step()
        WORST.compare(values(t_opt), values(b_opt), "tensor lr")
    assert all(g["lr"] is t for g, t in zip(b_opt.param_groups, tensors))
    assert all(isinstance(g["momentum"], float) for g in b_opt.param_groups)
    last = b_s.get_last_lr()
    assert isinstance(last[0], torch.Tensor) and last[0] is not tensors[0]

    # A chainable schedule with tensor lrs and a hand edit (general path every step).
    def build_exp(module, optimizer, srv):
        return _build(module, "ExponentialLR", optimizer, {"gamma": 0.98}, srv)

    def edit(k, t_opt, b_opt):
        if k == 30:
            for opt in (t_opt, b_opt):
                opt.param_groups[1]["lr"].fill_(0.2)

    _, _, _, b_opt2 = _run_twins(server, "sgd2", build_exp, 100, between=edit, lr_type=torch.Tensor)
    assert all(isinstance(g["lr"], torch.Tensor) for g in b_opt2.param_groups)


def test_step_with_epoch_warm_restarts_fractional(server):
    iters = 7
    for kwargs in ({"T_0": 3, "T_mult": 2, "eta_min": 0.001}, {"T_0": 4}):
        t_opt, b_opt = make_optimizer("sgd2"), make_optimizer("sgd2")
        t_s = T.CosineAnnealingWarmRestarts(t_opt, **kwargs)
        b_s = B.CosineAnnealingWarmRestarts(b_opt, **kwargs, server=server)
        for epoch in range(20):
            for i in range(iters):
                t_s.step(epoch + i / iters)
                b_s.step(epoch + i / iters)
                WORST.compare(values(t_opt), values(b_opt), f"epoch {epoch} + {i}/{iters}")
                assert b_s.last_epoch == t_s.last_epoch
        # plain steps after epoch steps continue from the fractional position
        for k in range(30):
            t_s.step()
            b_s.step()
            WORST.compare(values(t_opt), values(b_opt), f"plain step {k} after step(epoch)")
        assert b_s._step_count == t_s._step_count == 0


@pytest.mark.parametrize("name,kwargs", [
    ("StepLR", {"step_size": 5, "gamma": 0.5}),
    ("CosineAnnealingLR", {"T_max": 40}),
    ("LinearLR", {"start_factor": 0.2, "total_iters": 30}),
    ("ExponentialLR", {"gamma": 0.97}),
])
def test_step_with_epoch_then_plain_steps(server, name, kwargs):
    t_opt, b_opt = make_optimizer("sgd"), make_optimizer("sgd")
    t_s, b_s = getattr(T, name)(t_opt, **kwargs), getattr(B, name)(b_opt, **kwargs, server=server)
    mark_stepped(t_opt)
    mark_stepped(b_opt)
    with pytest.warns(UserWarning, match="epoch parameter"):
        b_s.step(17)
    t_s.step(17)
    WORST.compare(values(t_opt), values(b_opt), "step(17)")
    for k in range(60):
        t_s.step()
        b_s.step()
        WORST.compare(values(t_opt), values(b_opt), f"plain step {k} after step(17)")


def test_onecycle_refuses_steps_past_total_steps(server):
    t_opt, b_opt = make_optimizer("adam"), make_optimizer("adam")
    t_s = T.OneCycleLR(t_opt, max_lr=0.1, total_steps=1500)
    b_s = B.OneCycleLR(b_opt, max_lr=0.1, total_steps=1500, server=server)
    for _ in range(1500):  # exactly total_steps calls are allowed; spans two windows
        t_s.step()
        b_s.step()
    WORST.compare(values(t_opt), values(b_opt), "last allowed step")
    with pytest.raises(ValueError) as t_err:
        t_s.step()
    with pytest.raises(ValueError) as b_err:
        b_s.step()
    assert str(b_err.value) == str(t_err.value) == "Tried to step 1501 times. The specified number of total steps is 1500"
    assert b_s.last_epoch == t_s.last_epoch == 1501


def _nested_onecycle(m, opt, server):
    """SequentialLR(SequentialLR(LinearLR, OneCycleLR), ExponentialLR): the inner composite's
    construction shifts its OneCycleLR by one step, so it refuses a row earlier than a naive sum."""
    kw = {} if m is T else {"server": server}
    inner = m.SequentialLR(
        opt, [m.LinearLR(opt, total_iters=3, **kw), m.OneCycleLR(opt, max_lr=0.1, total_steps=10, **kw)], [3], **kw
    )
    return m.SequentialLR(opt, [inner, m.ExponentialLR(opt, gamma=0.9, **kw)], [100], **kw)


def _chained_onecycle(m, opt, server):
    kw = {} if m is T else {"server": server}
    return m.ChainedScheduler([m.ExponentialLR(opt, gamma=0.99, **kw), m.OneCycleLR(opt, max_lr=0.1, total_steps=12, **kw)], **kw)


@pytest.mark.parametrize("build", [_nested_onecycle, _chained_onecycle])
def test_composites_refuse_where_their_onecycle_does(server, build):
    """The server's row_end for composites: the drop-in raises torch's ValueError at torch's step."""
    t_opt, b_opt = make_optimizer("sgd"), make_optimizer("sgd")
    t_s, b_s = build(T, t_opt, server), build(B, b_opt, server)
    for step in range(1, 200):
        try:
            t_s.step()
        except ValueError as t_err:
            with pytest.raises(ValueError) as b_err:
                b_s.step()
            assert str(b_err.value) == str(t_err)
            assert "Tried to step" in str(t_err) and step == b_s._opened.row_end
            return
        b_s.step()
        WORST.compare(values(t_opt), values(b_opt), f"{build.__name__} step {step}")
    pytest.fail("torch never refused a step")


METRICS = [1.0, 0.9, 0.9, 0.91, 0.95, 0.9, 0.89, 0.95, 0.96, 0.97, 0.98, 0.8, 0.81, 0.82, 0.83, 0.84] * 6


@pytest.mark.parametrize("kwargs", [
    {"patience": 2, "factor": 0.5, "cooldown": 1},
    {"mode": "max", "threshold_mode": "abs", "threshold": 0.01, "patience": 1, "min_lr": [0.02, 0.025]},
    {"patience": 0, "factor": 0.3, "eps": 1e-3, "min_lr": 1e-4},
])
def test_reduce_lr_on_plateau(server, kwargs):
    t_opt, b_opt = make_optimizer("sgd2"), make_optimizer("sgd2")
    t_s = T.ReduceLROnPlateau(t_opt, **kwargs)
    b_s = B.ReduceLROnPlateau(b_opt, **kwargs, server=server)
    for k, metric in enumerate(METRICS):
        if k == 40:  # a hand edit: torch reduces from the edited value
            for opt in (t_opt, b_opt):
                opt.param_groups[0]["lr"] = 0.07
        t_s.step(metric)
        b_s.step(torch.tensor(metric, dtype=torch.float64))
        WORST.compare(values(t_opt), values(b_opt), f"metric {k}")
        assert (b_s.best, b_s.num_bad_epochs, b_s.cooldown_counter, b_s.last_epoch) == (
            t_s.best, t_s.num_bad_epochs, t_s.cooldown_counter, t_s.last_epoch
        )
        assert b_s.get_last_lr() == t_s.get_last_lr()


def test_resumed_construction_with_last_epoch(server):
    """torch's last_epoch=K constructor quirks (chainable: continue from the current lr)."""
    for name, kwargs in [("StepLR", {"step_size": 4}), ("ExponentialLR", {"gamma": 0.9}), ("LambdaLR", None)]:
        t_opt, b_opt = make_optimizer("sgd"), make_optimizer("sgd")
        for opt in (t_opt, b_opt):
            for g in opt.param_groups:
                g["initial_lr"] = 0.2
        if name == "LambdaLR":
            t_s = T.LambdaLR(t_opt, lambda e: 0.9**e, last_epoch=7)
            b_s = B.LambdaLR(b_opt, "0.9 ** epoch", last_epoch=7, server=server)
        else:
            t_s = getattr(T, name)(t_opt, **kwargs, last_epoch=7)
            b_s = getattr(B, name)(b_opt, **kwargs, last_epoch=7, server=server)
        WORST.compare(values(t_opt), values(b_opt), f"{name} resumed construction")
        for k in range(20):
            t_s.step()
            b_s.step()
            WORST.compare(values(t_opt), values(b_opt), f"{name} step {k}")
