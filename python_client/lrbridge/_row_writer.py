"""Every write of schedule values into an optimizer's param groups.

A row (``lr`` and ``momentum`` or ``betas[0]``) goes through a writer from
``row_writer``; ReduceLROnPlateau's reduced lrs through ``write_reduced``;
the keys a constructor writes through ``write_group_keys``.

A row writer is picked once for the groups' shape: float or
tensor lrs (a tensor lr is filled in place, as torch does, so a compiled
optimizer keeps its tensor), and which key momentum goes to. A writer is
called as ``write(groups, lr, mom, j)`` with the values of group g at
``lr[j + g]`` (a window's flat buffer, or one row with ``j = 0``) and
returns what ``_last_lr`` becomes: the row as floats, or the lrs as tensor
clones where a group's lr is a tensor.
"""

from __future__ import annotations

from array import array
from typing import Any, Callable, Sequence

from torch import Tensor

RowWriter = Callable[[list, Sequence[float], "Sequence[float] | None", int], list]


def group_value(value: Any) -> float:
    return float(value.item()) if isinstance(value, Tensor) else float(value)


def has_tensor_lrs(groups: list) -> bool:
    return any(isinstance(g["lr"], Tensor) for g in groups)


def row_writer(groups: list, momentum_key: str | None) -> RowWriter:
    """The writer for these groups as they are now (re-pick after a group's lr changes type)."""
    betas = momentum_key == "betas"
    if has_tensor_lrs(groups):
        return _TENSOR_BETAS if betas else _TENSOR_MOMENTUM
    if len(groups) == 1:
        return _one_float_betas if betas else _one_float_momentum
    return _FLOATS_BETAS if betas else _FLOATS_MOMENTUM


# One float group: the training loop's common case, written without a loop.
def _one_float_momentum(groups: list, lr: Sequence[float], mom: Any, j: int) -> list:
    g = groups[0]
    v = lr[j]
    g["lr"] = v
    if mom is not None:
        g["momentum"] = mom[j]
    return [v]


def _one_float_betas(groups: list, lr: Sequence[float], mom: Any, j: int) -> list:
    g = groups[0]
    v = lr[j]
    g["lr"] = v
    if mom is not None:
        g["betas"] = (mom[j], *g["betas"][1:])
    return [v]


def _set_floats(groups: list, lr: Sequence[float], j: int) -> list:
    row = lr[j : j + len(groups)]
    row = row.tolist() if type(row) is array else list(row)
    for g, v in zip(groups, row):
        g["lr"] = v
    return row


def _fill_tensors(groups: list, lr: Sequence[float], j: int) -> list:
    for g, v in zip(groups, lr[j : j + len(groups)]):
        x = g["lr"]
        if isinstance(x, Tensor):
            x.fill_(v)
        else:
            g["lr"] = v
    return [x.clone() if isinstance(x, Tensor) else x for x in (g["lr"] for g in groups)]


def _set_momentum(groups: list, mom: Sequence[float], j: int) -> None:
    for g, m in zip(groups, mom[j : j + len(groups)]):
        g["momentum"] = m


def _set_betas(groups: list, mom: Sequence[float], j: int) -> None:
    for g, m in zip(groups, mom[j : j + len(groups)]):
        g["betas"] = (m, *g["betas"][1:])


def _writer(write_lr: Callable, write_mom: Callable) -> RowWriter:
    def write(groups: list, lr: Sequence[float], mom: Any, j: int) -> list:
        last = write_lr(groups, lr, j)
        if mom is not None:
            write_mom(groups, mom, j)
        return last

    return write


def write_reduced(groups: list, lr: Sequence[float], now: Sequence[float]) -> None:
    """ReduceLROnPlateau's write: only the lrs that changed (torch writes a reduced lr
    and leaves the others as they are, an int lr included); a tensor lr in place."""
    for g, new, old in zip(groups, lr, now):
        if new != old:
            x = g["lr"]
            if isinstance(x, Tensor):
                x.fill_(new)
            else:
                g["lr"] = new


_FLOATS_MOMENTUM = _writer(_set_floats, _set_momentum)
_FLOATS_BETAS = _writer(_set_floats, _set_betas)
_TENSOR_MOMENTUM = _writer(_fill_tensors, _set_momentum)
_TENSOR_BETAS = _writer(_fill_tensors, _set_betas)


def write_group_keys(optimizer: Any, keys: list | None) -> None:
    """The keys torch's constructor writes besides lr (initial_lr, max_lr, min_lr,
    base/max_momentum, momentum or betas[0]), as the server's simulation left them.
    A key that already holds that value is left alone (a tensor stays a tensor)."""
    if not keys:
        return
    for group, written in zip(optimizer.param_groups, keys):
        for key, value in written.items():
            if key == "lr":
                continue
            if key == "betas":
                if "betas" in group and group_value(group["betas"][0]) != float(value[0]):
                    group["betas"] = (float(value[0]), *group["betas"][1:])
                continue
            if key in group and group_value(group[key]) == float(value):
                continue
            group[key] = float(value)
