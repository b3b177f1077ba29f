"""lrbridge.Schedule through the real node server: torch specs against torch 2.13,
generic/recipe specs against the TS golden vectors, resume, metric-driven specs."""

from __future__ import annotations

import json
import math
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from lrbridge.errors import SpecError
from lrbridge.schedule import Schedule, as_spec

RTOL = 1e-12
VECTORS = Path(__file__).resolve().parents[2] / "proto" / "vectors"


def sgd(lrs=(0.1,), momentum=0.9):
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    return torch.optim.SGD(params, lr=lrs[0], momentum=momentum)


def adam(lrs=(0.1,)):
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    return torch.optim.Adam(params)


def play(scheduler, optimizer, steps):
    """lr rows 0..steps-1 (row k = after k step() calls), and momentum/beta1 rows."""
    lrs, moms = [], []
    for k in range(steps):
        lrs.append([g["lr"] for g in optimizer.param_groups])
        moms.append([g["betas"][0] if "betas" in g else g.get("momentum", math.nan) for g in optimizer.param_groups])
        if k + 1 < steps:
            optimizer.step()
            scheduler.step()
    return np.array(lrs), np.array(moms)


def torch_native(spec, optimizer):
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    return getattr(torch.optim.lr_scheduler, spec["type"])(optimizer, **kwargs)


# --------------------------------------------------------------------------
# torch specs: Schedule is the same as torch's class


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "StepLR", "step_size": 7, "gamma": 0.5},
        {"type": "CosineAnnealingLR", "T_max": 20, "eta_min": 0.001},
        {"type": "OneCycleLR", "max_lr": 0.5, "total_steps": 40},
        {"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5},
        {"type": "CosineAnnealingWarmRestarts", "T_0": 6, "T_mult": 2},
    ],
    ids=lambda s: s["type"],
)
def test_torch_spec_matches_torch(server, spec):
    steps = 40
    ours_opt, ref_opt = sgd((0.1, 0.02)), sgd((0.1, 0.02))
    ours = Schedule(ours_opt, spec, server=server)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch_native(spec, ref_opt)
        got_lr, got_m = play(ours, ours_opt, steps)
        want_lr, want_m = play(ref, ref_opt, steps)
    np.testing.assert_allclose(got_lr, want_lr, rtol=RTOL, atol=1e-15)
    np.testing.assert_allclose(got_m, want_m, rtol=RTOL, atol=1e-15)
    assert isinstance(ours, torch.optim.lr_scheduler.LRScheduler)
    assert ours.get_last_lr() == ref.get_last_lr()


def test_library_schedules_nest_in_torch_composites_as_lambdalr(server):
    spec = {
        "type": "SequentialLR",
        "schedulers": [
            {"type": "ChainedScheduler", "schedulers": [{"type": "rex", "total_steps": 12}, {"type": "ExponentialLR", "gamma": 0.9}]},
            {"type": "StepLR", "step_size": 3, "gamma": 0.5},
        ],
        "milestones": [8],
    }

    def rex(t):
        z = min(t, 12) / 12
        return (1 - z) / (0.5 + 0.5 * (1 - z))

    ours_opt, ref_opt = sgd((0.1, 0.02)), sgd((0.1, 0.02))
    ours = Schedule(ours_opt, spec, server=server)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = torch.optim.lr_scheduler
        chained = sched.ChainedScheduler([sched.LambdaLR(ref_opt, rex), sched.ExponentialLR(ref_opt, 0.9)])
        ref = sched.SequentialLR(ref_opt, [chained, sched.StepLR(ref_opt, 3, 0.5)], [8])
        got_lr, _ = play(ours, ours_opt, 30)
        want_lr, _ = play(ref, ref_opt, 30)
    np.testing.assert_allclose(got_lr, want_lr, rtol=RTOL, atol=1e-15)


def test_resume_continues_where_it_stopped(server):
    spec = {"type": "OneCycleLR", "max_lr": 0.3, "total_steps": 60}
    full_opt = sgd()
    full = Schedule(full_opt, spec, server=server)
    want, _ = play(full, full_opt, 60)

    first_opt = sgd()
    first = Schedule(first_opt, spec, server=server)
    play(first, first_opt, 26)  # rows 0..25: 25 steps
    saved_sched = pickle.loads(pickle.dumps(first.state_dict()))
    saved_opt = first_opt.state_dict()

    again_opt = sgd()
    again = Schedule(again_opt, spec, server=server)
    again_opt.load_state_dict(saved_opt)
    again.load_state_dict(saved_sched)
    assert again.last_epoch == 25
    got, _ = play(again, again_opt, 35)  # rows 25..59
    np.testing.assert_allclose(got, want[25:], rtol=RTOL, atol=1e-15)


