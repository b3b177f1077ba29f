"""Checkpoint and resume: state_dict through torch.save/torch.load, then continue exactly.

The resume recipe is torch's: build the optimizer and scheduler normally,
``optimizer.load_state_dict``, ``scheduler.load_state_dict``. The resumed run
must give the same values as an unbroken lrbridge run (and as torch).
"""

from __future__ import annotations

import io

import pytest
import torch
from torch.optim import lr_scheduler as T

from lrbridge import lr_scheduler as B

from sched_helpers import Worst, make_optimizer, mark_stepped, values

pytestmark = pytest.mark.filterwarnings("ignore:Detected call of:UserWarning")


def _onecycle(m, opt, kw):
    return m.OneCycleLR(opt, max_lr=0.4, total_steps=1600, **kw)


def _cosine(m, opt, kw):
    return m.CosineAnnealingLR(opt, T_max=50, eta_min=0.001, **kw)


def _cyclic(m, opt, kw):
    return m.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=30, mode="triangular2", **kw)


def _lambda(m, opt, kw):
    fn = (lambda e: 0.99**e) if m is T else "0.99 ** epoch"
    return m.LambdaLR(opt, fn, **kw)


def _sequential(m, opt, kw):
    warm = m.LinearLR(opt, start_factor=0.1, total_iters=20, **kw)
    decay = m.ExponentialLR(opt, gamma=0.995, **kw)
    return m.SequentialLR(opt, [warm, decay], milestones=[20], **kw)


def _warm_restarts(m, opt, kw):
    return m.CosineAnnealingWarmRestarts(opt, T_0=15, T_mult=2, **kw)


BUILDERS = [_onecycle, _cosine, _cyclic, _lambda, _sequential, _warm_restarts]


def _roundtrip(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def _edit(k, opt):
    # A hand edit before the checkpoint: chainable schedules carry it across the resume.
    if k == 100:
        opt.param_groups[0]["lr"] *= 0.5


@pytest.mark.parametrize("opt_kind", ["sgd", "adam"])
@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__.strip("_"))
def test_resume_continues_exactly(server, build, opt_kind):
    kw = {"server": server}
    total, cut = 1500, 1100  # the cut lands inside the second window
    worst = Worst()

    torch_opt = make_optimizer(opt_kind)
    torch_s = build(T, torch_opt, {})
    whole_opt = make_optimizer(opt_kind)
    whole = build(B, whole_opt, kw)
    first_opt = make_optimizer(opt_kind)
    first = build(B, first_opt, kw)
    for opt in (torch_opt, whole_opt, first_opt):
        mark_stepped(opt)

    expected_torch, expected_whole = [], []
    for k in range(1, total + 1):
        for opt in (torch_opt, whole_opt):
            _edit(k, opt)
        torch_s.step()
        whole.step()
        expected_torch.append(values(torch_opt))
        expected_whole.append(values(whole_opt))
        if k <= cut:
            _edit(k, first_opt)
            first.step()

    checkpoint = _roundtrip({"optimizer": first_opt.state_dict(), "scheduler": first.state_dict()})
    assert "_client" not in checkpoint["scheduler"] and "_stream" not in checkpoint["scheduler"]
    assert checkpoint["scheduler"]["last_epoch"] == cut

    resumed_opt = make_optimizer(opt_kind)
    resumed = build(B, resumed_opt, kw)
    resumed_opt.load_state_dict(checkpoint["optimizer"])
    resumed.load_state_dict(checkpoint["scheduler"])
    mark_stepped(resumed_opt)
    assert resumed.last_epoch == cut
    for k in range(cut + 1, total + 1):
        resumed.step()
        got = values(resumed_opt)
        worst.compare(expected_whole[k - 1], got, f"resumed step {k} vs unbroken run")
        worst.compare(expected_torch[k - 1], got, f"resumed step {k} vs torch")
    assert worst.value == 0.0 or worst.value < 1e-12


