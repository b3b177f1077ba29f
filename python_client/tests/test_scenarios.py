"""The drop-in classes replay what real scripts do around a scheduler, as torch 2.13 did.

proto/vectors/scenarios/*.json were recorded by running each scenario on
torch's classes (proto/vectors/generate.py). Here the same actions run on
lrbridge.lr_scheduler against the real server: resuming in both orders,
schedulers stacked on one optimizer, composites' children, add_param_group,
MultiplicativeLR.step(0), float32 and float64 tensor lrs, T_cur/T_i. Every
value the script reads must match (1e-12 relative; float32 lrs exactly), and
where torch raises, the drop-in raises the same type with the same text.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from lrbridge import lr_scheduler as B

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("lrbridge_vector_generate", ROOT / "proto" / "vectors" / "generate.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)

SCENARIO_DIR = ROOT / "proto" / "vectors" / "scenarios"
REL = 1e-12


def _cases() -> list:
    out = []
    for path in sorted(SCENARIO_DIR.glob("*.json")):
        for case in json.loads(path.read_text())["cases"]:
            out.append(pytest.param(case, id=f"{path.stem}:{case['name']}"))
    return out


def _close(got, want, exact: bool, where: str) -> None:
    if isinstance(want, dict):
        assert set(got) == set(want), where
        for k in want:
            _close(got[k], want[k], exact, f"{where}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _close(g, w, exact, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        if exact:
            assert got == want, f"{where}: got {got!r}, torch {want!r}"
        else:
            assert math.isclose(got, want, rel_tol=REL, abs_tol=1e-15), f"{where}: got {got!r}, torch {want!r}"
    else:
        assert got == want, f"{where}: got {got!r}, torch {want!r}"


def _scheduler_of(case: dict, action: list) -> object:
    """The torch class of the scheduler an action names."""
    return getattr(generate.sched, case["specs"][action[1]]["type"])


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", _cases())
def test_scenario_matches_torch(case, server):
    # 1e-12 relative already pins a float32 value to its bits (its spacing is ~6e-8);
    # all-float32 cases are compared exactly all the same.
    exact = case.get("dtype") == "float32"
    error = case.get("error")
    if error is None:
        records = generate.play_scenario(case, B, server=server)
    else:
        ok = dict(case, actions=case["actions"][: error["at_action"]])
        records = generate.play_scenario(ok, B, server=server)
        with pytest.raises(Exception) as raised:
            generate.play_scenario(dict(case, actions=case["actions"][: error["at_action"] + 1]), B, server=server)
        assert type(raised.value).__name__ == error["type"]
        assert str(raised.value) == error["message"]
    assert len(records) == len(case["expect"])
    for k, (got, want) in enumerate(zip(records, case["expect"])):
        if "last_epoch" in got and "last_epoch" not in want:
            # torch's ChainedScheduler has no last_epoch; the drop-in keeps one (its row).
            assert _scheduler_of(case, case["actions"][k]).__name__ == "ChainedScheduler"
            del got["last_epoch"]
        _close(got, want, exact, f"after action {k} {case['actions'][k]}")
