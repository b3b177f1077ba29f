"""lrbridge.spec and README's grammar table against proto/schema.json.

The schema is recorded from the server's field readers (`make schema`; a
vitest test keeps it current), so these tests fail when a builder or the
README restates a field name, a default or a type the server does not have.
No server is needed.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from lrbridge import spec as S

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "proto" / "schema.json").read_text())
TYPES = SCHEMA["types"]
LIBRARY = sorted(t for t, s in TYPES.items() if s["family"] == "library")
TORCH = sorted(t for t, s in TYPES.items() if s["family"] == "torch")

# Builders that are not a `type`, and the part of the schema each one writes.
NOT_TYPES = {
    "absolute": {"lr": SCHEMA["library_top_level"]["lr"]},
    "with_momentum": {"momentum": SCHEMA["library_top_level"]["momentum"]},
    "inverse_momentum": SCHEMA["momentum_inverse"],
    "phase": SCHEMA["combine_phase"],
    "torch_spec": None,  # any torch class: the class name and its kwargs
}

_ABSENT = (None, getattr(S, "_UNSET", None))


def _params(fn):
    """(field name, parameter) for each named parameter; `from_` is the field `from`."""
    out = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            continue
        out[p.name.rstrip("_") if p.name.endswith("_") and p.name != "_" else p.name] = p
    return out


def _takes_kwargs(fn) -> bool:
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


def test_every_builder_is_a_type_or_a_known_part():
    assert sorted(S.__all__) == sorted(set(LIBRARY) | set(NOT_TYPES))


@pytest.mark.parametrize("type_name", LIBRARY)
def test_builder_fields_and_defaults_match_schema(type_name):
    fn = getattr(S, type_name)
    fields = TYPES[type_name]["fields"]
    params = _params(fn)
    for name, p in params.items():
        assert name in fields, f"spec.{type_name}({p.name}=...) writes a field {type_name} does not have"
        doc = fields[name]
        has_default = p.default is not inspect.Parameter.empty and p.kind is not p.VAR_POSITIONAL
        assert has_default == (not doc["required"]), (
            f"spec.{type_name}: {name} is {'optional' if has_default else 'required'} in Python, "
            f"{'required' if doc['required'] else 'optional'} in the schema"
        )
        if has_default and p.default not in _ABSENT:
            assert p.default == doc.get("default"), f"spec.{type_name}: {name} defaults to {p.default!r}, schema says {doc.get('default')!r}"
    if not _takes_kwargs(fn):
        missing = sorted(n for n, d in fields.items() if n not in params and not d.get("ignored"))
        assert not missing, f"spec.{type_name} cannot write {missing}"


@pytest.mark.parametrize("builder", sorted(n for n, part in NOT_TYPES.items() if part))
def test_part_builders_match_schema(builder):
    fn = getattr(S, builder)
    part = NOT_TYPES[builder]
    params = {n: p for n, p in _params(fn).items() if n != "spec" and not (builder == "phase" and n == "shape")}
    for name, p in params.items():
        assert name in part, f"spec.{builder}({name}=...) writes a field the schema does not have"
        if p.default not in _ABSENT and p.default is not inspect.Parameter.empty:
            assert p.default == part[name].get("default")
    if not _takes_kwargs(fn):
        assert sorted(part) == sorted(params), f"spec.{builder} and the schema disagree on fields"


def _readme_table():
    """{type: row} from README's grammar table (the one headed `type` | fields (defaults))."""
    text = (ROOT / "README.md").read_text()
    start = text.index("| `type` | fields (defaults) | meaning |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        first = line.split("|")[1]
        for t in re.findall(r"`([^`]+)`", first):
            rows[t] = line
    return rows


def test_readme_table_lists_exactly_the_schema_types():
    assert sorted(_readme_table()) == sorted(TYPES)


def test_readme_table_defaults_match_schema():
    # `field`(default...) in a row: the default of that field in each listed type that has it.
    for t, row in _readme_table().items():
        fields = TYPES[t]["fields"]
        for name, shown in re.findall(r"`(\w+)`\(([^);,]+)", row.split("|")[2]):
            if name not in fields or "default" not in fields[name]:
                continue
            want = fields[name]["default"]
            got = float(shown) if isinstance(want, (int, float)) and not isinstance(want, bool) else shown
            assert got == want, f"README: {t}.{name} shown as ({shown}), the schema's default is {want!r}"
