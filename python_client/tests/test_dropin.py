"""lrbridge.lr_scheduler as a drop-in: types, errors, warnings and group keys like torch 2.13."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch
from torch.optim import lr_scheduler as T

from lrbridge import SpecError
from lrbridge import lr_scheduler as B

from sched_helpers import make_optimizer, mark_stepped

ALL = [
    ("LambdaLR", {"lr_lambda": "0.9 ** epoch"}),
    ("MultiplicativeLR", {"lr_lambda": "0.9"}),
    ("StepLR", {"step_size": 3}),
    ("MultiStepLR", {"milestones": [2, 5]}),
    ("ConstantLR", {}),
    ("LinearLR", {}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("PolynomialLR", {}),
    ("CosineAnnealingLR", {"T_max": 10}),
    ("CosineAnnealingWarmRestarts", {"T_0": 5}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1}),
    ("OneCycleLR", {"max_lr": 0.1, "total_steps": 100}),
]


@pytest.mark.parametrize("name,kwargs", ALL, ids=[n for n, _ in ALL])
def test_is_an_instance_of_torchs_classes(server, name, kwargs):
    s = getattr(B, name)(make_optimizer("sgd"), **kwargs, server=server)
    assert isinstance(s, T.LRScheduler)
    assert isinstance(s, getattr(T, name))
    assert not isinstance(s, T.ReduceLROnPlateau)
    state = s.state_dict()
    pickle.dumps(state)  # no client, stream or optimizer inside
    assert state["_spec"]["type"] == name and len(state["_spec_hash"]) == 64
    assert state["last_epoch"] == 0 and state["base_lrs"]


def test_plateau_and_composites_are_torch_types(server):
    opt = make_optimizer("sgd")
    plateau = B.ReduceLROnPlateau(opt, server=server)
    assert isinstance(plateau, T.ReduceLROnPlateau) and isinstance(plateau, T.LRScheduler)
    a = B.ConstantLR(opt, server=server)
    b = B.ExponentialLR(opt, gamma=0.9, server=server)
    chained = B.ChainedScheduler([a, b])
    assert isinstance(chained, T.ChainedScheduler) and isinstance(chained, T.LRScheduler)
    with pytest.raises(RuntimeError, match="composite"):
        a.step()  # children are driven by the composite
    seq = B.SequentialLR(opt, [B.ConstantLR(opt, server=server), B.StepLR(opt, 2, server=server)], milestones=[3])
    assert isinstance(seq, T.SequentialLR)
    pickle.dumps(seq.state_dict())


def test_signatures_match_torch():
    import inspect

    for name in B.__all__:
        if name == "LRScheduler":
            assert B.LRScheduler is T.LRScheduler
            continue
        ours = inspect.signature(getattr(B, name).__init__).parameters
        theirs = inspect.signature(getattr(T, name).__init__).parameters
        assert list(ours)[: len(theirs)] == list(theirs), name
        for p in theirs:
            assert ours[p].default == theirs[p].default, (name, p)
        assert ours["server"].kind is inspect.Parameter.KEYWORD_ONLY and ours["server"].default is None


def test_python_callables_are_refused_with_a_hint(server):
    opt = make_optimizer("sgd")
    for cls in (B.LambdaLR, B.MultiplicativeLR):
        with pytest.raises(TypeError, match=r'expression string over `epoch` such as .0\.95 \*\* epoch'):
            cls(opt, lambda epoch: 0.95**epoch, server=server)
        with pytest.raises(TypeError):
            cls(opt, [lambda epoch: 1.0], server=server)
    with pytest.raises(TypeError, match="scale_fn must be an expression string over `x`"):
        B.CyclicLR(opt, 0.01, 0.1, scale_fn=lambda x: 1.0, server=server)


@pytest.mark.parametrize(
    "build,error",
    [
        (lambda m, o, kw: m.StepLR("not an optimizer", 3, **kw), TypeError),
        (lambda m, o, kw: m.ConstantLR(o, factor=2.0, **kw), ValueError),
        (lambda m, o, kw: m.ConstantLR(o, factor="0.5", **kw), TypeError),
        (lambda m, o, kw: m.LinearLR(o, start_factor=0.0, **kw), ValueError),
        (lambda m, o, kw: m.MultiStepLR(o, milestones=5, **kw), TypeError),
        (lambda m, o, kw: m.CosineAnnealingWarmRestarts(o, T_0=0, **kw), ValueError),
        (lambda m, o, kw: m.CosineAnnealingWarmRestarts(o, T_0=5.0, **kw), ValueError),
        (lambda m, o, kw: m.CosineAnnealingWarmRestarts(o, T_0="5", **kw), TypeError),
        (lambda m, o, kw: m.OneCycleLR(o, max_lr=0.1, **kw), ValueError),
        (lambda m, o, kw: m.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=1, **kw), ValueError),
        (lambda m, o, kw: m.OneCycleLR(o, max_lr=0.1, total_steps=10, anneal_strategy="tan", **kw), ValueError),
        (lambda m, o, kw: m.CyclicLR(o, [0.01, 0.02], 0.2, **kw), ValueError),
        (lambda m, o, kw: m.CyclicLR(o, 0.01, 0.1, mode="zigzag", **kw), ValueError),
        (lambda m, o, kw: m.ReduceLROnPlateau(o, factor=1.0, **kw), ValueError),
        (lambda m, o, kw: m.ReduceLROnPlateau(o, mode="up", **kw), ValueError),
        (lambda m, o, kw: m.LambdaLR(o, ["1.0"] * 3, **kw), ValueError),
    ],
)
def test_constructor_errors_have_torchs_types(server, build, error):
    with pytest.raises(error):
        build(T, make_optimizer("sgd"), {})
    with pytest.raises(error):
        build(B, make_optimizer("sgd"), {"server": server})


def test_a_bad_spec_is_a_spec_error_naming_the_field(server):
    with pytest.raises(SpecError) as err:
        B.LinearLR(make_optimizer("sgd"), start_factor=1.5, server=server)
    assert isinstance(err.value, ValueError)
    assert err.value.path == "start_factor"
    with pytest.raises(SpecError) as err:
        B.CyclicLR(make_optimizer("sgd"), 0.01, 0.1, mode="zigzag", server=server)
    assert "mode" in err.value.path


def test_cycle_momentum_needs_momentum_like_torch(server):
    opt = torch.optim.Adagrad([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    for m, kw in ((T, {}), (B, {"server": server})):
        with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
            m.OneCycleLR(opt, max_lr=0.1, total_steps=10, **kw)


def test_composites_refuse_torch_schedulers(server):
    opt = make_optimizer("sgd")
    torch_child = T.StepLR(opt, 2)
    with pytest.raises(TypeError, match="lrbridge.lr_scheduler.StepLR"):
        B.SequentialLR(opt, [B.ConstantLR(opt, server=server), torch_child], milestones=[2])
    with pytest.raises(TypeError, match="lrbridge.lr_scheduler.StepLR"):
        B.ChainedScheduler([torch_child])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        B.ChainedScheduler([B.ReduceLROnPlateau(opt, server=server)])


def test_order_warning_like_torch(server):
    for m, kw in ((T, {}), (B, {"server": server})):
        opt = make_optimizer("sgd")
        s = m.ExponentialLR(opt, gamma=0.9, **kw)
        with pytest.warns(UserWarning, match=r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`"):
            s.step()
        opt2 = make_optimizer("sgd")
        s2 = m.ExponentialLR(opt2, gamma=0.9, **kw)
        mark_stepped(opt2)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            s2.step()
            s2.step()
        assert opt2.step is not None and hasattr(opt2.step, "_wrapped_by_lr_sched")


def test_initial_lr_rules_like_torch(server):
    for m, kw in ((T, {}), (B, {"server": server})):
        opt = make_optimizer("sgd")
        with pytest.raises(KeyError, match="initial_lr"):
            m.StepLR(opt, 3, last_epoch=4, **kw)
        opt.param_groups[0]["initial_lr"] = 0.5  # setdefault keeps an existing one
        s = m.StepLR(opt, 3, **kw)
        assert s.base_lrs == [0.5]


def _group_dicts(opt):
    return [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]


@pytest.mark.filterwarnings("ignore:Detected call of:UserWarning")
@pytest.mark.parametrize("kind", ["sgd", "adam", "sgd2"])
@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.2, "step_size_up": 4}),
        ("OneCycleLR", {"max_lr": 0.3, "total_steps": 50, "base_momentum": 0.8}),
        ("OneCycleLR", {"max_lr": 0.3, "total_steps": 50, "cycle_momentum": False}),
        ("StepLR", {"step_size": 2}),
    ],
)
def test_group_keys_equal_torchs(server, kind, name, kwargs):
    if kind == "sgd2" and name != "StepLR":
        kwargs = {**kwargs, "max_lr": [0.3, 0.2]}  # one value per group
    t_opt, b_opt = make_optimizer(kind), make_optimizer(kind)
    t_s = getattr(T, name)(t_opt, **kwargs)
    b_s = getattr(B, name)(b_opt, **kwargs, server=server)
    assert _group_dicts(b_opt) == _group_dicts(t_opt)
    for _ in range(7):
        t_s.step()
        b_s.step()
    assert _group_dicts(b_opt) == _group_dicts(t_opt)
    for g in b_opt.param_groups:
        if "betas" in g:
            assert isinstance(g["betas"], tuple) and all(type(b) is float for b in g["betas"])
        assert type(g["lr"]) is float and type(g.get("momentum", 0.0)) is float
    assert b_s.base_lrs == t_s.base_lrs
    assert b_s._last_lr == t_s._last_lr


def test_step_epoch_warns_like_torch(server):
    opt = make_optimizer("sgd")
    s = B.StepLR(opt, 2, server=server)
    mark_stepped(opt)
    with pytest.warns(UserWarning, match="The epoch parameter in `scheduler.step\\(\\)` was not necessary"):
        s.step(4)
    assert s.last_epoch == 4
    # CosineAnnealingWarmRestarts overrides step() in torch and never warns.
    w = B.CosineAnnealingWarmRestarts(make_optimizer("sgd"), T_0=3, server=server)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w.step(1.5)
        w.step()


def test_composite_children_follow_torch_across_windows_on_the_fast_path():
    """Children's last_epoch and get_last_lr() are read from the composite's row when
    looked at, so the composite's step() never leaves the fast path for them."""
    import warnings

    def build(mod):
        p = torch.nn.Parameter(torch.zeros(2))
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
        a = mod.LinearLR(opt, start_factor=0.5, total_iters=100)
        b = mod.ExponentialLR(opt, gamma=0.9999)
        return opt, a, b, mod.SequentialLR(opt, [a, b], milestones=[100])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = build(B), build(T)
        for step in range(1, 20_001):
            for opt, *_, s in (ours, theirs):
                opt.step()
                s.step()
            if step in (1, 99, 100, 101, 8191, 8192, 8193, 16_500, 20_000):
                for mine, torchs in zip(ours[1:3], theirs[1:3]):
                    assert mine.last_epoch == torchs.last_epoch, step
                    assert mine.get_last_lr() == pytest.approx(torchs.get_last_lr(), rel=1e-12, abs=0), step
    assert ours[3]._hi > 0  # the composite itself is on the fast path


