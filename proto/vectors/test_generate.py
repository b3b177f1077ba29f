"""Checks on the conformance vector generator and the vectors it committed."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("lrbridge_vector_generate", HERE / "generate.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)

# The torch family as the server's published grammar lists it.
ALL_SCHEDULERS = {
    name
    for name, t in json.loads((HERE.parent / "schema.json").read_text())["types"].items()
    if t["family"] == "torch"
}


def committed(family: str) -> str:
    return (generate.OUT_DIR / f"{family}.json").read_text()


def all_cases() -> list[tuple[str, dict]]:
    return [
        (family, case)
        for family in generate.FAMILIES
        for case in json.loads(committed(family))["cases"]
    ]


def spec_types(spec: dict) -> set[str]:
    kinds = {spec["type"]}
    for child in spec.get("schedulers", []):
        kinds |= spec_types(child)
    return kinds


# --- the committed files really are torch's output --------------------------


@pytest.mark.parametrize("family", list(generate.FAMILIES))
def test_regenerating_equals_committed_file(family: str) -> None:
    assert generate.render_family(family) == committed(family)


def test_files_name_torch_2_13() -> None:
    for family in generate.FAMILIES:
        assert json.loads(committed(family))["torch"].startswith("2.13.")


def test_no_stray_files() -> None:
    on_disk = {p.stem for p in generate.OUT_DIR.glob("*.json")}
    assert on_disk == set(generate.FAMILIES)


# --- coverage ----------------------------------------------------------------


def test_case_counts() -> None:
    cases = all_cases()
    constructor_errors = [c for _, c in cases if c.get("error", {}).get("when") == "construct"]
    assert len(cases) >= 300
    assert len(constructor_errors) >= 40


def test_every_scheduler_class_present() -> None:
    assert set(generate.FAMILIES) == ALL_SCHEDULERS
    seen = set().union(*(spec_types(c["spec"]) for _, c in all_cases()))
    assert seen == ALL_SCHEDULERS


def test_names_unique_within_family() -> None:
    for family in generate.FAMILIES:
        names = [c["name"] for c in json.loads(committed(family))["cases"]]
        assert len(names) == len(set(names)), family


# --- every case well-formed -------------------------------------------------


def assert_rows(rows: list, steps: int, groups: int) -> None:
    assert len(rows) == steps + 1
    for row in rows:
        assert len(row) == groups
        assert all(isinstance(v, float) and math.isfinite(v) for v in row)


def test_cases_well_formed() -> None:
    for family, case in all_cases():
        where = f"{family}/{case['name']}"
        assert case["spec"]["type"] == family, where
        assert ("error" in case) != ("expect" in case), where
        groups = len(case["groups"])
        assert groups >= 1, where
        if "metrics" in case:
            assert family == "ReduceLROnPlateau", where
        if "error" in case:
            error = case["error"]
            assert error["when"] in ("construct", "step"), where
            assert isinstance(error["type"], str) and isinstance(error["message"], str), where
            assert ("at_step" in error) == (error["when"] == "step"), where
            continue
        calls = case.get("metrics", case.get("epochs"))
        if calls is not None and "error_at_step" not in case:
            assert case["steps"] == len(calls), where
        expect = case["expect"]
        assert_rows(expect["lr"], case["steps"], groups)
        if generate.writes_momentum(case["spec"]):
            assert_rows(expect["momentum"], case["steps"], groups)
        else:
            assert expect["momentum"] is None, where
        if "error_at_step" in case:
            assert case["error_at_step"]["at_step"] == case["steps"] + 1, where


def test_one_cycle_final_step_bounces_up() -> None:
    # The documented torch quirk the TS side must reproduce: step total_steps is allowed.
    case = next(c for f, c in all_cases() if c["name"] == "tiny_5_two_cos")
    lrs = [row[0] for row in case["expect"]["lr"]]
    assert case["steps"] == 5
    assert lrs[-1] > lrs[-2]


def test_one_cycle_value_at_zero_float_detail() -> None:
    case = next(c for f, c in all_cases() if f == "OneCycleLR" and c["name"] == "max_lr_1_value_at_0")
    assert case["expect"]["lr"][0] == [0.040000000000000036]


# --- the expression evaluator -------------------------------------------------


@pytest.mark.parametrize(
    "source, value, expected",
    [
        ("0.95 ** epoch", 3, 0.95**3),
        ("min(1, (epoch + 1) / 10)", 4, 0.5),
        ("1.0 if epoch < 5 else 0.1", 7, 0.1),
        ("0 < epoch <= 5", 5, True),
        ("(epoch > 2 and epoch < 8) or 0.5", 1, 0.5),
        ("epoch // 3 + epoch % 3", 7, 3),
        ("-epoch + abs(-2) + floor(2.7) + ceil(0.1)", 1, 4),
        ("cos(pi) + log(e)", 0, 0.0),
        ("sqrt(exp(0)) + log10(100) + log2(8) + sin(0) + tan(0) + tanh(0)", 0, 6.0),
        ("not epoch", 0, True),
    ],
)
def test_evaluator_uses_python_semantics(source: str, value: float, expected: object) -> None:
    assert generate.compile_expression(source, "epoch")(value) == expected


@pytest.mark.parametrize(
    "source",
    [
        "lr",  # unknown name
        "x",  # the other variable
        "epoch.real",  # attribute access
        "__import__('os')",  # non-whitelisted call
        "round(epoch)",  # builtin not on the list
        "math.cos(epoch)",  # attribute call
        "(lambda: 1)()",
        "[1, 2][0]",  # subscripts and lists
        "'a'",  # strings
        "min(*[1, 2])",  # starred
        "max(epoch, default=1)",  # keywords
        "epoch if True",  # syntax error
        "epoch; 1",
        "(y := 2)",
        "epoch << 1",  # bit operators
    ],
)
def test_evaluator_rejects(source: str) -> None:
    with pytest.raises(generate.UnsafeExpression):
        generate.compile_expression(source, "epoch")


def test_scale_fn_variable_is_x() -> None:
    assert generate.compile_expression("0.5 ** x", "x")(2) == 0.25
    with pytest.raises(generate.UnsafeExpression):
        generate.compile_expression("0.5 ** epoch", "x")


def test_committed_expressions_compile() -> None:
    def expressions(spec: dict):
        for key, var in (("lr_lambda", "epoch"), ("scale_fn", "x")):
            value = spec.get(key)
            if value is not None:
                yield from ((v, var) for v in (value if isinstance(value, list) else [value]))
        for child in spec.get("schedulers", []):
            yield from expressions(child)

    found = [(src, var) for _, c in all_cases() for src, var in expressions(c["spec"])]
    assert len(found) > 20
    for src, var in found:
        generate.compile_expression(src, var)


# --- scenarios ----------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(generate.SCENARIOS))
def test_regenerating_scenarios_equals_committed_file(kind: str) -> None:
    assert generate.render_scenarios(kind) == (generate.SCENARIO_DIR / f"{kind}.json").read_text()


def test_scenarios_cover_every_class_in_both_resume_orders_and_both_dtypes() -> None:
    names = {kind: {c["name"] for c in json.loads((generate.SCENARIO_DIR / f"{kind}.json").read_text())["cases"]}
             for kind in generate.SCENARIOS}
    assert {p.stem for p in generate.SCENARIO_DIR.glob("*.json")} == set(generate.SCENARIOS)
    for cls in generate.ALL_CLASSES:
        for order in ("usual", "other"):
            assert f"{cls}_{order}_order" in names["resume"], (cls, order)
        for dtype in ("float32", "float64"):
            assert f"{cls}_{dtype}" in names["dtype"], (cls, dtype)
