"""Training-loop helpers driven by what the schedule server reports.

``SnapshotSaver`` keeps model snapshots at the cycle ends of a cyclic
schedule (snapshot ensembles, Huang et al. 2017). The cycle boundaries come
from the server with the schedule (``scheduler.cycle_starts(lo, hi)``), so
the saver and the lr values agree bit for bit on where a cycle ends; there is
no cycle arithmetic here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

# Boundaries are asked for this many steps at a time (one request per chunk).
_LOOKAHEAD = 4096


@dataclass(frozen=True)
class Snapshot:
    """One saved model: taken after ``step`` scheduler steps, at the end of cycle ``cycle``."""

    cycle: int
    step: int
    state: dict | None = None  # in memory
    path: Path | None = None  # on disk

    def load(self) -> dict:
        if self.state is not None:
            return self.state
        return torch.load(self.path, map_location="cpu", weights_only=True)


def _copy_state(model: nn.Module) -> dict:
    """A detached copy of the model's state_dict (later training does not change it)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class SnapshotSaver:
    """Save ``model`` at each cycle end the scheduler reports; keep the newest ``keep``.

    Call ``saver.step()`` right after every ``scheduler.step()``. When the
    scheduler has just entered a new cycle (row ``last_epoch`` is a cycle
    start, step > 0) the weights in hand are those at the end of the previous
    cycle, and they are saved. ``saver.save_now()`` adds a snapshot by hand
    (the end of training, when the last cycle ends with the run).

    ``dir=None`` keeps snapshots in memory (detached tensor copies); a
    directory keeps them as ``snapshot_<cycle>_<step>.pt`` files and deletes
    the files it drops.

    The scheduler must offer ``cycle_starts(lo, hi) -> list[int]`` (the steps
    in [lo, hi) where a cycle starts), as ``lrbridge.Schedule`` does for
    cyclic specs and ``lrbridge.lr_scheduler``'s ``CyclicLR`` and
    ``CosineAnnealingWarmRestarts`` do.
    """

    def __init__(self, scheduler: Any, model: nn.Module, keep: int = 5, dir: "str | os.PathLike | None" = None):
        if not callable(getattr(scheduler, "cycle_starts", None)):
            raise TypeError(
                f"lrbridge: {type(scheduler).__name__} does not report cycle boundaries "
                "(no cycle_starts method); use lrbridge.Schedule with a cyclic spec, or "
                "lrbridge.lr_scheduler.CyclicLR / CosineAnnealingWarmRestarts"
            )
        if keep < 1:
            raise ValueError(f"lrbridge: keep must be >= 1, got {keep}")
        self.scheduler = scheduler
        self.model = model
        self.keep = keep
        self.dir = Path(dir) if dir is not None else None
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
        self.snapshots: list[Snapshot] = []
        self.cycles_ended = 0
        self._known_lo = 0
        self._known_hi = 0
        self._starts: set[int] = set()

    # -- boundaries --------------------------------------------------------

    def _is_cycle_start(self, step: int) -> bool:
        if not self._known_lo <= step < self._known_hi:
            self._known_lo, self._known_hi = step, step + _LOOKAHEAD
            self._starts = set(self.scheduler.cycle_starts(self._known_lo, self._known_hi))
        return step in self._starts

    # -- saving --------------------------------------------------------------

    def step(self) -> Snapshot | None:
        """After ``scheduler.step()``: snapshot if a cycle just ended. Returns the snapshot, if any."""
        step = int(self.scheduler.last_epoch)
        if step > 0 and self._is_cycle_start(step):
            return self._save(step)
        return None

    def save_now(self) -> Snapshot:
        """Snapshot the model as it is (e.g. at the end of training)."""
        return self._save(int(self.scheduler.last_epoch))

    def _save(self, step: int) -> Snapshot:
        if self.snapshots and self.snapshots[-1].step == step:
            return self.snapshots[-1]  # already taken at this step
        cycle = self.cycles_ended
        self.cycles_ended += 1
        state = _copy_state(self.model)
        if self.dir is None:
            snap = Snapshot(cycle, step, state=state)
        else:
            path = self.dir / f"snapshot_{cycle:04d}_{step:08d}.pt"
            torch.save(state, path)
            snap = Snapshot(cycle, step, path=path)
        self.snapshots.append(snap)
        self._drop_old()
        return snap

    def _drop_old(self) -> None:
        while len(self.snapshots) > self.keep:
            old = self.snapshots.pop(0)
            if old.path is not None:
                old.path.unlink(missing_ok=True)

    # -- reading -------------------------------------------------------------

    def state_dicts(self) -> list[dict]:
        """The kept snapshots' state_dicts, oldest first (what SnapshotEnsemble takes)."""
        return [s.load() for s in self.snapshots]

    def __len__(self) -> int:
        return len(self.snapshots)
