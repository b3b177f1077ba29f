"""lrbridge.spec builders: the dicts the spec grammar (ts/src/spec/generic) expects, accepted
by the real server, and a few values checked against the published formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrbridge import Client
from lrbridge import spec as S
from lrbridge.errors import SpecError

SGD = [{"lr": 0.5, "momentum": 0.9}]
ADAM = [{"lr": 0.5, "betas": [0.9, 0.999]}]

# builder call -> the dict the grammar expects
CASES = [
    (S.constant(), {"type": "constant"}),
    (S.constant(0.3), {"type": "constant", "value": 0.3}),
    (S.linear(100), {"type": "linear", "total_steps": 100}),
    (S.cosine(100, end=0.01), {"type": "cosine", "total_steps": 100, "end": 0.01}),
    (S.exponential(100, end=0.01), {"type": "exponential", "total_steps": 100, "end": 0.01}),
    (S.polynomial(100, power=2.0), {"type": "polynomial", "total_steps": 100, "power": 2.0}),
    (S.rex(100, w=0.9), {"type": "rex", "total_steps": 100, "w": 0.9}),
    (S.tanh(100, lb=-6, ub=4), {"type": "tanh", "total_steps": 100, "lb": -6, "ub": 4}),
    (S.one_minus_sqrt(100), {"type": "one_minus_sqrt", "total_steps": 100}),
    (S.step(30, gamma=0.5), {"type": "step", "every": 30, "gamma": 0.5}),
    (S.piecewise([10, 20], [1, 0.1, 0.01]), {"type": "piecewise", "boundaries": [10, 20], "values": [1, 0.1, 0.01]}),
    (S.inverse_sqrt(timescale=50), {"type": "inverse_sqrt", "timescale": 50}),
    (
        S.sample(S.rex(100), every=10),
        {"type": "sample", "schedule": {"type": "rex", "total_steps": 100}, "every": 10},
    ),
    (
        S.sample(S.exponential(100, end=0.001), times=3, total_steps=100),
        {"type": "sample", "schedule": {"type": "exponential", "total_steps": 100, "end": 0.001}, "times": 3, "total_steps": 100},
    ),
    (
        S.warmup(S.cosine(90), steps=10),
        {"type": "warmup", "then": {"type": "cosine", "total_steps": 90}, "steps": 10},
    ),
    (
        S.warmup(S.cosine(100), steps=10, shape="exponential", from_=0.01, mode="overlay"),
        {"type": "warmup", "then": {"type": "cosine", "total_steps": 100}, "steps": 10, "shape": "exponential", "from": 0.01, "mode": "overlay"},
    ),
    (
        S.join([S.constant(), S.linear(50)], [50]),
        {"type": "join", "schedules": [{"type": "constant"}, {"type": "linear", "total_steps": 50}], "boundaries": [50]},
    ),
    (
        S.combine([0.3, 0.7], [S.phase("linear", 0.04, 1), S.phase("rex", 1, 0, w=0.9)], 100),
        {
            "type": "combine",
            "pcts": [0.3, 0.7],
            "phases": [{"shape": "linear", "start": 0.04, "end": 1}, {"shape": "rex", "start": 1, "end": 0, "w": 0.9}],
            "total_steps": 100,
        },
    ),
    (
        S.multiply(S.cosine(100), S.exponential(100, end=0.5)),
        {"type": "multiply", "schedules": [{"type": "cosine", "total_steps": 100}, {"type": "exponential", "total_steps": 100, "end": 0.5}]},
    ),
    (
        S.cycles(20, cycle_mul=2, cycle_decay=0.5, cycle_limit=3, k_decay=2),
        {"type": "cycles", "t_initial": 20, "cycle_mul": 2, "cycle_decay": 0.5, "cycle_limit": 3, "k_decay": 2},
    ),
    (S.cycles(20, shape="rex", w=0.9), {"type": "cycles", "shape": "rex", "t_initial": 20, "w": 0.9}),
    (
        S.noise(S.cosine(100), range=[10, 80], pct=0.5, seed=7),
        {"type": "noise", "schedule": {"type": "cosine", "total_steps": 100}, "range": [10, 80], "pct": 0.5, "seed": 7},
    ),
    (
        S.hf("cosine", num_warmup_steps=10, num_training_steps=100),
        {"type": "hf", "name": "cosine", "num_warmup_steps": 10, "num_training_steps": 100},
    ),
    (
        S.hf("warmup_stable_decay", num_warmup_steps=10, num_decay_steps=20, num_training_steps=100, decay_type="1-sqrt"),
        {"type": "hf", "name": "warmup_stable_decay", "num_warmup_steps": 10, "num_training_steps": 100, "num_decay_steps": 20, "decay_type": "1-sqrt"},
    ),
    (S.hf("constant"), {"type": "hf", "name": "constant"}),
    (
        S.wsd(20, warmup_steps=10, total_steps=100),
        {"type": "wsd", "warmup_steps": 10, "decay_steps": 20, "total_steps": 100},
    ),
    (
        S.timm_cosine(50, lr_min=1e-5, warmup_t=5, warmup_lr_init=1e-4, cycle_limit=2),
        {"type": "timm_cosine", "t_initial": 50, "lr_min": 1e-5, "warmup_t": 5, "warmup_lr_init": 1e-4, "cycle_limit": 2},
    ),
    (S.sgdr(10, t_mult=2, m_mul=0.8, alpha=0.01), {"type": "sgdr", "t_0": 10, "t_mult": 2, "m_mul": 0.8, "alpha": 0.01}),
    (S.snapshot(100, 5), {"type": "snapshot", "total_steps": 100, "snapshots": 5}),
    (S.one_cycle(100), {"type": "one_cycle", "total_steps": 100}),
    (S.one_cycle(100, div=10, moms=None), {"type": "one_cycle", "total_steps": 100, "div": 10, "moms": None}),
    (S.one_cycle(100, moms=(0.9, 0.8, 0.9)), {"type": "one_cycle", "total_steps": 100, "moms": [0.9, 0.8, 0.9]}),
    (S.flat_cos(100, pct_start=0.5), {"type": "flat_cos", "total_steps": 100, "pct_start": 0.5}),
    (S.fractal(16, 0.1, 1.0), {"type": "fractal", "horizon": 16, "lambda_min": 0.1, "lambda_max": 1.0}),
    (S.torch_spec("StepLR", step_size=3, gamma=None), {"type": "StepLR", "step_size": 3}),
    (
        S.absolute(S.cosine(100, start=0.1, end=0.001), lr=0.1),
        {"type": "cosine", "total_steps": 100, "start": 0.1, "end": 0.001, "scale": "absolute", "lr": 0.1},
    ),
    (
        S.with_momentum(S.cosine(100), S.inverse_momentum(0.95, 0.85)),
        {"type": "cosine", "total_steps": 100, "momentum": {"type": "inverse", "max": 0.95, "min": 0.85}},
    ),
    (
        S.with_momentum(S.rex(100), S.constant(0.9)),
        {"type": "rex", "total_steps": 100, "momentum": {"type": "constant", "value": 0.9}},
    ),
]


@pytest.mark.parametrize("built, expected", CASES, ids=[c[1]["type"] + f"-{i}" for i, c in enumerate(CASES)])
def test_builder_dict_and_server_accepts_it(client: Client, built, expected):
    assert built == expected
    opened = client.open(built, SGD)
    assert opened.kind == "deterministic"
    window = client.window(opened, 0, 8)
    assert np.all(np.isfinite(window.lr))


def test_range_test_builder_is_a_metric_spec(client: Client):
    built = S.range_test(start_lr=1e-6, end_lr=1.0, num_steps=50, mode="linear")
    assert built == {"type": "range_test", "start_lr": 1e-6, "end_lr": 1.0, "num_steps": 50, "mode": "linear"}
    opened = client.open(built, SGD)
    assert opened.kind == "metric"
    assert opened.lr == [1e-6]
    assert opened.canonical["beta"] == 0.98 and opened.canonical["diverge_factor"] == 4


def test_defaults_left_out_are_filled_by_the_server(client: Client):
    opened = client.open(S.rex(100), SGD)
    assert opened.canonical["w"] == 0.5
    assert opened.canonical["start"] == 1 and opened.canonical["end"] == 0


def test_server_names_the_bad_field(client: Client):
    with pytest.raises(SpecError) as info:
        client.open(S.warmup(S.rex(100, w=1.5), steps=10), SGD)
    assert info.value.path == "then.w"
    with pytest.raises(SpecError):
        client.open(S.sample(S.rex(100)), SGD)  # neither every nor times


def test_rex_multipliers_are_the_papers(client: Client):
    """The REX paper: REX (w = 0.5) at p = .25/.5/.75/.9 is .857/.667/.400/.182."""
    opened = client.open(S.rex(100), [{"lr": 1.0}])
    lr = client.window(opened, 0, 101).lr[:, 0]
    np.testing.assert_allclose(lr[[25, 50, 75, 90]], [0.75 / 0.875, 0.5 / 0.75, 0.25 / 0.625, 0.1 / 0.55], rtol=1e-12)
    assert round(lr[25], 3) == 0.857 and round(lr[90], 3) == 0.182


def test_sampled_exponential_is_a_staircase(client: Client):
    opened = client.open(S.sample(S.exponential(90, end=0.001), times=3, total_steps=90), [{"lr": 1.0}])
    lr = client.window(opened, 0, 91).lr[:, 0]
    assert set(np.round(lr[:90], 12)) == {1.0, 0.1, 0.01}
    assert lr[29] == 1.0 and math.isclose(lr[30], 0.1, rel_tol=1e-12) and math.isclose(lr[60], 0.01, rel_tol=1e-12)


def test_warmup_prepend_reaches_the_schedule_start(client: Client):
    opened = client.open(S.warmup(S.cosine(100), steps=10), [{"lr": 0.2}])
    lr = client.window(opened, 0, 12).lr[:, 0]
    assert lr[0] == 0.0  # HF convention: 0 at step 0
    np.testing.assert_allclose(lr[5], 0.1, rtol=1e-12)
    assert lr[10] == 0.2  # cosine's own step 0


def test_with_momentum_writes_betas_for_adam(client: Client):
    opened = client.open(S.with_momentum(S.cosine(10), S.inverse_momentum(0.95, 0.85)), ADAM)
    assert opened.momentum_key == "betas"
    window = client.window(opened, 0, 11)
    assert window.momentum[0, 0] == pytest.approx(0.85)  # highest lr, lowest momentum
    assert window.momentum[10, 0] == pytest.approx(0.95)


def test_absolute_replaces_the_base_lr(client: Client):
    opened = client.open(S.absolute(S.constant(0.03), lr=[0.5, 0.5]), [{"lr": 7.0}, {"lr": 9.0}])
    window = client.window(opened, 0, 2)
    np.testing.assert_allclose(window.lr, [[0.015, 0.015], [0.015, 0.015]], rtol=1e-12)
