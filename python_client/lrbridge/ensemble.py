"""Snapshot ensembles (Huang et al. 2017, "Snapshot Ensembles: Train 1, get M for free").

One training run with a cyclic schedule leaves a model snapshot at the end of
every cycle (``lrbridge.callbacks.SnapshotSaver``). The ensemble prediction
is the mean of the softmax outputs of the last ``m`` snapshots:

    p(y | x) = (1/m) · Σ_{i = M-m+1..M} softmax(f_i(x))

This module holds no schedule math; it only loads snapshots into a model and
averages probabilities.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn


def _state_dicts(snapshots: Any) -> list[dict]:
    """A SnapshotSaver (anything with ``.state_dicts()``) or a sequence of state_dicts."""
    if hasattr(snapshots, "state_dicts"):
        return list(snapshots.state_dicts())
    return list(snapshots)


class SnapshotEnsemble:
    """Average the softmax of the last ``m`` snapshots.

    ``model``: a model instance (used as the template; its own weights are
    never changed: a private copy is loaded with each snapshot) or a
    zero-argument factory returning a fresh model.
    ``snapshots``: a ``SnapshotSaver`` or a sequence of state_dicts, oldest first.
    ``m``: how many of the newest snapshots to average (default: all).

    Predictions run in eval mode under ``torch.no_grad()``. ``softmax_dim`` is
    the class dimension of the model output (default the last one).
    """

    def __init__(
        self,
        model: "nn.Module | Callable[[], nn.Module]",
        snapshots: "Any | Sequence[dict]",
        m: int | None = None,
        *,
        softmax_dim: int = -1,
    ) -> None:
        states = _state_dicts(snapshots)
        if not states:
            raise ValueError("lrbridge: SnapshotEnsemble needs at least one snapshot")
        if m is None:
            m = len(states)
        if not 1 <= m <= len(states):
            raise ValueError(f"lrbridge: m must be in [1, {len(states)}] (the snapshots available), got {m}")
        self.m = m
        self.softmax_dim = softmax_dim
        self._states = states[-m:]
        self._worker = self._private_model(model)

    @staticmethod
    def _private_model(model: "nn.Module | Callable[[], nn.Module]") -> nn.Module:
        if isinstance(model, nn.Module):
            return copy.deepcopy(model)  # the caller's model keeps its weights
        if callable(model):
            built = model()
            if not isinstance(built, nn.Module):
                raise TypeError(f"lrbridge: model factory returned {type(built).__name__}, not an nn.Module")
            return built
        raise TypeError(f"lrbridge: model must be an nn.Module or a factory, got {type(model).__name__}")

    def __len__(self) -> int:
        return self.m

    def member_probas(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Softmax output of each of the m snapshots, oldest first."""
        out = []
        was_training = self._worker.training
        self._worker.eval()
        try:
            with torch.no_grad():
                for state in self._states:
                    self._worker.load_state_dict(state)
                    out.append(torch.softmax(self._worker(x), dim=self.softmax_dim))
        finally:
            self._worker.train(was_training)
        return out

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of the snapshots' softmax outputs."""
        probas = self.member_probas(x)
        return torch.stack(probas).mean(dim=0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict_proba(x)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class indices of the averaged probabilities."""
        return self.predict_proba(x).argmax(dim=self.softmax_dim)


def ensemble_accuracy(ensemble: SnapshotEnsemble, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Top-1 accuracy of the ensemble over (x, y) batches."""
    correct = total = 0
    for x, y in batches:
        correct += int((ensemble.predict(x) == y).sum())
        total += int(y.numel())
    return correct / max(1, total)
