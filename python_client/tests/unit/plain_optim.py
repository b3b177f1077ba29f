"""torch's SGD and Adam for the unit tests, with their bookkeeping in plain Python.

torch wraps ``add_param_group``, ``state_dict`` and ``load_state_dict`` in
``torch._disable_dynamo``, whose first call imports ``torch._dynamo``: a few
seconds, more than all the unit tests together. The client logic under test
only reads and writes ``param_groups``; these subclasses keep torch's
constructors, defaults and validation and replace the three methods with what
they do for groups of plain parameters. The tests against a real server use
torch's optimizers unchanged.
"""

from __future__ import annotations

import copy

import torch


class _PlainBookkeeping:
    param_groups: list[dict]
    defaults: dict

    def add_param_group(self, param_group: dict) -> None:
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, torch.Tensor) else list(params)
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self.param_groups.append(group)

    def state_dict(self) -> dict:
        index = 0
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = list(range(index, index + len(group["params"])))
            index += len(group["params"])
            groups.append(packed)
        return {"state": {}, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        saved = copy.deepcopy(state_dict["param_groups"])
        assert len(saved) == len(self.param_groups), "loaded state dict has a different number of parameter groups"
        for group, loaded in zip(self.param_groups, saved):
            group.update({k: v for k, v in loaded.items() if k != "params"})


class SGD(_PlainBookkeeping, torch.optim.SGD):
    pass


class Adam(_PlainBookkeeping, torch.optim.Adam):
    pass