def test_resume_reduce_lr_on_plateau(server):
    metrics = [1.0, 0.9, 0.91, 0.92, 0.93, 0.8, 0.85, 0.86, 0.87, 0.88, 0.7] * 8
    cut = 37
    torch_opt, first_opt = make_optimizer("sgd2"), make_optimizer("sgd2")
    torch_s = T.ReduceLROnPlateau(torch_opt, patience=1, factor=0.5, cooldown=2)
    first = B.ReduceLROnPlateau(first_opt, patience=1, factor=0.5, cooldown=2, server=server)
    expected = []
    for k, metric in enumerate(metrics):
        torch_s.step(metric)
        expected.append((values(torch_opt), torch_s.best, torch_s.num_bad_epochs, torch_s.cooldown_counter))
        if k < cut:
            first.step(metric)

    checkpoint = _roundtrip({"optimizer": first_opt.state_dict(), "scheduler": first.state_dict()})
    resumed_opt = make_optimizer("sgd2")
    resumed = B.ReduceLROnPlateau(resumed_opt, patience=1, factor=0.5, cooldown=2, server=server)
    resumed_opt.load_state_dict(checkpoint["optimizer"])
    resumed.load_state_dict(checkpoint["scheduler"])
    worst = Worst()
    for k in range(cut, len(metrics)):
        resumed.step(metrics[k])
        lrs, best, bad, cooldown = expected[k]
        worst.compare(lrs, values(resumed_opt), f"plateau metric {k}")
        assert (resumed.best, resumed.num_bad_epochs, resumed.cooldown_counter) == (best, bad, cooldown)
    assert resumed.last_epoch == len(metrics)
    assert values(resumed_opt)[0][0] < 0.1  # the run did reduce the lr


def test_resume_onecycle_still_refuses_past_total_steps(server):
    opt = make_optimizer("sgd")
    first = B.OneCycleLR(opt, max_lr=0.1, total_steps=30, server=server)
    for _ in range(25):
        first.step()
    checkpoint = _roundtrip({"optimizer": opt.state_dict(), "scheduler": first.state_dict()})
    opt2 = make_optimizer("sgd")
    resumed = B.OneCycleLR(opt2, max_lr=0.1, total_steps=30, server=server)
    opt2.load_state_dict(checkpoint["optimizer"])
    resumed.load_state_dict(checkpoint["scheduler"])
    for _ in range(5):
        resumed.step()
    with pytest.raises(ValueError, match="Tried to step 31 times. The specified number of total steps is 30"):
        resumed.step()


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


# A scheduler stepped 10 times, then one built with other arguments loads its state_dict.
STATE_PAIRS = [
    ("StepLR", {"gamma": 0.1, "step_size": 3}, {"gamma": 0.005, "step_size": 1}),
    ("MultiStepLR", {"gamma": 0.1, "milestones": [2, 5, 9]}, {"gamma": 0.01, "milestones": [1, 4, 6]}),
    ("ExponentialLR", {"gamma": 0.1}, {"gamma": 0.01}),
    ("CosineAnnealingLR", {"T_max": 10, "eta_min": 1e-10}, {"T_max": 5, "eta_min": 5e-11}),
    ("CosineAnnealingWarmRestarts", {"T_0": 10, "T_mult": 2}, {"T_0": 100}),
    ("OneCycleLR", {"max_lr": 0.3, "total_steps": 40}, {"max_lr": 0.1, "total_steps": 20}),
]


@pytest.mark.filterwarnings("ignore:lrbridge. the checkpoint's schedule:UserWarning")
@pytest.mark.parametrize("lr_type", [float, torch.Tensor], ids=["float", "tensor"])
@pytest.mark.parametrize("name,first,second", STATE_PAIRS, ids=[p[0] for p in STATE_PAIRS])
def test_a_copy_loaded_from_state_dict_holds_the_same_state(server, name, first, second, lr_type):
    """What torch's own state_dict check compares: every attribute but the optimizer."""
    opt = make_optimizer("sgd2", lr_type)
    sched = getattr(B, name)(opt, **first, server=server)
    for _ in range(10):
        mark_stepped(opt)
        sched.step()
    copy = getattr(B, name)(opt, **second, server=server)
    copy.load_state_dict(sched.state_dict())
    assert copy.__dict__.keys() == sched.__dict__.keys()
    for key in sched.__dict__:
        if key != "optimizer":
            assert _same(sched.__dict__[key], copy.__dict__[key]), key
    assert _same(copy.get_last_lr(), sched.get_last_lr())
    assert "_stream" not in sched.__dict__ and "_client" not in sched.__dict__
    assert sched.state_dict().keys() == {k for k in sched.__dict__ if k != "optimizer"}


