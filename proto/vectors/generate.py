"""Run real torch over every conformance config and write the expected values.

Usage: `make vectors` (or `.venv/bin/python proto/vectors/generate.py`).
Writes `proto/vectors/torch/<SchedulerClass>.json`, one file per top-level
scheduler family. Output is deterministic: the same torch gives byte-identical
files, so `git diff` shows exactly what a torch upgrade changed.

The configs are the `*_cases()` builder functions below; the rest is
plumbing from a JSON spec to torch objects. Case format: README.md.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch.optim import lr_scheduler as sched

OUT_DIR = Path(__file__).resolve().parent / "torch"
TORCH_SERIES = "2.13"

# ---------------------------------------------------------------------------
# Safe expression evaluator: lr_lambda / scale_fn arrive as strings in specs.
# Only arithmetic, comparisons, boolean ops, conditionals, one variable, a few
# math functions and constants. Evaluated by walking the AST (never `eval`).
# ---------------------------------------------------------------------------

SAFE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "floor": math.floor,
    "ceil": math.ceil,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "cos": math.cos,
    "sin": math.sin,
    "tan": math.tan,
    "tanh": math.tanh,
}
SAFE_CONSTANTS = {"pi": math.pi, "e": math.e}

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Not: operator.not_}
_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


class UnsafeExpression(ValueError):
    """The expression uses something outside the allowed subset."""


def _check(node: ast.AST, variable: str) -> None:
    """Reject any node outside the whitelist, before anything is evaluated."""
    if isinstance(node, ast.Expression):
        _check(node.body, variable)
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, variable)
        _check(node.right, variable)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _check(node.operand, variable)
    elif isinstance(node, ast.BoolOp) and isinstance(node.op, (ast.And, ast.Or)):
        for value in node.values:
            _check(value, variable)
    elif isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        for sub in [node.left, *node.comparators]:
            _check(sub, variable)
    elif isinstance(node, ast.IfExp):
        for sub in (node.test, node.body, node.orelse):
            _check(sub, variable)
    elif isinstance(node, ast.Constant):
        # bool is an int subclass; strings, bytes, None are not numbers.
        if not isinstance(node.value, (int, float)):
            raise UnsafeExpression(f"constant {node.value!r} is not a number")
    elif isinstance(node, ast.Name):
        if node.id != variable and node.id not in SAFE_CONSTANTS:
            raise UnsafeExpression(f"unknown name {node.id!r}")
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in SAFE_FUNCTIONS:
            raise UnsafeExpression(f"call to {ast.unparse(node.func)!r} is not allowed")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise UnsafeExpression("keyword or starred arguments are not allowed")
        for arg in node.args:
            _check(arg, variable)
    else:
        raise UnsafeExpression(f"{type(node).__name__} is not allowed")


def _evaluate(node: ast.AST, env: dict[str, Any]) -> Any:
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, env), _evaluate(node.right, env))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, env))
    if isinstance(node, ast.BoolOp):
        # Python semantics: short-circuit, return the deciding operand.
        result = None
        for value in node.values:
            result = _evaluate(value, env)
            if isinstance(node.op, ast.And) and not result:
                return result
            if isinstance(node.op, ast.Or) and result:
                return result
        return result
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, env)
        for op, comparator in zip(node.ops, node.comparators):
            right = _evaluate(comparator, env)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        branch = node.body if _evaluate(node.test, env) else node.orelse
        return _evaluate(branch, env)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.Call):
        return SAFE_FUNCTIONS[node.func.id](*(_evaluate(a, env) for a in node.args))
    raise UnsafeExpression(f"{type(node).__name__} is not allowed")  # unreachable after _check


def compile_expression(source: str, variable: str) -> Callable[[float], Any]:
    """Turn `"0.95 ** epoch"` into a one-argument callable, or raise UnsafeExpression."""
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise UnsafeExpression(f"not an expression: {source!r}") from exc
    _check(tree, variable)

    def fn(value: float) -> Any:
        return _evaluate(tree.body, {**SAFE_CONSTANTS, variable: value})

    return fn


# ---------------------------------------------------------------------------
# Spec → torch objects
# ---------------------------------------------------------------------------

COMPOSITES = {"SequentialLR", "ChainedScheduler"}


DTYPES = {"float32": torch.float32, "float64": torch.float64}


def build_optimizer(groups: list[dict], dtype: str | None = None) -> torch.optim.Optimizer:
    """One tiny parameter per group; Adam when the groups carry betas, else SGD.
    With `dtype` (or a group's own "dtype"), the lr is a 0-dim tensor of that dtype."""

    def lr(value: float, kind: str | None) -> Any:
        return float(value) if kind is None else torch.tensor(float(value), dtype=DTYPES[kind])

    params = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr(g["lr"], g.get("dtype", dtype))} for g in groups]
    if any("betas" in g for g in groups):
        for p, g in zip(params, groups):
            p["betas"] = tuple(float(b) for b in g["betas"])
        return torch.optim.Adam(params)
    for p, g in zip(params, groups):
        p["momentum"] = float(g.get("momentum", 0.0))
    return torch.optim.SGD(params)


def _callables(value: str | list[str], variable: str) -> Any:
    if isinstance(value, list):
        return [compile_expression(v, variable) for v in value]
    return compile_expression(value, variable)


def build_scheduler(spec: dict, optimizer: torch.optim.Optimizer, module: Any = sched, **extra: Any) -> Any:
    """Construct a scheduler for a spec, children first, as a user would.

    `module` is torch's lr_scheduler, or a drop-in with the same classes
    taking expression strings (then `extra` holds e.g. its `server=`).
    """
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    kind = spec["type"]
    if kind == "SequentialLR":
        children = [build_scheduler(s, optimizer, module, **extra) for s in kwargs.pop("schedulers")]
        return module.SequentialLR(optimizer, schedulers=children, **kwargs, **extra)
    if kind == "ChainedScheduler":
        children = [build_scheduler(s, optimizer, module, **extra) for s in kwargs.pop("schedulers")]
        return module.ChainedScheduler(children, optimizer=optimizer, **kwargs, **extra)
    if module is sched:
        if kind in ("LambdaLR", "MultiplicativeLR") and "lr_lambda" in kwargs:
            kwargs["lr_lambda"] = _callables(kwargs["lr_lambda"], "epoch")
        if kind == "CyclicLR" and kwargs.get("scale_fn") is not None:
            kwargs["scale_fn"] = compile_expression(kwargs["scale_fn"], "x")
    return getattr(module, kind)(optimizer, **kwargs, **extra)


def writes_momentum(spec: dict) -> bool:
    """CyclicLR/OneCycleLR write momentum (or beta1) unless cycle_momentum is off."""
    if spec["type"] in COMPOSITES:
        return any(writes_momentum(s) for s in spec["schedulers"])
    return spec["type"] in ("CyclicLR", "OneCycleLR") and spec.get("cycle_momentum", True)


def read_row(optimizer: torch.optim.Optimizer, key: str) -> list[float]:
    if key == "lr":
        values = [g["lr"] for g in optimizer.param_groups]
    elif key == "betas":
        values = [g["betas"][0] for g in optimizer.param_groups]
    else:
        values = [g["momentum"] for g in optimizer.param_groups]
    rows = [float(v) for v in values]
    if not all(math.isfinite(v) for v in rows):
        raise AssertionError(f"non-finite {key}: {rows}")  # JSON cannot carry it
    return rows


def error_record(exc: BaseException, when: str, at_step: int | None = None) -> dict:
    # KeyError's str() adds quotes; the message users read is args[0].
    message = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
    record = {"type": type(exc).__name__, "message": message, "when": when}
    if at_step is not None:
        record["at_step"] = at_step
    return record


def step_calls(defn: dict) -> list[tuple]:
    """The arguments of each scheduler.step() a case makes: a metric, an epoch, or none."""
    if "metrics" in defn:
        return [(m,) for m in defn["metrics"]]
    if "epochs" in defn:
        return [(e,) for e in defn["epochs"]]
    return [()] * defn["steps"]


