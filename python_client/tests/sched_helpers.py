"""Shared pieces of the scheduler tests: twin optimizers and value comparison."""

from __future__ import annotations

import torch

REL = 1e-12
ABS = 1e-15


def make_optimizer(kind: str, lr_type=float):
    """Fresh optimizer: 'sgd' (momentum), 'adam', or 'sgd2' (two groups, different lrs)."""
    lr = (lambda v: torch.tensor(v, dtype=torch.float64)) if lr_type is torch.Tensor else (lambda v: v)
    a = torch.nn.Parameter(torch.zeros(3))
    b = torch.nn.Parameter(torch.zeros(2))
    if kind == "sgd":
        return torch.optim.SGD([a, b], lr=lr(0.1), momentum=0.9)
    if kind == "adam":
        return torch.optim.Adam([a, b], lr=lr(0.01), betas=(0.9, 0.99))
    if kind == "sgd2":
        return torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": lr(0.03)}], lr=lr(0.1), momentum=0.8)
    raise ValueError(kind)


def mark_stepped(optimizer) -> None:
    """An optimizer.step() (no grads, so no update): the order warning stays quiet."""
    optimizer.step()


def values(optimizer) -> list[tuple[float, float | None]]:
    """(lr, momentum or beta1) per group, as floats."""
    out = []
    for g in optimizer.param_groups:
        lr = float(g["lr"])
        mom = g["betas"][0] if "betas" in g else g.get("momentum")
        out.append((lr, None if mom is None else float(mom)))
    return out


def rel_error(a: float, b: float) -> float:
    if a == b:
        return 0.0
    diff = abs(a - b)
    if diff <= ABS:
        return 0.0
    return diff / max(abs(a), abs(b))


class Worst:
    """Running worst relative error over compared values."""

    def __init__(self) -> None:
        self.value = 0.0
        self.count = 0

    def compare(self, expected, got, where: str) -> None:
        assert len(expected) == len(got), where
        for (lr_e, mom_e), (lr_g, mom_g) in zip(expected, got):
            err = rel_error(lr_e, lr_g)
            assert err <= REL, f"{where}: lr torch {lr_e!r} lrbridge {lr_g!r} (rel {err:.3g})"
            self.value = max(self.value, err)
            assert (mom_e is None) == (mom_g is None), where
            if mom_e is not None:
                err = rel_error(mom_e, mom_g)
                assert err <= REL, f"{where}: momentum torch {mom_e!r} lrbridge {mom_g!r}"
                self.value = max(self.value, err)
            self.count += 1


# Every parity comparison of the session, summed up at its end (conftest.py).
PARITY = Worst()
