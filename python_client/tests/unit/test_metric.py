"""The metric-driven base (``lrbridge._metric.MetricDriven``) on an in-process stand-in
for the server's ``metric`` reply: what state each step sends and keeps."""

from __future__ import annotations

import plain_optim
import torch

from lrbridge._metric import MetricDriven


class Halving:
    """Answers a metric step as a plateau rule with patience 0 would: halve every lr on a worse metric."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def metric(self, opened, state, value):
        self.sent.append({"state": state, "value": value})
        worse = state["best"] is not None and value >= state["best"]
        lr = [v / 2 for v in state["lr"]] if worse else list(state["lr"])
        best = state["best"] if worse else value
        return {"lr": lr, "momentum": None, "state": {"lr": lr, "best": best}}


class Opened:
    state = {"lr": [0.1, 0.2], "best": None}


class Stepper(MetricDriven):
    __slots__ = ("optimizer", "_opened", "_client", "_metric_state")

    def __init__(self, client, optimizer) -> None:
        self._client, self.optimizer, self._opened = client, optimizer, Opened()
        self._metric_begin(self._opened)

    def _client_for(self):
        return self._client


def groups(lrs, tensor=False):
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": torch.tensor(v) if tensor else v} for v in lrs]
    return plain_optim.SGD(params, lr=lrs[0])


def test_each_step_sends_the_kept_state_and_keeps_the_reply():
    client = Halving()
    s = Stepper(client, groups([0.1, 0.2]))
    assert s._metric_step(1.0)["lr"] == [0.1, 0.2]
    assert s._metric_step(2)["lr"] == [0.05, 0.1]
    assert client.sent[1] == {"state": {"lr": [0.1, 0.2], "best": 1.0}, "value": 2.0}
    assert s.metric_state == {"lr": [0.05, 0.1], "best": 1.0}
    s.metric_state["best"] = 9.0  # a copy: the carried state is not the caller's to change
    assert s._metric_state["best"] == 1.0


def test_a_step_starts_from_the_lrs_as_they_are_now():
    client = Halving()
    opt = groups([0.1, 0.2], tensor=True)
    s = Stepper(client, opt)
    s._metric_step(1.0)
    opt.param_groups[0]["lr"].fill_(0.5)  # edited by hand between steps
    s._metric_step(2.0)
    assert client.sent[1]["state"]["lr"] == [0.5, float(torch.tensor(0.2))]


def test_a_state_without_lr_is_sent_as_kept():
    client = Halving()
    s = Stepper(client, groups([0.1]))
    s._metric_state = {"step": 3}
    client.metric = lambda opened, state, value: {"lr": [0.1], "momentum": None, "state": {"step": state["step"] + 1}}
    s._metric_step(0.5)
    assert s._metric_state == {"step": 4}