def run_case(defn: dict) -> dict:
    """Run one config through torch and return the vector case.

    defn: name, spec, groups, and one of steps / metrics / epochs. With
    `rows_then_error`, a step error after valid rows is recorded as
    `error_at_step` next to the rows (OneCycleLR stepped past total_steps).
    """
    spec, groups = defn["spec"], defn["groups"]
    case: dict[str, Any] = {"name": defn["name"], "spec": spec, "groups": groups}
    for key in ("metrics", "epochs"):
        if key in defn:
            case[key] = defn[key]
    calls = step_calls(defn)

    optimizer = build_optimizer(groups)
    momentum_key = None
    if writes_momentum(spec):
        momentum_key = "betas" if "betas" in optimizer.defaults else "momentum"
    with warnings.catch_warnings():
        # Order / deprecated-epoch warnings are noise here.
        warnings.simplefilter("ignore")
        try:
            scheduler = build_scheduler(spec, optimizer)
        except Exception as exc:  # whatever torch raises is the expected answer
            case["steps"] = 0
            case["error"] = error_record(exc, "construct")
            return case
        lr_rows = [read_row(optimizer, "lr")]
        mom_rows = [read_row(optimizer, momentum_key)] if momentum_key else None
        for k, args in enumerate(calls, start=1):
            try:
                scheduler.step(*args)
            except Exception as exc:
                if defn.get("rows_then_error"):
                    case["error_at_step"] = error_record(exc, "step", k)
                    break
                case["steps"] = len(calls)
                case["error"] = error_record(exc, "step", k)
                return case
            lr_rows.append(read_row(optimizer, "lr"))
            if mom_rows is not None:
                mom_rows.append(read_row(optimizer, momentum_key))
    case["steps"] = len(lr_rows) - 1
    case["expect"] = {"lr": lr_rows, "momentum": mom_rows}
    return case


# ---------------------------------------------------------------------------
# The configs
# ---------------------------------------------------------------------------

G1 = [{"lr": 0.1}]
G2 = [{"lr": 0.1}, {"lr": 0.025}]
G3 = [{"lr": 1.0}, {"lr": 0.3}, {"lr": 0.007}]
SGDM = [{"lr": 0.1, "momentum": 0.9}]
SGDM2 = [{"lr": 0.1, "momentum": 0.9}, {"lr": 0.01, "momentum": 0.5}]
ADAM = [{"lr": 0.001, "betas": [0.9, 0.999]}]
ADAM2 = [{"lr": 0.001, "betas": [0.9, 0.999]}, {"lr": 0.0003, "betas": [0.85, 0.99]}]


def C(name: str, spec: dict, groups: list[dict] = G1, steps: int = 20, **extra: Any) -> dict:
    """A config definition (not yet run)."""
    return {"name": name, "spec": spec, "groups": groups, "steps": steps, **extra}


def lambda_cases() -> list[dict]:
    L = "LambdaLR"
    out = [
        C("exp_decay", {"type": L, "lr_lambda": "0.95 ** epoch"}, steps=30),
        C("warmup_min", {"type": L, "lr_lambda": "min(1, (epoch + 1) / 10)"}, G2, 25),
        C("inverse_sqrt", {"type": L, "lr_lambda": "1 / sqrt(epoch + 1)"}, G2, 40),
        C("cosine_expr", {"type": L, "lr_lambda": "0.5 * (1 + cos(pi * epoch / 20))"}, steps=30),
        C("conditional", {"type": L, "lr_lambda": "1.0 if epoch < 5 else 0.1 if epoch < 10 else 0.01"}, steps=15),
        C("floor_steps", {"type": L, "lr_lambda": "0.5 ** floor(epoch / 4)"}, G3, 20),
        C("per_group_list", {"type": L, "lr_lambda": ["0.9 ** epoch", "1 / (epoch + 1)"]}, G2, 20),
        C("per_group_three", {"type": L, "lr_lambda": ["1", "epoch % 3 + 1", "exp(-0.1 * epoch)"]}, G3, 15),
        C("constant_int", {"type": L, "lr_lambda": "1"}, G2, 5),
        C("tanh_log", {"type": L, "lr_lambda": "tanh(log(epoch + 2))"}, steps=12),
        C("boolean_ops", {"type": L, "lr_lambda": "(epoch > 2 and epoch < 8) or 0.5"}, steps=10),
        C("sgd_momentum_untouched", {"type": L, "lr_lambda": "0.9 ** epoch"}, SGDM2, 10),
        C("adam", {"type": L, "lr_lambda": "1 - epoch / 20"}, ADAM, 20),
        C("epochs_path", {"type": L, "lr_lambda": "0.9 ** epoch"}, G2, epochs=[1, 2, 5, 3, 10]),
        # every operator and function the expression language allows
        C("expr_chained_compare", {"type": L, "lr_lambda": "1.0 if 0 < epoch <= 5 else 0.5"}, steps=8),
        C("expr_not_unary_minus", {"type": L, "lr_lambda": "0.5 if not epoch else -(-1) * 0.9 ** +epoch"}, steps=6),
        C("expr_log10_log2", {"type": L, "lr_lambda": "1 / (1 + log10(epoch + 1) + log2(epoch + 1))"}, steps=10),
        C("expr_ceil_abs", {"type": L, "lr_lambda": "0.5 ** ceil(abs(epoch - 4) / 2)"}, steps=10),
        C("expr_sin_tan_e", {"type": L, "lr_lambda": "1 + 0.5 * sin(epoch) * tan(0.1) / e"}, steps=10),
        C("expr_max_min_nested", {"type": L, "lr_lambda": "max(0.05, min(1.0, (epoch + 1) / 4, 10 / (epoch + 1)))"}, G2, 20),
        C("expr_floor_div_mod", {"type": L, "lr_lambda": "0.9 ** (epoch // 3) * (1 + epoch % 3) / 3"}, steps=10),
        C("expr_or_fallback", {"type": L, "lr_lambda": "(epoch >= 4 and 0.1) or 1"}, steps=7),
        C("expr_int_power", {"type": L, "lr_lambda": "2 ** -epoch"}, steps=8),
        # rejected
        C("list_length_mismatch", {"type": L, "lr_lambda": ["1", "1"]}, G1, 3),
        C("list_length_mismatch_three", {"type": L, "lr_lambda": ["1"]}, G3, 3),
        # accepted, then fails when stepping
        C("divide_by_zero_at_step", {"type": L, "lr_lambda": "1 / (5 - epoch)"}, steps=8),
    ]
    return out


def multiplicative_cases() -> list[dict]:
    M = "MultiplicativeLR"
    return [
        C("constant_095", {"type": M, "lr_lambda": "0.95"}, steps=30),
        C("epoch_dependent", {"type": M, "lr_lambda": "0.99 if epoch < 10 else 0.9"}, G2, 20),
        C("per_group_list", {"type": M, "lr_lambda": ["0.9", "1.01"]}, G2, 25),
        C("per_group_three", {"type": M, "lr_lambda": ["0.5", "1", "1 - 1 / (epoch + 10)"]}, G3, 15),
        C("grows", {"type": M, "lr_lambda": "1.05"}, steps=10),
        C("adam", {"type": M, "lr_lambda": "0.97"}, ADAM2, 12),
        C("list_length_mismatch", {"type": M, "lr_lambda": ["0.9", "0.9", "0.9"]}, G2, 3),
    ]


def step_cases() -> list[dict]:
    S = "StepLR"
    return [
        C("basic", {"type": S, "step_size": 3}, steps=12),
        C("gamma_05", {"type": S, "step_size": 5, "gamma": 0.5}, G2, 25),
        C("step_size_1", {"type": S, "step_size": 1, "gamma": 0.9}, steps=15),
        C("gamma_1", {"type": S, "step_size": 2, "gamma": 1.0}, steps=6),
        C("gamma_above_1", {"type": S, "step_size": 4, "gamma": 2.0}, steps=12),
        C("three_groups", {"type": S, "step_size": 7, "gamma": 0.3}, G3, 30),
        C("long_1000", {"type": S, "step_size": 30, "gamma": 0.97}, steps=1000),
        C("adam", {"type": S, "step_size": 2}, ADAM, 6),
        *[
            C(f"grid_step_size_{n}_gamma_{g}", {"type": S, "step_size": n, "gamma": g}, G2, 12)
            for n in (1, 2, 5)
            for g in (0.5, 0.1)
        ],
        C("gamma_0", {"type": S, "step_size": 2, "gamma": 0.0}, steps=5),
        C("epochs_path", {"type": S, "step_size": 3, "gamma": 0.5}, G2, epochs=[1, 3, 4, 9, 2, 2]),
        C("step_size_0", {"type": S, "step_size": 0}, steps=3),
    ]


def multistep_cases() -> list[dict]:
    M = "MultiStepLR"
    return [
        C("basic", {"type": M, "milestones": [3, 7]}, steps=12),
        C("gamma_05", {"type": M, "milestones": [5, 10, 15], "gamma": 0.5}, G2, 20),
        C("duplicate_milestones", {"type": M, "milestones": [4, 4, 8], "gamma": 0.5}, steps=12),
        C("unsorted_milestones", {"type": M, "milestones": [9, 2, 5], "gamma": 0.5}, G2, 12),
        C("unsorted_duplicates", {"type": M, "milestones": [6, 2, 6, 2, 1]}, steps=10),
        C("milestone_0", {"type": M, "milestones": [0, 3], "gamma": 0.5}, steps=6),
        C("empty_milestones", {"type": M, "milestones": []}, steps=5),
        C("milestone_beyond", {"type": M, "milestones": [100]}, steps=5),
        C("three_groups", {"type": M, "milestones": [2, 4, 6], "gamma": 0.7}, G3, 8),
        C("adam", {"type": M, "milestones": [1, 2]}, ADAM2, 4),
        C("epochs_path", {"type": M, "milestones": [2, 4, 4], "gamma": 0.5}, G2, epochs=[1, 2, 5, 3, 4, 0]),
    ]


