"""registry.yaml: what counts as a comparable result."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tzbench.yamlio import load_yaml

__all__ = ["Registry", "BenchmarkEntry", "JudgeEntry", "load_registry", "registry_path"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BenchmarkEntry(_Strict):
    """A benchmark: its dataset, version, subsets with expected sizes, fixed params."""

    version: str
    dataset: str
    summary: str = ""
    subsets: dict[str, int | None]
    fixed_params: list[str] = Field(default_factory=list)


class JudgeEntry(_Strict):
    """A judge that counts, with the weights hash results must have been made with."""

    summary: str = ""
    weights_sha256: str | None = None


class MetricEntry(_Strict):
    direction: Literal["higher", "lower"]


class Registry(_Strict):
    """The parsed registry.yaml."""

    version: int
    benchmarks: dict[str, BenchmarkEntry]
    judges: dict[str, JudgeEntry]
    selection_judge: str
    #: The judge of the legacy protocol's selection (TextZoom selected with ASTER on the test subsets).
    legacy_selection_judge: str
    default_judges: list[str] = Field(default_factory=list)
    #: The benchmark a command reads when none is named (its dataset is the default data of a run).
    default_benchmark: str
    #: The loss an SR model trains with when neither its spec nor the run config names one.
    default_loss: str
    #: The baseline that report tables' Δ columns and figures' reference line are measured against.
    reference_baseline: str
    metrics: dict[str, MetricEntry]
    protocols: list[str]
    losses: dict[str, str] = Field(default_factory=dict, description="each model's Table 4 loss")
    recipes: dict[str, dict[str, dict[str, Any]]]
    baselines: list[str]
    #: The paper's experiments ``tzbench reproduce`` runs: each one's models, in the paper's row order.
    experiments: dict[str, list[str]] = Field(default_factory=dict)
    #: ``tzbench reproduce --budget``: each budget's fields (tzbench.report.reproduce.Budget validates them).
    budgets: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_are_entries(self) -> Registry:
        # The core takes these defaults from here instead of naming a plugin's component itself,
        # so a typo must fail when the file is read, not when a command first needs the default.
        if self.default_benchmark not in self.benchmarks:
            raise ValueError(f"default_benchmark {self.default_benchmark!r} is not in benchmarks")
        for field in ("selection_judge", "legacy_selection_judge"):
            if getattr(self, field) not in self.judges:
                raise ValueError(f"{field} {getattr(self, field)!r} is not in judges")
        if self.reference_baseline not in self.baselines:
            raise ValueError(f"reference_baseline {self.reference_baseline!r} is not in baselines")
        return self

    def default_dataset(self) -> str:
        """The dataset of :attr:`default_benchmark`: what a run config reads when it names none."""
        return self.benchmarks[self.default_benchmark].dataset

    def recipe(self, model: str, name: str = "paper") -> dict[str, Any]:
        """Recipe ``name``'s default settings, then ``model``'s own entry, with the model's loss."""
        if name not in self.recipes:
            raise KeyError(f"unknown recipe {name!r}; registry.yaml has {', '.join(self.recipes)}")
        entries = self.recipes[name]
        out: dict[str, Any] = {**entries.get("default", {}), **entries.get(model, {})}
        if model in self.losses:
            out.setdefault("loss", self.losses[model])
        return out

    def benchmark_for_dataset(self, dataset: str) -> tuple[str, BenchmarkEntry] | None:
        """The benchmark whose dataset is ``dataset``, if any."""
        for name, entry in self.benchmarks.items():
            if entry.dataset == dataset:
                return name, entry
        return None


def registry_path() -> Path:
    """The packaged registry.yaml (source checkout or installed wheel)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "registry.yaml", here.parent / "registry.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"registry.yaml not found next to {here}")


@cache  # the file is read-only package data: parsing it once per process is safe
def load_registry(path: str | None = None) -> Registry:
    """Parse and validate registry.yaml; errors name the file and field."""
    p = Path(path) if path else registry_path()
    try:
        return Registry.model_validate(load_yaml(p.read_text(encoding="utf-8")))
    except ValidationError as exc:
        raise ValueError(f"{p}: invalid registry: {exc}") from exc