def test_warm_restarts_t_cur_set_by_hand_restarts_as_in_torch(server, tmp_path):
    """A manual restart (``T_cur = 0``) or a new period (``T_i``) carries into later steps, and through a checkpoint."""

    def run(module, **kw):
        opt = make_optimizer("sgd2")
        sched = module.CosineAnnealingWarmRestarts(opt, T_0=6, T_mult=2, **kw)
        lrs = []
        for step in range(40):
            opt.step()
            sched.step()
            if step == 8:
                sched.T_cur = 0
            if step == 20:
                sched.T_cur, sched.T_i = 1, 5
            lrs.append([g["lr"] for g in opt.param_groups] + [sched.T_cur, sched.T_i])
            if step == 25 and module is B:
                # A fresh scheduler resumed from a checkpoint continues the same way.
                torch.save(sched.state_dict(), tmp_path / "sgdr.pt")
                opt2 = make_optimizer("sgd2")
                opt2.load_state_dict(opt.state_dict())
                sched = module.CosineAnnealingWarmRestarts(opt2, T_0=6, T_mult=2, **kw)
                sched.load_state_dict(torch.load(tmp_path / "sgdr.pt"))
                opt = opt2
        return lrs

    ours, theirs = run(B, server=server), run(T)
    assert len(ours) == len(theirs) == 40
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert a == pytest.approx(b, rel=1e-12, abs=0), k


