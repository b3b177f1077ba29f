"""Metric-driven schedules: ReduceLROnPlateau, a metric ``Schedule`` (a plateau
rule), and the LR range test (``find_lr``).

Their values depend on the metrics seen, so the server cannot prefetch them:
each step is one ``metric`` round trip. The server keeps nothing between
steps; the state it needs (best, bad epochs, the smoothed losses, ...) is
opaque to the client, carried here in ``_metric_state`` and saved in
``state_dict()``. A state that holds ``lr`` starts the step from the groups'
lrs as they are now, so a hand edit counts (as it does in torch).
"""

from __future__ import annotations

import copy
from typing import Any

from ._row_writer import group_value


class MetricDriven:
    """The metric state and its round trip, shared by the metric-driven schedules.

    A subclass has ``optimizer``, ``_opened`` (the open spec) and ``_client_for()``;
    it calls ``_metric_begin(opened)`` once opened, then ``_metric_step(value)``
    per step and applies the reply's ``lr`` (and ``momentum``) as it writes lrs.
    """

    __slots__ = ()

    def _metric_begin(self, opened: Any) -> None:
        self._metric_state = opened.state

    def _metric_step(self, value: Any) -> dict:
        """Send one metric; keep the server's new state; return its reply (lr, momentum, state)."""
        state = self._metric_state or {}
        if "lr" in state:
            state = {**state, "lr": [group_value(g["lr"]) for g in self.optimizer.param_groups]}
        reply = self._client_for().metric(self._opened, state, float(value))
        self._metric_state = reply["state"]
        return reply

    @property
    def metric_state(self) -> dict | None:
        """The server's state of the metric-driven spec (opaque; carried by the client)."""
        return copy.deepcopy(self._metric_state)
