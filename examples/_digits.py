"""Shared pieces of the schedule examples: a harder digits task, a small MLP, a training loop.

The task. scikit-learn's digits (1797 8×8 images, bundled, no download) is
easy: a small CNN on 80 % of it reaches ~98 % and every reasonable schedule
ends within noise of every other. To make schedules distinguishable the
examples use a harder setting:

- a small train split (500 images; the other 1297 are the test set),
- 20 % label noise on the train split only (a label replaced by a random
  other class; the test labels stay clean), so a schedule that keeps a high
  lr to the end, or anneals too early, shows in test accuracy,
- a small MLP (64 → 64 → 10) trained with SGD + momentum at a fairly high lr
  (0.1 by default), where the late-phase lr matters.

Everything is seeded; a run is a few hundred steps and takes well under a
second on one CPU thread, so the examples run many seeds on 2 cores.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python_client"))

import lrbridge  # noqa: E402
from lrbridge.schedule import Schedule  # noqa: E402

TRAIN_SIZE = 500
LABEL_NOISE = 0.2
BATCH = 50
LR = 0.1
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
HIDDEN = 64

# 2 shared CPU cores: one thread is faster than two fighting for them for a model this small.
torch.set_num_threads(1)


@dataclass
class Data:
    x_train: torch.Tensor
    y_train: torch.Tensor  # noisy labels
    x_test: torch.Tensor
    y_test: torch.Tensor  # clean labels

    @property
    def steps_per_epoch(self) -> int:
        return (len(self.x_train) + BATCH - 1) // BATCH


def load(train_size: int = TRAIN_SIZE, label_noise: float = LABEL_NOISE, seed: int = 0) -> Data:
    """Digits as flat 64-feature vectors in [0, 1]; a fixed split; noisy train labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    x, y = x[perm], y[perm]
    x_train, y_train = x[:train_size], y[:train_size].clone()
    flip = torch.rand(train_size, generator=g) < label_noise
    shift = torch.randint(1, 10, (train_size,), generator=g)  # a different class, uniformly
    y_train[flip] = (y_train[flip] + shift[flip]) % 10
    return Data(x_train, y_train, x[train_size:], y[train_size:])


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))


def make_optimizer(model: nn.Module, lr: float = LR) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    was = model.training
    model.eval()
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    model.train(was)
    return acc


def batches(data: Data, epochs: int, seed: int):
    """(epoch, x, y) minibatches, reshuffled each epoch with a seeded generator."""
    g = torch.Generator().manual_seed(10_000 + seed)
    n = len(data.x_train)
    for epoch in range(epochs):
        order = torch.randperm(n, generator=g)
        for i in range(0, n, BATCH):
            idx = order[i : i + BATCH]
            yield epoch, data.x_train[idx], data.y_train[idx]


@dataclass
class Run:
    model: nn.Module
    final_acc: float
    lrs: list  # lr used at each step (group 0)
    epoch_acc: list  # test accuracy after each epoch


def train(
    spec_or_factory: Any,
    data: Data,
    *,
    epochs: int,
    seed: int,
    lr: float = LR,
    after_step: Callable[[Any, int], None] | None = None,
    model: nn.Module | None = None,
) -> Run:
    """One run. ``spec_or_factory``: a spec dict (→ ``lrbridge.Schedule``) or
    ``factory(optimizer) -> scheduler``. ``after_step(scheduler, step)`` runs after
    every ``scheduler.step()`` (snapshot savers hook in there)."""
    model = model if model is not None else make_model(seed)
    optimizer = make_optimizer(model, lr)
    if callable(spec_or_factory):
        scheduler = spec_or_factory(optimizer)
    else:
        scheduler = Schedule(optimizer, spec_or_factory)
    lrs, epoch_acc = [], []
    step = 0
    last_epoch = 0
    for epoch, x, y in batches(data, epochs, seed):
        if epoch != last_epoch:
            epoch_acc.append(accuracy(model, data.x_test, data.y_test))
            last_epoch = epoch
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lrs.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
        step += 1
        if after_step is not None:
            after_step(scheduler, step)
    epoch_acc.append(accuracy(model, data.x_test, data.y_test))
    return Run(model, epoch_acc[-1], lrs, epoch_acc)


def out_path(name: str) -> Path:
    """examples/out/<name> (the folder is created; *.png is gitignored)."""
    folder = HERE / "out"
    folder.mkdir(exist_ok=True)
    return folder / name


def figure(rows: int = 1, cols: int = 1, size: tuple = (7.0, 4.2)):
    """A matplotlib Figure without pyplot (no display needed), or None without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("(matplotlib is not installed: no plot written; pip install matplotlib)")
        return None, None
    fig = Figure(figsize=(size[0] * cols, size[1] * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def save(fig: Any, name: str) -> None:
    if fig is None:
        return
    path = out_path(name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {os.path.relpath(path)}")


def mean_std(values: list[float]) -> tuple[float, float]:
    t = torch.tensor(values, dtype=torch.float64)
    return t.mean().item(), (t.std().item() if len(values) > 1 else 0.0)


__all__ = ["Data", "Run", "Schedule", "accuracy", "figure", "load", "lrbridge", "make_model", "make_optimizer", "out_path", "save", "train"]