def constant_cases() -> list[dict]:
    K = "ConstantLR"
    return [
        C("defaults", {"type": K}, steps=8),
        C("factor_05", {"type": K, "factor": 0.5, "total_iters": 4}, G2, 8),
        C("factor_1", {"type": K, "factor": 1.0, "total_iters": 3}, steps=5),
        C("total_iters_0", {"type": K, "factor": 0.5, "total_iters": 0}, steps=4),
        C("total_iters_1", {"type": K, "factor": 0.25, "total_iters": 1}, G2, 4),
        C("three_groups", {"type": K, "factor": 0.1, "total_iters": 10}, G3, 15),
        C("adam", {"type": K, "factor": 0.3, "total_iters": 2}, ADAM, 4),
        C("epochs_path", {"type": K, "factor": 0.5, "total_iters": 3}, G2, epochs=[1, 3, 2, 5]),
        C("factor_above_1", {"type": K, "factor": 1.5}, steps=3),
        C("factor_negative", {"type": K, "factor": -0.1}, steps=3),
        # accepted; dividing by factor at total_iters fails
        C("factor_0_divides_at_total_iters", {"type": K, "factor": 0.0, "total_iters": 3}, steps=5),
    ]


def linear_cases() -> list[dict]:
    L = "LinearLR"
    return [
        C("defaults", {"type": L}, steps=8),
        C("warmup_01", {"type": L, "start_factor": 0.1, "total_iters": 10}, G2, 15),
        C("decay_to_0", {"type": L, "start_factor": 1.0, "end_factor": 0.0, "total_iters": 10}, steps=14),
        C("decay_to_half", {"type": L, "start_factor": 1.0, "end_factor": 0.5, "total_iters": 7}, G3, 10),
        C("tiny_start", {"type": L, "start_factor": 1e-6, "total_iters": 100}, steps=110),
        C("start_equals_end", {"type": L, "start_factor": 0.5, "end_factor": 0.5, "total_iters": 4}, steps=6),
        C("total_iters_1", {"type": L, "start_factor": 0.2, "total_iters": 1}, G2, 4),
        C("total_iters_0", {"type": L, "start_factor": 0.5, "total_iters": 0}, steps=4),
        C("long_1000", {"type": L, "start_factor": 0.001, "end_factor": 1.0, "total_iters": 1000}, steps=1005),
        C("adam", {"type": L, "start_factor": 0.25, "total_iters": 4}, ADAM, 6),
        C("epochs_path", {"type": L, "start_factor": 0.2, "total_iters": 4}, G2, epochs=[1, 2, 4, 6, 3]),
        C("start_factor_0", {"type": L, "start_factor": 0.0}, steps=3),
        C("start_factor_above_1", {"type": L, "start_factor": 1.2}, steps=3),
        C("end_factor_above_1", {"type": L, "end_factor": 1.5}, steps=3),
        C("end_factor_negative", {"type": L, "end_factor": -0.5}, steps=3),
    ]


def exponential_cases() -> list[dict]:
    E = "ExponentialLR"
    return [
        C("gamma_09", {"type": E, "gamma": 0.9}, steps=30),
        C("gamma_099_two_groups", {"type": E, "gamma": 0.99}, G2, 50),
        C("gamma_1", {"type": E, "gamma": 1.0}, steps=5),
        C("gamma_above_1", {"type": E, "gamma": 1.1}, steps=10),
        C("three_groups", {"type": E, "gamma": 0.5}, G3, 20),
        C("long_2000", {"type": E, "gamma": 0.999}, steps=2000),
        C("adam", {"type": E, "gamma": 0.95}, ADAM2, 10),
        C("gamma_0", {"type": E, "gamma": 0.0}, steps=4),
        C("gamma_05_three_groups_long", {"type": E, "gamma": 0.5}, G3, 60),
        C("epochs_path", {"type": E, "gamma": 0.9}, G2, epochs=[1, 5, 2, 10, 10]),
    ]


def polynomial_cases() -> list[dict]:
    P = "PolynomialLR"
    return [
        C("defaults", {"type": P}, steps=8),
        C("power_1", {"type": P, "total_iters": 10, "power": 1.0}, G2, 14),
        C("power_2", {"type": P, "total_iters": 10, "power": 2.0}, steps=14),
        C("power_05", {"type": P, "total_iters": 10, "power": 0.5}, G2, 14),
        C("power_3_three_groups", {"type": P, "total_iters": 6, "power": 3.0}, G3, 8),
        C("total_iters_1", {"type": P, "total_iters": 1}, steps=3),
        C("power_0", {"type": P, "total_iters": 5, "power": 0.0}, steps=7),
        C("long_1000", {"type": P, "total_iters": 1000, "power": 0.9}, steps=1003),
        C("adam", {"type": P, "total_iters": 4, "power": 2.0}, ADAM, 6),
        C("epochs_path", {"type": P, "total_iters": 10, "power": 2.0}, G2, epochs=[1, 5, 3, 10, 12]),
        # accepted and harmless: t > total_iters keeps the lr
        C("total_iters_0", {"type": P, "total_iters": 0}, steps=3),
    ]


