"""Every config torch 2.13 rejects, through the drop-in classes: torch's exception type.

The conformance vectors (proto/vectors/torch/*.json) record what torch raises
for each rejected config, at construction or at some step. The drop-in
must raise the same type (a SpecError is a ValueError, and also torch's
type when torch raises another) at the same point, with torch's text.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from lrbridge import lr_scheduler as B

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("lrbridge_vector_generate", ROOT / "proto" / "vectors" / "generate.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)


def _rejected() -> list:
    out = []
    for path in sorted((ROOT / "proto" / "vectors" / "torch").glob("*.json")):
        for case in json.loads(path.read_text())["cases"]:
            if "error" in case:
                out.append(pytest.param(case, id=f"{path.stem}:{case['name']}"))
    return out


REJECTED = _rejected()


def test_all_rejected_configs_are_here():
    assert len(REJECTED) == 58


def _run(case: dict, server: str) -> tuple[str, int]:
    """Construct and step like the generator did; returns (when, step) of the exception."""
    optimizer = generate.build_optimizer(case["groups"])
    scheduler = generate.build_scheduler(case["spec"], optimizer, B, server=server)
    for k, args in enumerate(generate.step_calls(case), start=1):
        try:
            scheduler.step(*args)
        except Exception as exc:
            exc.at_step = k  # type: ignore[attr-defined]
            raise
    raise AssertionError("no exception")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", REJECTED)
def test_drop_in_raises_torchs_exception_type(case, server):
    error = case["error"]
    with pytest.raises(Exception) as raised:
        _run(case, server)
    exc = raised.value
    assert type(exc).__name__ == error["type"] or error["type"] in {t.__name__ for t in type(exc).__mro__}, (
        f"torch raised {error['type']}: {error['message']}; lrbridge raised {type(exc).__name__}: {exc}"
    )
    assert str(exc) == error["message"]
    if error["when"] == "step":
        assert exc.at_step == error["at_step"]  # accepted, then refused at torch's step
    elif error["when"] == "construct":
        assert not hasattr(exc, "at_step")
