"""lrbridge.find_lr against the real server: restores exactly, stops on divergence,
follows the lr ramp, smooths like fastai, cycles short data."""

from __future__ import annotations

import math
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lrbridge.lr_finder import RangeTestResult, find_lr


def regression_data(n_batches=4, batch=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(5, 1, generator=g)
    out = []
    for _ in range(n_batches):
        x = torch.randn(batch, 5, generator=g)
        out.append((x, x @ w + 0.1 * torch.randn(batch, 1, generator=g)))
    return out


def model_and_optimizer(seed=0, momentum=0.9):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))
    optimizer = torch.optim.SGD(
        [{"params": model[0].parameters(), "lr": 0.01}, {"params": model[2].parameters(), "lr": 0.002}],
        lr=0.01,
        momentum=momentum,
        weight_decay=1e-4,
    )
    return model, optimizer


def test_restores_model_and_optimizer_exactly(server):
    model, optimizer = model_and_optimizer()
    data = regression_data()
    # give the optimizer real state first: momentum buffers and a step count
    for x, y in data[:2]:
        optimizer.zero_grad()
        F.mse_loss(model(x), y).backward()
        optimizer.step()
    model.eval()
    before_params = {k: v.clone() for k, v in model.state_dict().items()}
    before_opt = optimizer.state_dict()
    before_bufs = {k: v["momentum_buffer"].clone() for k, v in before_opt["state"].items()}

    result = find_lr(model, optimizer, F.mse_loss, data, start_lr=1e-5, end_lr=1.0, num_steps=30, server=server)

    assert len(result.lrs) > 5  # it did train
    for k, v in model.state_dict().items():
        assert torch.equal(v, before_params[k]), k
    after = optimizer.state_dict()
    assert [g["lr"] for g in after["param_groups"]] == [0.01, 0.002]
    assert after["param_groups"] == before_opt["param_groups"]
    for k, buf in before_bufs.items():
        assert torch.equal(after["state"][k]["momentum_buffer"], buf)
    assert not model.training  # eval mode kept


def test_stops_early_when_the_loss_diverges(server):
    model, optimizer = model_and_optimizer(momentum=0.0)
    result = find_lr(model, optimizer, F.mse_loss, regression_data(), start_lr=1e-4, end_lr=1e4, num_steps=100, server=server)
    assert result.reason == "diverged" and result.diverged
    assert len(result.lrs) < 100
    best = min(result.smoothed)
    last = result.smoothed[-1]
    assert not math.isfinite(last) or last > 4 * best
    assert all(s <= 4 * best for s in result.smoothed[:-1] if math.isfinite(s))


def test_lr_ramp_and_smoothing(server):
    model, optimizer = model_and_optimizer()
    start, end, n = 1e-6, 1e-2, 20
    result = find_lr(model, optimizer, F.mse_loss, regression_data(), start_lr=start, end_lr=end, num_steps=n, server=server)
    assert result.reason == "finished" and len(result.lrs) == n
    for i, lr in enumerate(result.lrs):  # fastai: position i/num_it, end_lr itself never used
        assert lr == pytest.approx(start * (end / start) ** (i / n), rel=1e-12)
    avg = 0.0
    for i, (raw, smooth) in enumerate(zip(result.losses, result.smoothed)):
        avg = 0.98 * avg + 0.02 * raw
        assert smooth == pytest.approx(avg / (1 - 0.98 ** (i + 1)), rel=1e-12)


def test_linear_mode(server):
    model, optimizer = model_and_optimizer()
    result = find_lr(
        model, optimizer, F.mse_loss, regression_data(), start_lr=1e-4, end_lr=1e-2, num_steps=10, mode="linear", server=server
    )
    assert result.lrs[5] == pytest.approx(1e-4 + (1e-2 - 1e-4) * 0.5, rel=1e-12)


def test_short_data_is_cycled_and_one_shot_iterators_replayed(server):
    model, optimizer = model_and_optimizer()
    data = regression_data(n_batches=3)
    result = find_lr(model, optimizer, F.mse_loss, iter(data), start_lr=1e-6, end_lr=1e-4, num_steps=10, server=server)
    assert len(result.lrs) == 10 and result.reason == "finished"


def test_suggestions_and_bounds(server):
    torch.manual_seed(0)
    model, optimizer = model_and_optimizer()
    result = find_lr(model, optimizer, F.mse_loss, regression_data(8), start_lr=1e-5, end_lr=10.0, num_steps=100, server=server)
    assert isinstance(result, RangeTestResult)
    assert result.valley is not None and result.steep is not None and result.minimum is not None
    lo, hi = min(result.lrs), max(result.lrs)
    for name, value in result.suggestions().items():
        if value is not None:
            assert lo / 10 <= value <= hi, name
    bounds = result.suggest_bounds()
    assert bounds == {"base_lr": result.valley / 4, "max_lr": result.valley}
    assert result.suggest_bounds("steep", only="max_lr") == {"max_lr": result.steep}
    with pytest.raises(ValueError):
        result.suggest_bounds("best")


def test_plot_writes_a_png(server, tmp_path):
    pytest.importorskip("matplotlib")
    model, optimizer = model_and_optimizer()
    result = find_lr(model, optimizer, F.mse_loss, regression_data(), start_lr=1e-5, end_lr=1.0, num_steps=30, server=server)
    path = tmp_path / "curve.png"
    result.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_so(monkeypatch):
    result = RangeTestResult([1e-3], [1.0], [1.0], None, None, None, None, "diverged")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        result.plot()
    with pytest.raises(ValueError, match="too few"):
        result.suggest_bounds()
