"""The demo's training run, lrbridge against torch's own scheduler: same seed, same weights.

Runs examples/train_digits.py's `train()` on CPU with the embedded server
(no LRBRIDGE_ENDPOINT): the path a user gets with no configuration.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("train_digits", ROOT / "examples" / "train_digits.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_digits"] = module
    spec.loader.exec_module(module)
    return module


def max_weight_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    return max((pa[k] - pb[k]).abs().max().item() for k in pa)


@pytest.mark.parametrize("schedule", ["OneCycleLR", "CosineAnnealingLR", "CyclicLR"])
def test_training_ends_with_torchs_weights(demo, schedule):
    cpu = torch.device("cpu")
    bridged = demo.train(schedule, epochs=3, seed=1, device=cpu, progress=False)
    native = demo.train(schedule, native=True, epochs=3, seed=1, device=cpu, progress=False)

    assert len(bridged.lrs) == len(native.lrs) == 3 * 45
    worst_lr = max(abs(x - y) / max(abs(y), 1e-300) for x, y in zip(bridged.lrs, native.lrs))
    assert worst_lr <= 1e-12
    assert max_weight_diff(bridged.model, native.model) <= 1e-6
    # The run learned something: a schedule that silently stayed at 0 would not.
    assert bridged.rows[-1][2] > 0.5


def test_spec_file_schedule(demo, tmp_path):
    spec = {"type": "warmup", "steps": 20, "then": {"type": "rex", "total_steps": 115}}
    path = tmp_path / "rex.json"
    path.write_text(json.dumps(spec))
    run = demo.train(str(path), epochs=3, seed=0, device=torch.device("cpu"), progress=False)
    # Multipliers of the optimizer's lr (0.1): a linear warmup from 0, then REX decay to 0.
    assert run.lrs[0] == 0.0
    assert run.lrs[20] == pytest.approx(0.1, rel=1e-12)
    assert max(run.lrs) == pytest.approx(0.1, rel=1e-12)
    assert run.lrs[-1] < 0.01
