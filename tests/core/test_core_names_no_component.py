"""The core names no plugin component: its defaults (judges, benchmark, loss, baseline, budgets) come from
registry.yaml (DESIGN.md: built-in plugins are not special-cased), so a third-party plugin or an edited
registry can replace any of them.

The scan reads every string constant of ``tzbench/`` that equals a registered component's name, leaving
out docstrings and ``help=`` / ``description=`` texts (examples for people, not defaults); what is left
must be on ``ALLOWED`` with the reason it is not the component.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from tzbench import SRModelSpec, hookimpl
from tzbench.api import get_catalog
from tzbench.catalog import KINDS
from tzbench.config import DataConfig
from tzbench.registry import Registry, load_registry
from tzbench.yamlio import load_yaml

ROOT = Path(__file__).resolve().parents[2]
#: Keyword arguments whose string is prose or a library's own vocabulary, never a component name.
PROSE_KEYWORDS = {"help", "description"}
LIBRARY_KEYWORDS = {"mode"}  # torch.nn.functional.interpolate(mode="bicubic"): the interpolation, not the model
#: (file, name): why that string is not the component of the same name.
ALLOWED = {
    ("tzbench/data/convert.py", "bicubic"): "lr_from: how the converter makes an LR image",
    ("tzbench/data/textzoom_lmdb.py", "bicubic"): "lr_source: TextZoom's real LR or a bicubic-made one",
    ("tzbench/report/reproduce.py", "bicubic"): "syn-vs-real sets the dataset's lr_source param to 'bicubic'",
}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def named_components(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) of each string constant in ``source`` that names a component and is not prose."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in PROSE_KEYWORDS | LIBRARY_KEYWORDS:
            skip |= {id(n) for n in ast.walk(node.value)}
    return sorted((n.lineno, n.value) for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in names and id(n) not in skip)


@pytest.fixture(scope="module")
def component_names() -> set[str]:
    catalog = get_catalog()
    names = {name for kind in KINDS for name in catalog.names(kind)}
    assert {"aster", "ppocr", "crnn_tz", "tsrn", "bicubic", "srcnn", "l2", "synth", "textzoom"} <= names
    return names


def test_the_core_hard_codes_no_component_name(component_names: set[str]) -> None:
    found = {}
    for path in sorted((ROOT / "tzbench").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for line, name in named_components(path.read_text(encoding="utf-8"), component_names):
            found.setdefault((rel, name), []).append(line)
    offenders = [f"{rel}:{lines[0]} names {name!r}" for (rel, name), lines in found.items() if (rel, name) not in ALLOWED]
    assert offenders == [], "take these defaults from registry.yaml (tzbench/registry.py) instead"
    stale = sorted(set(ALLOWED) - set(found))
    assert stale == [], "allow-list entries that no longer match anything: remove them"


def test_the_scan_sees_defaults_and_switches_but_not_prose() -> None:
    names = {"aster", "ppocr", "bicubic", "synth"}
    source = '''
def f(judge="aster", other=None):
    """Read with ppocr, e.g. "ppocr"."""
    x = typer.Option(help="synth")
    y = F.interpolate(t, mode="bicubic")
    if other == "ppocr":
        return {"synth": 1}
'''
    assert named_components(source, names) == [(2, "aster"), (6, "ppocr"), (7, "synth")]


def test_the_defaults_come_from_the_registry() -> None:
    registry = load_registry()
    assert DataConfig().dataset == registry.benchmarks[registry.default_benchmark].dataset
    assert registry.reference_baseline in registry.baselines
    from tzbench.report.reproduce import load_budgets

    assert set(load_budgets()) == set(registry.budgets) >= {"smoke", "small", "paper", "cpu"}


@pytest.mark.parametrize(("field", "value", "match"), [
    ("legacy_selection_judge", None, "legacy_selection_judge"),
    ("default_benchmark", "nope", "default_benchmark 'nope' is not in benchmarks"),
    ("selection_judge", "nope", "selection_judge 'nope' is not in judges"),
    ("reference_baseline", "tsrn", "reference_baseline 'tsrn' is not in baselines"),
])
def test_the_registry_refuses_a_missing_or_unknown_default(field: str, value: str | None, match: str) -> None:
    data = load_yaml((ROOT / "registry.yaml").read_text(encoding="utf-8"))
    if value is None:
        del data[field]
    else:
        data[field] = value
    with pytest.raises(ValidationError, match=match):
        Registry.model_validate(data)


class _NoLossPlugin:
    """Registers ``noloss``: an SR model whose spec names no default loss."""

    @hookimpl
    def register_sr_models(self) -> list[SRModelSpec]:
        return [SRModelSpec(name="noloss", target="torch.nn:Upsample", params=_UpsampleParams, summary="x2 nearest")]


class _UpsampleParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scale_factor: int = 2


def test_a_spec_without_default_loss_trains_with_the_registry_one() -> None:
    from tzbench.runner.context import build_sr_model

    catalog = get_catalog(extra_plugins=[_NoLossPlugin()])
    assert catalog.spec("sr-models", "noloss").default_loss is None
    assert build_sr_model(catalog, "noloss", {}).default_loss == load_registry().default_loss == "l2"