def _plateau_after_add_param_group(m, server_kw):
    """torch's recipe: a group added mid-run, and min_lrs extended by hand to match."""
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": torch.tensor(0.5)}], lr=0.5)
    sched = m.ReduceLROnPlateau(opt, threshold=0.1, patience=5, cooldown=5, min_lr=[1e-5, 1e-4], **server_kw)
    seen = []
    for epoch, metric in enumerate([1] * 7 + [0.6] + [0.5] * 12):
        if epoch == 8:
            opt.add_param_group({"params": [torch.nn.Parameter(torch.rand(2, 3))], "lr": 0.05})
            sched.min_lrs.append(1e-6)
        opt.step()
        sched.step(metric)
        seen.append([float(g["lr"]) for g in opt.param_groups])
    return seen


def test_plateau_min_lrs_extended_by_hand_after_add_param_group(server):
    assert _plateau_after_add_param_group(B, {"server": server}) == _plateau_after_add_param_group(T, {})


def test_base_lrs_are_copies_of_tensor_initial_lrs(server):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=torch.tensor(0.1))
    sched = B.StepLR(opt, step_size=30, server=server)
    initial = opt.param_groups[0]["initial_lr"]
    assert sched.base_lrs[0] is not initial
    initial.mul_(0.5)  # torch's base_lrs never alias the group's tensors
    assert float(sched.base_lrs[0]) == float(torch.tensor(0.1))
