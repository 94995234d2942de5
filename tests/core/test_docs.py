"""docs/hooks.md documents every hook specification (one heading each) and every spec field with its default."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from pydantic.fields import FieldInfo

from tzbench import hookspecs, specs

ROOT = Path(__file__).resolve().parents[2]


def _hooks() -> list[str]:
    return [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(f, "tzbench_spec")]


def test_hookspecs_exist() -> None:
    assert set(_hooks()) >= {"register_sr_models", "register_recognizers", "register_losses",
                             "register_datasets", "register_commands"}


def test_every_hook_has_a_heading_and_a_docstring() -> None:
    text = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## (\w+)\s*$", text, flags=re.M))
    for name in _hooks():
        assert name in headings, f"docs/hooks.md has no '## {name}' heading"
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"hook {name} has no docstring"


def _documented_fields() -> dict[str, dict[str, str]]:
    """``{owner: {field: default cell}}`` from the tables under '## Spec fields' of docs/hooks.md.

    A table belongs to the last ``### Owner`` heading or ```Owner` (`` paragraph above it.
    """
    text = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    section = text.split("## Spec fields", 1)[1].split("\n## ", 1)[0]
    out: dict[str, dict[str, str]] = {}
    owner = ""
    for line in section.splitlines():
        if m := re.match(r"^### (\w+)$", line) or re.match(r"^`(\w+)` \(", line):
            owner = m.group(1)
        elif m := re.match(r"^\| `(\w+)` \| (.+?) \| (.+?) \| (.+) \|$", line):
            out.setdefault(owner, {})[m.group(1)] = m.group(3).strip().strip("`")
    return out


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    return value.__name__ if isinstance(value, type) else repr(value)


def test_every_spec_field_is_documented_with_its_default() -> None:
    documented = _documented_fields()
    owners = [specs.ComponentSpec, specs.SRModelSpec, specs.PretrainedWeights, specs.RecognizerSpec,
              specs.WeightsFile, specs.LossSpec, specs.DatasetSpec, specs.LoggerSpec]
    assert {n for n in dir(specs) if n.endswith("Spec")} <= {c.__name__ for c in owners}
    for cls in owners:
        sub = issubclass(cls, specs.ComponentSpec) and cls is not specs.ComponentSpec
        inherited = specs.ComponentSpec.model_fields if sub else {}
        own = {n: f for n, f in cls.model_fields.items() if n not in inherited}
        rows = documented.get(cls.__name__, {})
        assert set(rows) == set(own), f"docs/hooks.md: {cls.__name__} fields {sorted(own)}, documented {sorted(rows)}"
        for name, field in own.items():
            assert rows[name] == _default(field), f"docs/hooks.md: {cls.__name__}.{name} default is {_default(field)}"