def test_generic_spec_resumes_with_its_momentum(server, tmp_path):
    from lrbridge import spec as S

    spec = S.with_momentum(S.warmup(S.cosine(50), steps=10), S.inverse_momentum(0.95, 0.85))
    full_opt = sgd((0.1, 0.02))
    want_lr, want_m = play(Schedule(full_opt, spec, server=server), full_opt, 60)

    first_opt = sgd((0.1, 0.02))
    first = Schedule(first_opt, spec, server=server)
    play(first, first_opt, 31)  # 30 steps
    torch.save({"opt": first_opt.state_dict(), "sched": first.state_dict()}, tmp_path / "ckpt.pt")

    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    again_opt = sgd((0.1, 0.02))
    again = Schedule(again_opt, spec, server=server)
    again_opt.load_state_dict(ckpt["opt"])
    again.load_state_dict(ckpt["sched"])
    got_lr, got_m = play(again, again_opt, 30)  # rows 30..59
    np.testing.assert_allclose(got_lr, want_lr[30:], rtol=RTOL, atol=1e-15)
    np.testing.assert_allclose(got_m, want_m[30:], rtol=RTOL, atol=1e-15)
    assert len(set(np.round(want_m[:, 0], 6))) > 5  # momentum really moves


def test_momentum_goes_to_adam_beta1(server):
    from lrbridge import spec as S

    opt = adam((0.1,))
    sched = Schedule(opt, S.with_momentum(S.cosine(10), S.inverse_momentum(0.95, 0.85)), server=server)
    assert opt.param_groups[0]["betas"] == pytest.approx((0.85, 0.999))
    for _ in range(10):
        opt.step()
        sched.step()
    beta1, beta2 = opt.param_groups[0]["betas"]
    assert beta1 == pytest.approx(0.95) and beta2 == 0.999
    assert isinstance(opt.param_groups[0]["betas"], tuple)


# --------------------------------------------------------------------------
# the spec argument


def test_as_spec_copies_and_makes_json():
    inner = {"type": "StepLR", "step_size": np.int64(3), "gamma": torch.tensor(0.5), "extra": (1, 2)}
    spec = as_spec(inner)
    assert spec == {"type": "StepLR", "step_size": 3, "gamma": 0.5, "extra": [1, 2]}
    assert type(spec["step_size"]) is int and type(spec["gamma"]) is float
    spec["step_size"] = 99
    assert inner["step_size"] == 3  # a copy
    assert as_spec('{"type": "StepLR", "step_size": 2}') == {"type": "StepLR", "step_size": 2}


def test_spec_refuses_callables_and_missing_type():
    with pytest.raises(TypeError, match="callable"):
        as_spec({"type": "LambdaLR", "lr_lambda": lambda e: 0.9**e})
    with pytest.raises(ValueError, match="type"):
        as_spec({"step_size": 3})
    with pytest.raises(TypeError, match="dict"):
        as_spec(3)


def test_server_rejects_a_bad_spec_with_its_path(server):
    with pytest.raises(SpecError) as info:
        Schedule(sgd(), {"type": "StepLR", "step_size": 1.5}, server=server)
    assert "step_size" in info.value.path


def test_spec_hash_and_canonical_come_from_the_server(server):
    a = Schedule(sgd(), {"type": "StepLR", "step_size": 3}, server=server)
    b = Schedule(sgd(), {"step_size": 3, "type": "StepLR", "gamma": 0.1}, server=server)
    assert a.spec_hash == b.spec_hash  # defaults filled in, keys sorted
    assert a.canonical["gamma"] == 0.1
    assert a.kind == "deterministic"


# --------------------------------------------------------------------------
# metric-driven specs step with step(metric)


