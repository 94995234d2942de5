"""reproduce plans follow registry.yaml; a smoke reproduction lands in the DB and the report reads it back."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from PIL import Image

import tzbench
from tzbench.config import ConfigError
from tzbench.db import Run, Store
from tzbench.report.build import build_report
from tzbench.report.figures import char_errors
from tzbench.report.reproduce import BUDGETS, plan, run_plan
from tzbench.report.tables import collect_rows


@pytest.fixture(scope="module")
def catalog():  # noqa: ANN201
    return tzbench.get_catalog()


def test_table4_plan_uses_registry_losses(catalog) -> None:  # noqa: ANN001
    jobs = {j.label: j for j in plan("table4", "synth", "smoke", catalog)}
    assert list(jobs) == ["bicubic", "srcnn", "vdsr", "srresnet", "rrdb", "edsr", "rdn", "lapsrn", "tsrn"]
    assert jobs["bicubic"].train is None
    losses = {k: j.train.loss.name for k, j in jobs.items() if j.train}
    assert losses == {"srcnn": "l2", "vdsr": "l2", "srresnet": "srresnet_loss", "rrdb": "l1", "edsr": "l1",
                      "rdn": "l1", "lapsrn": "charbonnier", "tsrn": "tsrn_loss"}
    # No VGG weights in the isolated home: the perceptual term is dropped *and said*.
    assert jobs["srresnet"].train.loss.params == {"perceptual_weight": 0.0}
    assert "perceptual" in jobs["srresnet"].notes[0]
    assert all(j.eval.judges == ["ppocr"] for j in jobs.values())
    assert jobs["tsrn"].train.steps == BUDGETS["smoke"].steps
    assert jobs["tsrn"].eval.tags == {"experiment": "table4", "budget": "smoke", "label": "tsrn"}


def test_table3_and_errors(catalog) -> None:  # noqa: ANN001
    assert [j.model for j in plan("table3", "synth", "smoke", catalog)] == ["srresnet", "tsrn_srb",
                                                                         "tsrn_srb_align", "tsrn"]
    with pytest.raises(ConfigError, match="unknown budget"):
        plan("table4", "synth", "huge", catalog)
    with pytest.raises(ConfigError, match="unknown benchmark"):
        plan("table4", "nosuch", "smoke", catalog)
    with pytest.raises(ConfigError, match="--only foo"):
        plan("table4", "synth", "smoke", catalog, only=["foo"])


def test_syn_vs_real_trains_on_both_lr_sources(catalog) -> None:  # noqa: ANN001
    jobs = plan("syn-vs-real", "synth", "smoke", catalog)
    assert [j.label for j in jobs] == ["tsrn:real-lr", "tsrn:bicubic-lr"]
    assert jobs[1].train.data.params.get("lr_source") == "bicubic"
    assert "lr_source" not in jobs[1].eval.data.params  # both are evaluated on real LR


def test_char_errors_marks_only_wrong_characters() -> None:
    assert char_errors("helo", "hello") == [False] * 4
    assert char_errors("hxllo", "Hello!") == [False, True, False, False, False]
    assert char_errors("ab", "") == [True, True]


def test_smoke_reproduction_to_report(catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    store = Store(f"sqlite:///{tmp_path / 'tz.db'}")
    jobs = plan("table4", "synth", "smoke", catalog, only=["bicubic", "srcnn"])
    eval_ids = run_plan(jobs, store, catalog, progress=False)
    assert len(eval_ids) == 2
    kinds = sorted(r.kind for r in store.list_runs())
    assert kinds == ["eval", "eval", "train"]
    assert store.count(Run) == 3

    rows = collect_rows(store, "synth", "table4", "smoke")
    assert {r.label for r in rows} == {"bicubic", "srcnn"}
    out = build_report(store, catalog, "synth", tmp_path / "rep", "table4", "smoke", grid_samples=4)
    names = {p.name for p in out.files}
    assert names == {"table4.md", "table4.csv", "fig2_ppocr.png", "grid_hard.png"}
    table = list(csv.DictReader(io.StringIO((tmp_path / "rep" / "table4.csv").read_text())))
    assert [r["model"] for r in table] == ["bicubic", "srcnn"]
    bic = next(r for r in rows if r.model == "bicubic")
    assert float(table[0]["ppocr avg"]) == pytest.approx(bic.average("ppocr") * 100)
    assert float(table[0]["ppocr Δ vs bicubic"]) == 0.0
    grid = Image.open(tmp_path / "rep" / "grid_hard.png")
    assert grid.width > 4 * 256 and grid.height > 4 * 64  # LR, 2 models, HR columns; 4 rows
    with pytest.raises(ConfigError, match="no finished"):
        build_report(store, catalog, "synth", tmp_path / "rep2", "table3", "smoke")
