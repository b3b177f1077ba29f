"""The committed recipe vectors are what generate_recipes.py produces now.

HF vectors come from the real transformers library (a dev dependency).
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate_recipes as gen  # noqa: E402


@pytest.mark.parametrize("name,build", [("fastai.json", gen.fastai_vectors), ("timm.json", gen.timm_vectors),
                                        ("misc.json", gen.misc_vectors)])
def test_transcribed_vectors_are_current(name, build):
    assert (HERE / "recipes" / name).read_text() == gen.dump(name, build())


def test_hf_vectors_match_transformers():
    fresh = json.loads(gen.dump("hf", gen.hf_vectors()))
    committed = json.loads((HERE / "recipes" / "hf.json").read_text())
    assert [c["name"] for c in fresh["cases"]] == [c["name"] for c in committed["cases"]]
    for a, b in zip(fresh["cases"], committed["cases"]):
        assert a["spec"] == b["spec"]
        flat = lambda rows: [v for row in rows for v in row]  # noqa: E731
        assert flat(a["lr"]) == pytest.approx(flat(b["lr"]), rel=1e-12, abs=1e-15), a["name"]


def test_fastai_transcription_uses_float32_boundaries():
    # fastai's phase boundaries are a float32 tensor: positions differ from float64 arithmetic
    f = gen.combined_cos(0.3, 0.0, 1.0, 0.0)
    exact = gen.sched_cos(0.0, 1.0, (0.1 - 0.0) / 0.3)
    assert f(0.1) != exact and abs(f(0.1) - exact) < 1e-6


def test_fractal_permutation_is_the_papers_interlace():
    T = 8
    sched = gen.fractal_schedule(0.1, 1.0, T)
    steps = 1.0 / ((1.1 / 2) - (0.9 / 2) * np.cos((np.arange(T) + 0.5) / T * np.pi))
    order = [int(np.argmin(abs(steps - v))) for v in sched]
    assert order == [0, 7, 3, 4, 1, 6, 2, 5]