def cosine_cases() -> list[dict]:
    K = "CosineAnnealingLR"
    return [
        C("basic", {"type": K, "T_max": 10}, steps=10),
        C("eta_min", {"type": K, "T_max": 10, "eta_min": 0.001}, G2, 12),
        C("past_t_max_3_5_periods", {"type": K, "T_max": 8}, steps=56),
        C("past_t_max_eta_min", {"type": K, "T_max": 8, "eta_min": 0.01}, G2, 56),
        C("t_max_1", {"type": K, "T_max": 1}, steps=7),
        C("t_max_1_eta_min", {"type": K, "T_max": 1, "eta_min": 0.05}, G2, 7),
        C("t_max_2", {"type": K, "T_max": 2, "eta_min": 0.001}, steps=12),
        C("t_max_3_three_groups", {"type": K, "T_max": 3}, G3, 20),
        C("eta_min_above_base", {"type": K, "T_max": 5, "eta_min": 0.2}, G2, 15),
        C("eta_min_equals_base", {"type": K, "T_max": 5, "eta_min": 0.1}, steps=12),
        C("t_max_100", {"type": K, "T_max": 100, "eta_min": 1e-5}, steps=250),
        C("long_20000_t_max_1000", {"type": K, "T_max": 1000, "eta_min": 1e-4}, steps=20000),
        C("long_20000_t_max_7", {"type": K, "T_max": 7}, steps=20000),
        C("long_20000_t_max_6000", {"type": K, "T_max": 6000, "eta_min": 0.001}, [{"lr": 1.0}], 20000),
        C("adam", {"type": K, "T_max": 6}, ADAM2, 14),
        C("sgd_momentum_untouched", {"type": K, "T_max": 6}, SGDM2, 8),
        C("epochs_path", {"type": K, "T_max": 10, "eta_min": 0.001}, G2, epochs=[1, 5, 10, 15, 20, 3, 35]),
        *[
            C(f"grid_t_max_{t}_eta_min_{eta}", {"type": K, "T_max": t, "eta_min": eta}, G2, 7 * t // 2 + 1)
            for t in (3, 5, 10)
            for eta in (0.0, 0.01)
        ],
        # accepted; modulo by zero when stepping
        C("t_max_0", {"type": K, "T_max": 0}, steps=3),
    ]


def warm_restarts_cases() -> list[dict]:
    W = "CosineAnnealingWarmRestarts"
    frac = [0.5, 1.25, 2.0, 3.7, 7.9, 9.99, 10.0, 10.5, 20.1, 31.4, 45.0]
    return [
        C("t0_5", {"type": W, "T_0": 5}, steps=22),
        C("t0_1", {"type": W, "T_0": 1}, steps=5),
        C("t0_5_eta_min", {"type": W, "T_0": 5, "eta_min": 0.001}, G2, 22),
        C("t_mult_2", {"type": W, "T_0": 3, "T_mult": 2}, steps=50),
        C("t_mult_2_eta_min", {"type": W, "T_0": 4, "T_mult": 2, "eta_min": 0.002}, G2, 70),
        C("t_mult_3", {"type": W, "T_0": 2, "T_mult": 3}, steps=60),
        C("t_mult_3_three_groups", {"type": W, "T_0": 1, "T_mult": 3}, G3, 45),
        C("t0_1_t_mult_2", {"type": W, "T_0": 1, "T_mult": 2}, steps=33),
        C("t0_10_t_mult_1", {"type": W, "T_0": 10, "T_mult": 1, "eta_min": 1e-5}, steps=45),
        C("long_5000_t_mult_2", {"type": W, "T_0": 10, "T_mult": 2, "eta_min": 1e-6}, steps=5000),
        C("adam", {"type": W, "T_0": 4}, ADAM, 10),
        C("epochs_frac_t_mult_1", {"type": W, "T_0": 10}, G2, epochs=frac),
        C("epochs_frac_t_mult_2", {"type": W, "T_0": 10, "T_mult": 2}, G2, epochs=frac),
        C("epochs_frac_t_mult_3_eta_min", {"type": W, "T_0": 4, "T_mult": 3, "eta_min": 0.01}, epochs=frac),
        C("epochs_frac_small_t0", {"type": W, "T_0": 1, "T_mult": 2}, epochs=[0.1, 0.9, 1.0, 2.5, 3.0, 6.99, 7.0, 100.3]),
        C("epochs_integers", {"type": W, "T_0": 3, "T_mult": 2}, epochs=[1, 2, 3, 4, 8, 9, 20, 21, 0]),
        C("epochs_below_t0", {"type": W, "T_0": 50, "T_mult": 2}, G2, epochs=[0.0, 0.3, 12.5, 49.999, 25.0]),
        C("epochs_backwards", {"type": W, "T_0": 5, "T_mult": 2, "eta_min": 0.001}, epochs=[30.0, 2.5, 15.2, 5.0, 0.0]),
        *[
            C(f"grid_t0_{t0}_t_mult_{m}", {"type": W, "T_0": t0, "T_mult": m, "eta_min": 0.001}, G2, 40)
            for t0 in (1, 2, 5)
            for m in (1, 2, 3)
        ],
        # rejected
        C("t0_0", {"type": W, "T_0": 0}, steps=3),
        C("t0_negative", {"type": W, "T_0": -3}, steps=3),
        C("t0_float", {"type": W, "T_0": 5.0}, steps=3),
        C("t_mult_0", {"type": W, "T_0": 5, "T_mult": 0}, steps=3),
        C("t_mult_float", {"type": W, "T_0": 5, "T_mult": 1.5}, steps=3),
        C("eta_min_string", {"type": W, "T_0": 5, "eta_min": "0.1"}, steps=3),
        # accepted; negative epoch fails when stepping
        C("negative_epoch", {"type": W, "T_0": 5}, epochs=[1.0, -1.0]),
    ]


def cyclic_cases() -> list[dict]:
    Y = "CyclicLR"
    return [
        C("triangular", {"type": Y, "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4}, SGDM, 24),
        C("triangular_no_momentum", {"type": Y, "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4, "cycle_momentum": False}, G1, 24),
        C("triangular_sgd_momentum_0", {"type": Y, "base_lr": 0.001, "max_lr": 0.006, "step_size_up": 3}, G2, 18),
        C("triangular2", {"type": Y, "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "mode": "triangular2"}, SGDM, 30),
        C("exp_range", {"type": Y, "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5, "mode": "exp_range", "gamma": 0.97}, SGDM, 40),
        C("exp_range_gamma_1", {"type": Y, "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2, "mode": "exp_range", "gamma": 1.0}, SGDM, 10),
        C("asymmetric_up_down", {"type": Y, "base_lr": 0.001, "max_lr": 0.01, "step_size_up": 2, "step_size_down": 6}, SGDM, 32),
        C("asymmetric_down_short", {"type": Y, "base_lr": 0.001, "max_lr": 0.01, "step_size_up": 7, "step_size_down": 1, "mode": "triangular2"}, SGDM2, 32),
        C("step_size_1", {"type": Y, "base_lr": 0.1, "max_lr": 1.0, "step_size_up": 1}, SGDM, 8),
        C("step_size_down_0", {"type": Y, "base_lr": 0.1, "max_lr": 1.0, "step_size_up": 4, "step_size_down": 0}, SGDM, 10),
        C("per_group_lists", {"type": Y, "base_lr": [0.01, 0.001], "max_lr": [0.1, 0.02], "step_size_up": 3, "base_momentum": [0.8, 0.7], "max_momentum": [0.95, 0.9]}, SGDM2, 20),
        C("custom_momentum_range", {"type": Y, "base_lr": 0.01, "max_lr": 0.05, "step_size_up": 4, "base_momentum": 0.5, "max_momentum": 0.99}, SGDM, 16),
        C("adam_beta1", {"type": Y, "base_lr": 1e-4, "max_lr": 1e-3, "step_size_up": 4}, ADAM, 20),
        C("adam_beta1_two_groups_triangular2", {"type": Y, "base_lr": [1e-4, 2e-4], "max_lr": 1e-3, "step_size_up": 3, "mode": "triangular2", "base_momentum": 0.85, "max_momentum": 0.95}, ADAM2, 24),
        C("adam_no_cycle_momentum", {"type": Y, "base_lr": 1e-4, "max_lr": 1e-3, "step_size_up": 2, "cycle_momentum": False}, ADAM, 10),
        C("scale_fn_cycle", {"type": Y, "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "scale_fn": "1 / (2.0 ** (x - 1))"}, SGDM, 24),
        C("scale_fn_iterations", {"type": Y, "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "scale_fn": "0.95 ** x", "scale_mode": "iterations"}, SGDM, 24),
        C("scale_fn_overrides_mode", {"type": Y, "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2, "mode": "exp_range", "gamma": 0.5, "scale_fn": "1"}, SGDM, 10),
        C("scale_fn_with_bad_mode", {"type": Y, "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2, "mode": "whatever", "scale_fn": "max(0.1, 1 - 0.1 * x)"}, SGDM, 16),
        C("triangular_ignores_scale_mode", {"type": Y, "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2, "scale_mode": "iterations"}, SGDM, 10),
        C("exp_range_three_groups", {"type": Y, "base_lr": 0.001, "max_lr": [0.01, 0.02, 0.03], "step_size_up": 4, "mode": "exp_range", "gamma": 0.99, "cycle_momentum": False}, G3, 30),
        C("default_step_size_long", {"type": Y, "base_lr": 0.001, "max_lr": 0.006}, SGDM, 8001),
        C("base_above_max", {"type": Y, "base_lr": 0.1, "max_lr": 0.01, "step_size_up": 3}, SGDM, 12),
        C("float_step_sizes", {"type": Y, "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2.5, "step_size_down": 1.5}, SGDM, 16),
        *[
            C(
                f"grid_{mode}_{up}_{down}_{label}",
                {"type": Y, "base_lr": 0.002, "max_lr": 0.02, "step_size_up": up, "step_size_down": down, "mode": mode, "gamma": 0.9, "cycle_momentum": label != "no_momentum"},
                groups,
                3 * (up + (down or up)) + 1,
            )
            for mode in ("triangular", "triangular2", "exp_range")
            for up, down in ((2, None), (3, 5))
            for label, groups in (("sgd", SGDM2), ("adam", ADAM2), ("no_momentum", G2))
        ],
        # rejected
        C("bad_mode", {"type": Y, "base_lr": 0.01, "max_lr": 0.1, "mode": "sawtooth"}, SGDM, 3),
        C("base_lr_list_mismatch", {"type": Y, "base_lr": [0.01, 0.02], "max_lr": 0.1}, SGDM, 3),
        C("max_lr_list_mismatch", {"type": Y, "base_lr": 0.01, "max_lr": [0.1]}, SGDM2, 3),
        C("base_momentum_list_mismatch", {"type": Y, "base_lr": 0.01, "max_lr": 0.1, "base_momentum": [0.8, 0.8, 0.8]}, SGDM2, 3),
        C("max_momentum_list_mismatch", {"type": Y, "base_lr": 0.01, "max_lr": 0.1, "max_momentum": [0.9, 0.9]}, SGDM, 3),
        # total_size 0: torch divides by zero in the constructor
        C("step_sizes_0", {"type": Y, "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 0, "step_size_down": 0}, SGDM, 3),
    ]


def one_cycle_cases() -> list[dict]:
    O = "OneCycleLR"
    out: list[dict] = []
    # Tiny total_steps, every mode: run exactly total_steps steps (the last bounces).
    for total in (1, 2, 3, 5, 7):
        for three in (False, True):
            for anneal in ("cos", "linear"):
                spec = {"type": O, "max_lr": 0.1, "total_steps": total, "anneal_strategy": anneal, "three_phase": three}
                out.append(C(f"tiny_{total}_{'three' if three else 'two'}_{anneal}", spec, SGDM, total))
    out += [
        C("basic_100", {"type": O, "max_lr": 0.1, "total_steps": 100}, SGDM, 100),
        C("max_lr_1_value_at_0", {"type": O, "max_lr": 1.0, "total_steps": 10}, SGDM, 10),
        C("three_phase_100", {"type": O, "max_lr": 0.1, "total_steps": 100, "three_phase": True}, SGDM, 100),
        C("linear_100", {"type": O, "max_lr": 0.1, "total_steps": 100, "anneal_strategy": "linear"}, SGDM, 100),
        C("three_phase_linear_50", {"type": O, "max_lr": 0.05, "total_steps": 50, "three_phase": True, "anneal_strategy": "linear"}, SGDM2, 50),
        C("per_group_max_lr", {"type": O, "max_lr": [0.1, 0.01], "total_steps": 30}, SGDM2, 30),
        C("per_group_momentum_lists", {"type": O, "max_lr": [0.1, 0.01], "total_steps": 20, "base_momentum": [0.8, 0.7], "max_momentum": [0.95, 0.9]}, SGDM2, 20),
        C("epochs_steps_per_epoch", {"type": O, "max_lr": 0.1, "epochs": 4, "steps_per_epoch": 7}, SGDM, 28),
        C("epochs_steps_per_epoch_three_phase", {"type": O, "max_lr": 0.2, "epochs": 3, "steps_per_epoch": 5, "three_phase": True}, SGDM, 15),
        C("total_steps_wins_over_epochs", {"type": O, "max_lr": 0.1, "total_steps": 12, "epochs": 100, "steps_per_epoch": 100}, SGDM, 12),
        C("adam_beta1", {"type": O, "max_lr": 0.003, "total_steps": 40}, ADAM, 40),
        C("adam_beta1_three_phase_two_groups", {"type": O, "max_lr": [0.003, 0.001], "total_steps": 25, "three_phase": True}, ADAM2, 25),
        C("adam_no_cycle_momentum", {"type": O, "max_lr": 0.003, "total_steps": 20, "cycle_momentum": False}, ADAM, 20),
        C("sgd_no_cycle_momentum", {"type": O, "max_lr": 0.1, "total_steps": 20, "cycle_momentum": False}, G2, 20),
        C("sgd_momentum_0_key_present", {"type": O, "max_lr": 0.1, "total_steps": 15}, G1, 15),
        C("pct_start_0", {"type": O, "max_lr": 0.1, "total_steps": 10, "pct_start": 0.0}, SGDM, 10),
        # accepted; the last phase has zero length, so the final step divides by zero
        C("pct_start_1", {"type": O, "max_lr": 0.1, "total_steps": 10, "pct_start": 1.0}, SGDM, 10),
        C("pct_start_05_three_phase", {"type": O, "max_lr": 0.1, "total_steps": 10, "pct_start": 0.5, "three_phase": True}, SGDM, 10),
        C("pct_start_0_three_phase", {"type": O, "max_lr": 0.1, "total_steps": 10, "pct_start": 0.0, "three_phase": True, "anneal_strategy": "linear"}, SGDM, 10),
        C("pct_start_045_odd", {"type": O, "max_lr": 0.1, "total_steps": 17, "pct_start": 0.45}, SGDM, 17),
        C("div_factors", {"type": O, "max_lr": 0.5, "total_steps": 30, "div_factor": 10.0, "final_div_factor": 100.0}, SGDM, 30),
        C("div_factor_1", {"type": O, "max_lr": 0.5, "total_steps": 10, "div_factor": 1.0, "final_div_factor": 1.0}, SGDM, 10),
        C("optimizer_lr_ignored", {"type": O, "max_lr": 0.01, "total_steps": 12}, [{"lr": 123.0, "momentum": 0.9}], 12),
        C("long_10000", {"type": O, "max_lr": 0.1, "total_steps": 10000}, SGDM, 10000),
        C("long_5000_three_phase_linear", {"type": O, "max_lr": 0.02, "total_steps": 5000, "three_phase": True, "anneal_strategy": "linear", "pct_start": 0.25}, ADAM, 5000),
        # valid rows, then stepping once more than total_steps raises
        C("past_total_steps", {"type": O, "max_lr": 0.1, "total_steps": 5}, SGDM, 7, rows_then_error=True),
        C("past_total_steps_1", {"type": O, "max_lr": 0.1, "total_steps": 1, "three_phase": True}, SGDM, 3, rows_then_error=True),
        # rejected
        C("pct_start_15", {"type": O, "max_lr": 0.1, "total_steps": 10, "pct_start": 1.5}, SGDM, 3),
        C("pct_start_negative", {"type": O, "max_lr": 0.1, "total_steps": 10, "pct_start": -0.1}, SGDM, 3),
        C("pct_start_int", {"type": O, "max_lr": 0.1, "total_steps": 10, "pct_start": 1}, SGDM, 3),
        C("total_steps_0", {"type": O, "max_lr": 0.1, "total_steps": 0}, SGDM, 3),
        C("total_steps_negative", {"type": O, "max_lr": 0.1, "total_steps": -5}, SGDM, 3),
        C("total_steps_float", {"type": O, "max_lr": 0.1, "total_steps": 10.0}, SGDM, 3),
        C("missing_total_steps_and_epochs", {"type": O, "max_lr": 0.1}, SGDM, 3),
        C("epochs_without_steps_per_epoch", {"type": O, "max_lr": 0.1, "epochs": 3}, SGDM, 3),
        C("epochs_0", {"type": O, "max_lr": 0.1, "epochs": 0, "steps_per_epoch": 5}, SGDM, 3),
        C("epochs_float", {"type": O, "max_lr": 0.1, "epochs": 2.0, "steps_per_epoch": 5}, SGDM, 3),
        C("steps_per_epoch_0", {"type": O, "max_lr": 0.1, "epochs": 3, "steps_per_epoch": 0}, SGDM, 3),
        C("steps_per_epoch_negative", {"type": O, "max_lr": 0.1, "epochs": 3, "steps_per_epoch": -1}, SGDM, 3),
        C("bad_anneal_strategy", {"type": O, "max_lr": 0.1, "total_steps": 10, "anneal_strategy": "exp"}, SGDM, 3),
        C("max_lr_list_mismatch", {"type": O, "max_lr": [0.1, 0.2], "total_steps": 10}, SGDM, 3),
        C("max_momentum_list_mismatch", {"type": O, "max_lr": 0.1, "total_steps": 10, "max_momentum": [0.9, 0.9, 0.9]}, SGDM2, 3),
        C("base_momentum_list_mismatch", {"type": O, "max_lr": 0.1, "total_steps": 10, "base_momentum": [0.8]}, SGDM2, 3),
        C("tiny_1_pct_start_05", {"type": O, "max_lr": 0.1, "total_steps": 1, "pct_start": 0.5}, SGDM, 1),
    ]
    return out


def plateau_cases() -> list[dict]:
    R = "ReduceLROnPlateau"
    flat = [1.0] * 12
    falling_then_flat = [5.0, 4.0, 3.0, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.4, 2.4, 2.4, 2.4, 2.4]
    rising_then_flat = [0.1, 0.2, 0.3, 0.35, 0.35, 0.35, 0.34, 0.35, 0.36, 0.36, 0.36, 0.36, 0.36]
    noisy = [1.0, 0.9, 0.95, 0.91, 0.92, 0.899, 0.9, 0.9, 0.85, 0.86, 0.87, 0.88, 0.84, 0.84, 0.84, 0.84, 0.84, 0.84]
    tiny_gains = [1.0, 0.99995, 0.9999, 0.99985, 0.9998, 0.99975, 0.9997, 0.99965, 0.9996, 0.99955]
    return [
        C("min_rel_defaults_flat", {"type": R}, G1, metrics=flat),
        C("min_rel_patience_2", {"type": R, "patience": 2}, G2, metrics=falling_then_flat),
        C("min_abs", {"type": R, "patience": 1, "threshold": 0.05, "threshold_mode": "abs"}, G2, metrics=noisy),
        C("max_rel", {"type": R, "mode": "max", "patience": 2, "factor": 0.5}, G2, metrics=rising_then_flat),
        C("max_abs", {"type": R, "mode": "max", "patience": 1, "threshold": 0.02, "threshold_mode": "abs", "factor": 0.5}, G1, metrics=rising_then_flat),
        C("patience_0", {"type": R, "patience": 0, "factor": 0.5}, G2, metrics=flat),
        C("patience_0_max", {"type": R, "mode": "max", "patience": 0, "factor": 0.5}, G1, metrics=noisy),
        C("cooldown", {"type": R, "patience": 1, "cooldown": 2, "factor": 0.5}, G2, metrics=flat + flat),
        C("cooldown_patience_0", {"type": R, "patience": 0, "cooldown": 3, "factor": 0.2}, G1, metrics=falling_then_flat),
        C("min_lr_scalar", {"type": R, "patience": 0, "factor": 0.1, "min_lr": 0.0005}, G2, metrics=flat),
        C("min_lr_per_group", {"type": R, "patience": 0, "factor": 0.5, "min_lr": [0.01, 0.02]}, G2, metrics=flat),
        C("min_lr_per_group_three", {"type": R, "patience": 1, "factor": 0.3, "min_lr": [0.1, 0.0, 0.001]}, G3, metrics=flat + flat),
        C("eps_blocks_tiny_updates", {"type": R, "patience": 0, "factor": 0.5, "eps": 0.01}, G2, metrics=flat),
        C("eps_with_min_lr", {"type": R, "patience": 0, "factor": 0.9, "min_lr": 0.0999, "eps": 1e-5}, G2, metrics=flat),
        C("threshold_rel_blocks_tiny_gains", {"type": R, "patience": 1, "threshold": 1e-3}, G1, metrics=tiny_gains),
        C("threshold_0", {"type": R, "patience": 1, "threshold": 0.0, "factor": 0.5}, G1, metrics=tiny_gains + [0.99955, 0.99955]),
        C("negative_metrics_min_rel", {"type": R, "patience": 1, "factor": 0.5}, G1, metrics=[-1.0, -1.1, -1.1, -1.2, -1.2, -1.2, -1.2]),
        C("negative_metrics_max_rel", {"type": R, "mode": "max", "patience": 1, "factor": 0.5}, G1, metrics=[-3.0, -2.0, -2.0, -2.0, -1.0, -1.0, -1.0]),
        C("integer_metrics", {"type": R, "patience": 1, "factor": 0.5}, G1, metrics=[3, 2, 2, 2, 1, 1, 1]),
        C("sgd_momentum_untouched", {"type": R, "patience": 0}, SGDM2, metrics=flat[:5]),
        C("adam", {"type": R, "patience": 1, "factor": 0.5}, ADAM2, metrics=flat),
        C("long_plateau", {"type": R, "patience": 3, "factor": 0.7, "cooldown": 1, "min_lr": 1e-6}, G2, metrics=[1.0 / (1 + k // 7) for k in range(200)]),
        *[
            C(
                f"grid_{mode}_{tmode}_patience_{patience}_cooldown_{cooldown}",
                {"type": R, "mode": mode, "threshold_mode": tmode, "threshold": 0.01, "patience": patience, "cooldown": cooldown, "factor": 0.5},
                G2,
                metrics=noisy if mode == "min" else [-m for m in noisy],
            )
            for mode in ("min", "max")
            for tmode in ("rel", "abs")
            for patience in (0, 2)
            for cooldown in (0, 1)
        ],
        # rejected
        C("factor_1", {"type": R, "factor": 1.0}, G1, metrics=[1.0]),
        C("factor_2", {"type": R, "factor": 2.0}, G1, metrics=[1.0]),
        C("bad_mode", {"type": R, "mode": "median"}, G1, metrics=[1.0]),
        C("bad_threshold_mode", {"type": R, "threshold_mode": "pct"}, G1, metrics=[1.0]),
        C("min_lr_list_mismatch", {"type": R, "min_lr": [0.1, 0.2, 0.3]}, G2, metrics=[1.0]),
    ]


def sequential_cases() -> list[dict]:
    S = "SequentialLR"

    def seq(children: list[dict], milestones: list[int]) -> dict:
        return {"type": S, "schedulers": children, "milestones": milestones}

    warm = {"type": "LinearLR", "start_factor": 0.1, "total_iters": 5}
    cos = {"type": "CosineAnnealingLR", "T_max": 10, "eta_min": 0.001}
    exp = {"type": "ExponentialLR", "gamma": 0.9}
    const = {"type": "ConstantLR", "factor": 0.5, "total_iters": 3}
    step = {"type": "StepLR", "step_size": 2, "gamma": 0.5}
    lam = {"type": "LambdaLR", "lr_lambda": "1 / (epoch + 1)"}
    mult = {"type": "MultiplicativeLR", "lr_lambda": "0.8"}
    cawr = {"type": "CosineAnnealingWarmRestarts", "T_0": 3, "T_mult": 2}
    poly = {"type": "PolynomialLR", "total_iters": 4, "power": 2.0}
    multistep = {"type": "MultiStepLR", "milestones": [2, 3], "gamma": 0.5}
    chained = {"type": "ChainedScheduler", "schedulers": [step, exp]}
    return [
        C("warmup_then_cosine", seq([warm, cos], [5]), G2, 25),
        C("constant_then_exponential", seq([const, exp], [4]), G1, 15),
        C("milestone_0", seq([warm, exp], [0]), G2, 10),
        C("milestone_0_0", seq([warm, const, exp], [0, 0]), G1, 8),
        C("three_children", seq([warm, cos, exp], [5, 15]), G2, 30),
        C("four_children", seq([const, step, poly, exp], [3, 8, 14]), G2, 22),
        C("equal_milestones", seq([warm, const, exp], [4, 4]), G1, 10),
        C("unsorted_milestones", seq([warm, const, exp], [6, 2]), G1, 12),
        C("milestone_past_end", seq([warm, exp], [100]), G1, 12),
        C("milestone_1", seq([step, exp], [1]), G1, 8),
        C("closed_form_children", seq([lam, cawr], [4]), G2, 20),
        C("chainable_then_closed", seq([mult, lam], [5]), G2, 12),
        C("closed_then_chainable", seq([lam, mult], [5]), G2, 12),
        C("multistep_children", seq([multistep, multistep], [4]), G1, 10),
        C("same_child_twice", seq([exp, exp], [3]), G1, 8),
        C("single_child", seq([cos], []), G1, 12),
        C("nested_sequential", seq([warm, seq([const, exp], [4])], [5]), G2, 16),
        C("nested_sequential_first", seq([seq([warm, const], [3]), cos], [6]), G1, 20),
        C("nested_chained", seq([warm, chained], [5]), G2, 15),
        C("nested_chained_first", seq([chained, cos], [4]), G1, 16),
        C("cosine_past_t_max", seq([warm, {"type": "CosineAnnealingLR", "T_max": 4}], [3]), G1, 20),
        C("adam", seq([warm, cos], [5]), ADAM, 12),
        C("sgd_momentum_untouched", seq([warm, exp], [2]), SGDM2, 6),
        C("long_warmup_cosine", seq([{"type": "LinearLR", "start_factor": 0.01, "total_iters": 500}, {"type": "CosineAnnealingLR", "T_max": 4500}], [500]), G1, 5000),
        *[
            C(f"warmup_into_{child['type']}_at_{m}", seq([warm, child], [m]), G2, 14)
            for child in (step, multistep, poly, cawr, lam, mult, exp, cos, const)
            for m in (0, 3)
        ],
        # rejected
        C("milestones_too_many", seq([warm, cos], [3, 6]), G1, 3),
        C("milestones_too_few", seq([warm, cos, exp], [3]), G1, 3),
        C("no_schedulers", seq([], []), G1, 3),
        C("contains_plateau", seq([warm, {"type": "ReduceLROnPlateau"}], [3]), G1, 3),
        C("child_rejected", seq([warm, {"type": "LinearLR", "start_factor": 0.0}], [3]), G1, 3),
    ]


def chained_cases() -> list[dict]:
    H = "ChainedScheduler"

    def chain(children: list[dict]) -> dict:
        return {"type": H, "schedulers": children}

    step = {"type": "StepLR", "step_size": 3, "gamma": 0.5}
    exp = {"type": "ExponentialLR", "gamma": 0.9}
    cos = {"type": "CosineAnnealingLR", "T_max": 8, "eta_min": 0.001}
    const = {"type": "ConstantLR", "factor": 0.1, "total_iters": 4}
    linear = {"type": "LinearLR", "start_factor": 0.2, "total_iters": 5}
    mult = {"type": "MultiplicativeLR", "lr_lambda": "0.95"}
    poly = {"type": "PolynomialLR", "total_iters": 6, "power": 1.0}
    multistep = {"type": "MultiStepLR", "milestones": [2, 5], "gamma": 0.5}
    lam = {"type": "LambdaLR", "lr_lambda": "0.9 ** epoch"}
    seq = {"type": "SequentialLR", "schedulers": [linear, exp], "milestones": [5]}
    return [
        C("step_exponential", chain([step, exp]), G2, 15),
        C("exponential_step", chain([exp, step]), G2, 15),
        C("constant_exponential_doc_example", chain([const, exp]), G1, 25),
        C("linear_constant", chain([linear, const]), G2, 10),
        C("cosine_exponential", chain([cos, exp]), G1, 20),
        C("cosine_step_past_t_max", chain([cos, step]), G2, 30),
        C("linear_cosine", chain([linear, cos]), G1, 20),
        C("three_children", chain([linear, step, exp]), G2, 15),
        C("multiplicative_polynomial", chain([mult, poly]), G1, 10),
        C("multistep_linear", chain([multistep, linear]), G2, 10),
        C("single_child", chain([exp]), G1, 8),
        C("same_child_twice", chain([exp, exp]), G1, 8),
        C("closed_form_lambda_last", chain([exp, lam]), G1, 10),
        C("closed_form_lambda_first", chain([lam, exp]), G1, 10),
        C("nested_sequential", chain([seq, step]), G2, 15),
        C("nested_chained", chain([chain([step, exp]), const]), G1, 12),
        C("three_groups", chain([step, exp]), G3, 10),
        C("adam", chain([linear, exp]), ADAM2, 10),
        C("sgd_momentum_untouched", chain([linear, exp]), SGDM2, 6),
        C("long_cosine_linear", chain([{"type": "LinearLR", "start_factor": 0.1, "total_iters": 100}, {"type": "CosineAnnealingLR", "T_max": 1000}]), G1, 3000),
        *[
            C(f"pair_{a['type']}_{b['type']}", chain([a, b]), G2, 12)
            for a, b in ((multistep, exp), (poly, step), (const, linear), (mult, cos), (cos, poly), (linear, multistep), (step, mult), (const, cos))
        ],
        # rejected
        C("no_schedulers", chain([]), G1, 3),
        C("contains_plateau", chain([exp, {"type": "ReduceLROnPlateau"}]), G1, 3),
        C("child_rejected", chain([exp, {"type": "ConstantLR", "factor": 2.0}]), G1, 3),
    ]


FAMILIES: dict[str, Callable[[], list[dict]]] = {
    "LambdaLR": lambda_cases,
    "MultiplicativeLR": multiplicative_cases,
    "StepLR": step_cases,
    "MultiStepLR": multistep_cases,
    "ConstantLR": constant_cases,
    "LinearLR": linear_cases,
    "ExponentialLR": exponential_cases,
    "PolynomialLR": polynomial_cases,
    "CosineAnnealingLR": cosine_cases,
    "CosineAnnealingWarmRestarts": warm_restarts_cases,
    "CyclicLR": cyclic_cases,
    "OneCycleLR": one_cycle_cases,
    "ReduceLROnPlateau": plateau_cases,
    "SequentialLR": sequential_cases,
    "ChainedScheduler": chained_cases,
}


# ---------------------------------------------------------------------------
# Scenarios: what real scripts do around a scheduler (scenarios/<kind>.json)
# ---------------------------------------------------------------------------
#
# Each scenario is data (specs, groups, a list of actions) that
# `play_scenario` runs on torch's classes here, and the drop-in's tests run
# on lrbridge's classes. The recorded values are what a script reads after
# each action.

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


def _lrs(optimizer: torch.optim.Optimizer) -> list[float]:
    return [float(g["lr"]) for g in optimizer.param_groups]


def _momenta(optimizer: torch.optim.Optimizer) -> list[float] | None:
    groups = optimizer.param_groups
    if "betas" in optimizer.defaults:
        return [float(g["betas"][0]) for g in groups]
    if "momentum" in optimizer.defaults:
        return [float(g["momentum"]) for g in groups]
    return None


def _attr_values(scheduler: Any, names: list[str]) -> dict:
    return {n: (float(getattr(scheduler, n)) if getattr(scheduler, n) is not None else None) for n in names}


def play_scenario(case: dict, module: Any = sched, **extra: Any) -> list[dict]:
    """Run a scenario's actions; one record per action (what a script would read).

    Actions: ["build", i] builds case["specs"][i] (kept as scheduler i);
    ["step", i] / ["step", i, epoch] / ["metric", i, value]; ["save", i] keeps
    the optimizer's and scheduler i's state_dicts; ["fresh"] replaces the
    optimizer by a fresh one from `groups`; ["load_optimizer"];
    ["load", i] loads the saved scheduler state into scheduler i;
    ["add_group", lr]; ["set_lr", lr] writes every group's lr by hand.
    Every record has the group lrs (and momentum/beta1), scheduler i's
    get_last_lr() and last_epoch, the attributes named in case["attrs"] and,
    for composites, each child's last_epoch and get_last_lr().
    """
    groups, dtype = case["groups"], case.get("dtype")
    optimizer = build_optimizer(groups, dtype)
    schedulers: dict[int, Any] = {}
    saved: dict[str, Any] = {}
    records: list[dict] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for action in case["actions"]:
            op, args = action[0], action[1:]
            i = args[0] if args and op in ("build", "step", "metric", "save", "load") else None
            if op == "build":
                schedulers[i] = build_scheduler(case["specs"][i], optimizer, module, **extra)
            elif op == "step":
                schedulers[i].step(*args[1:])
            elif op == "metric":
                schedulers[i].step(args[1])
            elif op == "save":
                saved = {"optimizer": optimizer.state_dict(), "scheduler": schedulers[i].state_dict()}
            elif op == "fresh":
                optimizer = build_optimizer(groups, dtype)
                schedulers = {}
            elif op == "load_optimizer":
                optimizer.load_state_dict(saved["optimizer"])
            elif op == "load":
                schedulers[i].load_state_dict(saved["scheduler"])
            elif op == "add_group":
                lr = float(args[0]) if dtype is None else torch.tensor(float(args[0]), dtype=DTYPES[dtype])
                optimizer.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr})
            elif op == "set_lr":
                for g in optimizer.param_groups:
                    if isinstance(g["lr"], torch.Tensor):
                        g["lr"].fill_(float(args[0]))
                    else:
                        g["lr"] = float(args[0])
            else:
                raise ValueError(f"unknown action {op!r}")
            record: dict[str, Any] = {"lr": _lrs(optimizer)}
            if case.get("momentum"):
                record["momentum"] = _momenta(optimizer)
            if i is not None and i in schedulers:
                s = schedulers[i]
                record["last_lr"] = [float(v) for v in s.get_last_lr()]
                if hasattr(s, "last_epoch"):
                    record["last_epoch"] = s.last_epoch
                if case.get("attrs"):
                    record["attrs"] = _attr_values(s, case["attrs"])
                if case.get("children"):
                    record["children"] = [
                        {"last_epoch": c.last_epoch, "last_lr": [float(v) for v in c.get_last_lr()]}
                        for c in s._schedulers
                    ]
            records.append(record)
    return records


def _resume_actions(before: int, after: int, order: str) -> list[list]:
    """Train `before` steps, save, then resume in a fresh process."""
    run = [["build", 0]] + [["step", 0]] * before + [["save", 0], ["fresh"]]
    if order == "usual":  # optimizer state first, then the scheduler is built
        run += [["load_optimizer"], ["build", 0], ["load", 0]]
    else:  # the scheduler is built on the fresh optimizer, then both states are loaded
        run += [["build", 0], ["load_optimizer"], ["load", 0]]
    return run + [["step", 0]] * after


# One deterministic spec per class (lambdas as expressions, as the drop-in takes them).
PER_CLASS = {
    "LambdaLR": {"type": "LambdaLR", "lr_lambda": "0.95 ** epoch"},
    "MultiplicativeLR": {"type": "MultiplicativeLR", "lr_lambda": "0.95"},
    "StepLR": {"type": "StepLR", "step_size": 2, "gamma": 0.1},
    "MultiStepLR": {"type": "MultiStepLR", "milestones": [2, 5, 9], "gamma": 0.5},
    "ConstantLR": {"type": "ConstantLR", "factor": 0.5, "total_iters": 4},
    "LinearLR": {"type": "LinearLR", "start_factor": 0.25, "end_factor": 0.9, "total_iters": 8},
    "ExponentialLR": {"type": "ExponentialLR", "gamma": 0.9},
    "PolynomialLR": {"type": "PolynomialLR", "total_iters": 12, "power": 2.0},
    "CosineAnnealingLR": {"type": "CosineAnnealingLR", "T_max": 7, "eta_min": 0.001},
    "CosineAnnealingWarmRestarts": {"type": "CosineAnnealingWarmRestarts", "T_0": 3, "T_mult": 2, "eta_min": 0.0005},
    "CyclicLR": {"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4, "mode": "triangular2"},
    "OneCycleLR": {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 40},
    "SequentialLR": {
        "type": "SequentialLR",
        "schedulers": [{"type": "LinearLR", "start_factor": 0.1, "total_iters": 4}, {"type": "ExponentialLR", "gamma": 0.9}],
        "milestones": [4],
    },
    "ChainedScheduler": {
        "type": "ChainedScheduler",
        "schedulers": [{"type": "ConstantLR", "factor": 0.5, "total_iters": 5}, {"type": "ExponentialLR", "gamma": 0.95}],
    },
}
ALL_CLASSES = [*PER_CLASS, "ReduceLROnPlateau"]
PLATEAU = {"type": "ReduceLROnPlateau", "patience": 0, "factor": 0.5}
PLATEAU_METRICS = [1.0, 0.9, 0.9, 0.95, 0.9, 0.8, 0.8, 0.8, 0.85, 0.7]


def resume_scenarios() -> list[dict]:
    out = []
    for name, spec in PER_CLASS.items():
        for order in ("usual", "other"):
            out.append(
                {"name": f"{name}_{order}_order", "specs": [spec], "groups": SGDM2, "momentum": True,
                 "actions": _resume_actions(7, 12, order)}
            )
    out.append({"name": "StepLR_issue_example", "specs": [{"type": "StepLR", "step_size": 2, "gamma": 0.1}],
                "groups": [{"lr": 0.05}], "actions": _resume_actions(7, 6, "usual")})
    for order in ("usual", "other"):
        run = [["build", 0]] + [["metric", 0, m] for m in PLATEAU_METRICS[:5]] + [["save", 0], ["fresh"]]
        run += [["load_optimizer"], ["build", 0], ["load", 0]] if order == "usual" else [["build", 0], ["load_optimizer"], ["load", 0]]
        run += [["metric", 0, m] for m in PLATEAU_METRICS[5:]]
        out.append({"name": f"ReduceLROnPlateau_{order}_order", "specs": [PLATEAU], "groups": SGDM2, "actions": run})
    return out


def stacked_scenarios() -> list[dict]:
    lin = {"type": "LinearLR", "start_factor": 0.4, "end_factor": 0.9, "total_iters": 4}
    exp = {"type": "ExponentialLR", "gamma": 0.9}
    step = {"type": "StepLR", "step_size": 3, "gamma": 0.5}
    cos = {"type": "CosineAnnealingLR", "T_max": 6}
    lam = {"type": "LambdaLR", "lr_lambda": "1 / (epoch + 1)"}
    const = {"type": "ConstantLR", "factor": 0.5, "total_iters": 3}
    out = []
    for a, b in ((lin, exp), (exp, lin), (step, cos), (const, exp), (lin, lam), (lam, exp)):
        name = f"{a['type']}_then_{b['type']}"
        both = [["step", 0], ["step", 1]]
        out.append({"name": name, "specs": [a, b], "groups": [{"lr": 0.05}, {"lr": 0.2}],
                    "actions": [["build", 0], ["build", 1]] + both * 12})
    # A metric-driven schedule stacked with a per-step one: each reduces from what the other left.
    plateau = {"type": "ReduceLROnPlateau", "threshold_mode": "abs", "threshold": 0.1, "patience": 2}
    for other in (step, lin, cos):
        out.append({"name": f"ReduceLROnPlateau_then_{other['type']}", "specs": [plateau, other], "groups": [{"lr": 0.5}, {"lr": 0.05}],
                    "actions": [["build", 0], ["build", 1]] + [a for k in range(16) for a in (["metric", 0, 10 - k * 0.0165], ["step", 1])]})
    out.append({"name": "issue_example_chained", "specs": [lin, exp, {"type": "ChainedScheduler", "schedulers": [lin, exp]}],
                "groups": [{"lr": 0.05}], "actions": [["build", 2]] + [["step", 2]] * 10})
    return out


def children_scenarios() -> list[dict]:
    seq = PER_CLASS["SequentialLR"]
    chain = PER_CLASS["ChainedScheduler"]
    return [
        {"name": "SequentialLR_children", "specs": [seq], "groups": G2, "children": True,
         "actions": [["build", 0]] + [["step", 0]] * 10},
        {"name": "ChainedScheduler_children", "specs": [chain], "groups": G2, "children": True,
         "actions": [["build", 0]] + [["step", 0]] * 10},
    ]


def add_group_scenarios() -> list[dict]:
    run = [["build", 0]] + [["metric", 0, m] for m in PLATEAU_METRICS[:3]] + [["add_group", 0.3]]
    run += [["metric", 0, m] for m in PLATEAU_METRICS[3:]]
    return [
        {"name": "plateau_scalar_min_lr", "specs": [{**PLATEAU, "min_lr": 0.001}], "groups": G2, "actions": run},
        {"name": "plateau_list_min_lr_raises", "specs": [{**PLATEAU, "min_lr": [0.001, 0.002]}], "groups": G2, "actions": run},
    ]


def step_zero_scenarios() -> list[dict]:
    mult = {"type": "MultiplicativeLR", "lr_lambda": "0.9 if epoch == 0 else 0.5"}
    return [
        {"name": "MultiplicativeLR_step_0", "specs": [mult], "groups": G2,
         "actions": [["build", 0], ["step", 0], ["step", 0], ["step", 0, 0], ["step", 0], ["step", 0, 0]]},
    ]


def dtype_scenarios() -> list[dict]:
    out = []
    for dtype in ("float32", "float64"):
        for name, spec in PER_CLASS.items():
            out.append({"name": f"{name}_{dtype}", "specs": [spec], "groups": SGDM2, "dtype": dtype, "momentum": True,
                        "actions": [["build", 0]] + [["step", 0]] * 30})
        out.append({"name": f"ExponentialLR_hand_edit_{dtype}", "specs": [PER_CLASS["ExponentialLR"]], "groups": G2,
                    "dtype": dtype, "actions": [["build", 0]] + [["step", 0]] * 5 + [["set_lr", 0.0123]] + [["step", 0]] * 10})
        out.append({"name": f"ReduceLROnPlateau_{dtype}", "specs": [PLATEAU], "groups": SGDM2, "dtype": dtype,
                    "actions": [["build", 0]] + [["metric", 0, m] for m in PLATEAU_METRICS]})
    # One float group and one float32 tensor (torch's default dtype), as torch's own tests build them.
    mixed = [{"lr": 0.05, "momentum": 0.9}, {"lr": 0.5, "momentum": 0.9, "dtype": "float32"}]
    for name, spec in PER_CLASS.items():
        out.append({"name": f"{name}_float_and_float32", "specs": [spec], "groups": mixed, "momentum": True,
                    "actions": [["build", 0]] + [["step", 0]] * 30})
    return out


def warm_restarts_scenarios() -> list[dict]:
    cawr = {"type": "CosineAnnealingWarmRestarts", "T_0": 2, "T_mult": 2}
    return [
        {"name": "T_cur_T_i_steps", "specs": [cawr], "groups": G1, "attrs": ["T_cur", "T_i"],
         "actions": [["build", 0]] + [["step", 0]] * 16},
        {"name": "T_cur_T_i_epochs", "specs": [cawr], "groups": G1, "attrs": ["T_cur", "T_i"],
         "actions": [["build", 0], ["step", 0, 0.5], ["step", 0, 3.25], ["step", 0], ["step", 0], ["step", 0, 7]]},
    ]


SCENARIOS: dict[str, Callable[[], list[dict]]] = {
    "resume": resume_scenarios,
    "stacked": stacked_scenarios,
    "children": children_scenarios,
    "add_param_group": add_group_scenarios,
    "step_zero": step_zero_scenarios,
    "dtype": dtype_scenarios,
    "warm_restarts": warm_restarts_scenarios,
}


def run_scenario(case: dict) -> dict:
    """The case with torch's records, or torch's exception and the action it raised at."""
    out = dict(case)
    try:
        out["expect"] = play_scenario(case)
    except Exception as exc:  # what torch raises is the expected answer
        partial = dict(case)
        partial["actions"] = []
        out["error"] = error_record(exc, "action")
        # the records up to the failing action
        for k in range(len(case["actions"]), 0, -1):
            try:
                partial["actions"] = case["actions"][:k]
                out["expect"] = play_scenario(partial)
                out["error"]["at_action"] = k
                break
            except Exception:
                continue
    return out


def render_scenarios(kind: str) -> str:
    lines = [json.dumps(run_scenario(c), sort_keys=True) for c in SCENARIOS[kind]()]
    return f'{{"cases": [\n' + ",\n".join(lines) + f'\n], "torch": {json.dumps(torch_version())}}}\n'


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------


def torch_version() -> str:
    """"2.13.0+cpu" → "2.13.0": the build variant does not change the values."""
    return torch.__version__.split("+")[0]


def render_family(family: str) -> str:
    """The exact file text for one family: one case per line, keys sorted."""
    cases = [run_case(defn) for defn in FAMILIES[family]()]
    lines = [json.dumps(case, sort_keys=True) for case in cases]
    body = ",\n".join(lines)
    return f'{{"cases": [\n{body}\n], "torch": {json.dumps(torch_version())}}}\n'


def main(argv: list[str]) -> int:
    if not torch_version().startswith(TORCH_SERIES + "."):
        print(f"expected torch {TORCH_SERIES}.x, found {torch.__version__}", file=sys.stderr)
        return 1
    families = [a for a in argv if a in FAMILIES] or (list(FAMILIES) if not argv else [])
    kinds = [a for a in argv if a in SCENARIOS] or (list(SCENARIOS) if not argv else [])
    SCENARIO_DIR.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        text = render_scenarios(kind)
        (SCENARIO_DIR / f"{kind}.json").write_text(text)
        print(f"scenarios/{kind}: {len(json.loads(text)['cases'])} cases")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for family in families:
        text = render_family(family)
        (OUT_DIR / f"{family}.json").write_text(text)
        cases = json.loads(text)["cases"]
        errors = sum(1 for c in cases if "error" in c)
        rows = sum(c["steps"] for c in cases)
        print(f"{family}: {len(cases)} cases ({errors} rejected), {rows} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
