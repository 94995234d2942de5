"""Every hook specification is documented in docs/hooks.md (one heading each)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from tzbench import hookspecs

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