@pytest.mark.filterwarnings("ignore:lrbridge. the checkpoint's schedule:UserWarning")
def test_a_plateau_copy_loaded_from_state_dict_holds_the_same_state(server):
    opt = make_optimizer("sgd2")
    sched = B.ReduceLROnPlateau(opt, mode="min", factor=0.1, patience=2, server=server)
    for score in [1.0, 2.0, 3.0, 4.0, 3.0, 4.0, 5.0, 3.0, 2.0, 1.0]:
        sched.step(score)
    copy = B.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=10, server=server)
    copy.load_state_dict(sched.state_dict())
    assert copy.__dict__.keys() == sched.__dict__.keys()
    for key in sched.__dict__:
        if key != "optimizer":
            assert _same(sched.__dict__[key], copy.__dict__[key]), key


@pytest.mark.parametrize("opt_kind", ["sgd", "adam"])
def test_onecycle_rebuilt_with_last_epoch_on_a_restored_optimizer_continues_as_torch(server, opt_kind):
    """No scheduler state_dict: the optimizer's groups hold what OneCycleLR needs
    (initial_lr, max_lr, min_lr, the momentum bounds), and last_epoch says where it is."""
    runs = {}
    for m in (T, B):
        kw = {} if m is T else {"server": server}
        opt = make_optimizer(opt_kind)
        first = m.OneCycleLR(opt, max_lr=0.3, total_steps=20, anneal_strategy="linear", **kw)
        for _ in range(7):
            mark_stepped(opt)
            first.step()
        saved = _roundtrip(opt.state_dict())
        opt2 = make_optimizer(opt_kind)
        opt2.load_state_dict(saved)
        resumed = m.OneCycleLR(opt2, max_lr=0.3, total_steps=20, anneal_strategy="linear", last_epoch=6, **kw)
        seen = [values(opt2)]
        for _ in range(13):
            mark_stepped(opt2)
            resumed.step()
            seen.append(values(opt2))
        with pytest.raises(ValueError, match="Tried to step 21 times"):
            resumed.step()
        runs[m] = seen
    assert len(runs[T]) == len(runs[B]) == 14
    worst = Worst()
    for k, (t, b) in enumerate(zip(runs[T], runs[B])):
        worst.compare(t, b, f"row {7 + k}")


def test_onecycle_with_last_epoch_on_a_fresh_optimizer_raises_torchs_key_error(server):
    opt = make_optimizer("sgd")
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    with pytest.raises(KeyError) as ours:
        B.OneCycleLR(opt, max_lr=0.3, total_steps=20, last_epoch=3, server=server)
    opt_t = make_optimizer("sgd")
    for g in opt_t.param_groups:
        g["initial_lr"] = g["lr"]
    with pytest.raises(KeyError) as theirs:
        T.OneCycleLR(opt_t, max_lr=0.3, total_steps=20, last_epoch=3)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("kind", ["SequentialLR", "ChainedScheduler"])
def test_a_composite_state_dict_nests_its_childrens_as_torchs_does(server, kind):
    def build(m, opt):
        kw = {} if m is T else {"server": server}
        children = [m.ConstantLR(opt, factor=0.5, total_iters=3, **kw), m.ExponentialLR(opt, gamma=0.9, **kw)]
        if kind == "SequentialLR":
            return m.SequentialLR(opt, children, milestones=[3], **kw)
        return m.ChainedScheduler(children, **kw)

    states, resumed = {}, {}
    for m in (T, B):
        opt = make_optimizer("sgd")
        sched = build(m, opt)
        for _ in range(5):
            mark_stepped(opt)
            sched.step()
        states[m] = _roundtrip(sched.state_dict())
        opt2 = make_optimizer("sgd")
        again = build(m, opt2)
        opt2.load_state_dict(opt.state_dict())
        again.load_state_dict(states[m])
        assert [c.last_epoch for c in again._schedulers] == [c["last_epoch"] for c in states[m]["_schedulers"]]
        for _ in range(4):
            mark_stepped(opt2)
            again.step()
        resumed[m] = (values(opt2), [c.last_epoch for c in again._schedulers], [c.get_last_lr() for c in again._schedulers])
    theirs, ours = states[T], states[B]
    assert set(theirs) <= set(ours)
    assert len(ours["_schedulers"]) == 2
    for t, b in zip(theirs["_schedulers"], ours["_schedulers"]):
        assert b["last_epoch"] == t["last_epoch"] and b["_last_lr"] == t["_last_lr"]
    assert resumed[B] == resumed[T]