def test_metric_driven_spec_matches_torch_plateau(server):
    spec = {"type": "ReduceLROnPlateau", "factor": 0.5, "patience": 1}
    metrics = [1.0, 0.9, 0.95, 0.97, 0.99, 0.5, 0.6, 0.7, 0.8, 0.9]
    ours_opt, ref_opt = sgd((0.1, 0.02)), sgd((0.1, 0.02))
    ours = Schedule(ours_opt, spec, server=server)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(ref_opt, factor=0.5, patience=1)
    assert ours.kind == "metric"
    for m in metrics:
        ours.step(m)
        ref.step(m)
        assert [g["lr"] for g in ours_opt.param_groups] == [g["lr"] for g in ref_opt.param_groups]
    assert ours_opt.param_groups[0]["lr"] < 0.1  # it did reduce
    with pytest.raises(TypeError, match="metric"):
        ours.step()


# --------------------------------------------------------------------------
# generic / recipe specs against the TS golden vectors


def _recipe_cases():
    folder = VECTORS / "recipes"
    cases = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        for case in json.loads(path.read_text())["cases"]:
            cases.append(pytest.param(case, id=f"{path.stem}-{case.get('name', len(cases))}"))
    return cases


RECIPE_CASES = _recipe_cases()


def test_recipe_vectors_exist():
    """The golden vectors the next test replays (proto/vectors/generate_recipes.py)."""
    assert len(RECIPE_CASES) >= 20, f"too few recipe vectors under {VECTORS / 'recipes'}"


@pytest.mark.parametrize("case", RECIPE_CASES)
def test_recipe_matches_ts_golden_values(server, case):
    """Every case of proto/vectors/recipes (HF, timm, fastai, Keras SGDR, snapshot, fractal),
    played through Schedule on a real optimizer."""
    lrs = tuple(float(g) for g in case["groups"])
    # momentum_groups: the optimizer has momentum for the schedule to write (fastai moms)
    opt = sgd(lrs, momentum=0.9 if case.get("momentum_groups") else 0.0)
    sched = Schedule(opt, case["spec"], server=server)
    want = np.array(case["lr"], dtype=float)
    assert len(want) == case["steps"]
    got, got_m = play(sched, opt, len(want))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-15)
    if case.get("momentum") is not None:
        np.testing.assert_allclose(got_m, np.array(case["momentum"], dtype=float), rtol=RTOL, atol=1e-15)


def test_metric_driven_spec_resumes(server):
    spec = {"type": "ReduceLROnPlateau", "factor": 0.5, "patience": 0}
    metrics = [1.0, 1.1, 1.2, 0.5, 0.6, 0.7, 0.8]
    full_opt = sgd()
    full = Schedule(full_opt, spec, server=server)
    want = []
    for m in metrics:
        full.step(m)
        want.append(full_opt.param_groups[0]["lr"])

    first_opt = sgd()
    first = Schedule(first_opt, spec, server=server)
    for m in metrics[:3]:
        first.step(m)
    saved = pickle.loads(pickle.dumps(first.state_dict()))
    again_opt = sgd()
    again = Schedule(again_opt, spec, server=server)
    again.load_state_dict(saved)
    assert again_opt.param_groups[0]["lr"] == want[2] < 0.1
    got = []
    for m in metrics[3:]:
        again.step(m)
        got.append(again_opt.param_groups[0]["lr"])
    assert got == want[3:]


def test_metric_driven_spec_resume_keeps_tensor_lrs_in_place(server):
    """A tensor lr is filled in place on resume, as everywhere else: an optimizer
    compiled against that tensor keeps seeing the schedule's values."""
    spec = {"type": "ReduceLROnPlateau", "factor": 0.5, "patience": 0}

    def tensor_sgd():
        return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=torch.tensor(0.1), momentum=0.9)

    first_opt = tensor_sgd()
    first = Schedule(first_opt, spec, server=server)
    for m in (1.0, 1.1, 1.2):
        first.step(m)
    saved = pickle.loads(pickle.dumps(first.state_dict()))
    again_opt = tensor_sgd()
    lr_tensor = again_opt.param_groups[0]["lr"]
    again = Schedule(again_opt, spec, server=server)
    again.load_state_dict(saved)
    assert again_opt.param_groups[0]["lr"] is lr_tensor
    assert float(lr_tensor) == float(first_opt.param_groups[0]["lr"]) < 0.1
    again.step(2.0)
    assert again_opt.param_groups[0]["lr"] is lr_tensor
