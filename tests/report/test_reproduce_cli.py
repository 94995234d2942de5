"""The three experiments at the smoke budget through the CLI, as CI runs them: every row trained,
evaluated and recorded, shared trainings reused, and the report written from the store."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tzbench.cli import build_app
from tzbench.db import Store
from tzbench.plugins import get_plugin_manager


def _run(args: list[str]) -> str:
    res = CliRunner().invoke(build_app(get_plugin_manager()), args)
    assert res.exit_code == 0, res.output
    return res.output


ALL_TABLE4 = ["bicubic", "srcnn", "vdsr", "srresnet", "rrdb", "edsr", "rdn", "lapsrn", "tsrn"]
#: The rows table3 and syn-vs-real reuse, plus one baseline: the default run's share of table4.
#: RRDB, EDSR and RDN (16-41M params) cost most of the full run's time, and every model's
#: training is proved on its own by tests/runner/test_pipeline_interpolation.py.
CORE_TABLE4 = ["bicubic", "srcnn", "srresnet", "tsrn"]


@pytest.mark.parametrize("models", [
    pytest.param(CORE_TABLE4, id="core-rows"),
    pytest.param(ALL_TABLE4, id="every-row", marks=pytest.mark.slow),
])
def test_smoke_reproduction_of_every_experiment(models: list[str], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    common = ["--benchmark", "synth", "--budget", "smoke", "--db", db, "--no-progress"]
    only = [] if models == ALL_TABLE4 else [a for m in models for a in ("--only", m)]
    _run(["reproduce", "table4", *common, *only, "--report", str(tmp_path / "rep")])
    store = Store(db)
    assert sorted(r.sr_model for r in store.list_runs(kind="eval")) == sorted(models)
    assert sorted(r.sr_model for r in store.list_runs(kind="train")) == sorted(models[1:])
    site = tmp_path / "rep"  # the HTML site: one folder per report, index.html over them
    assert (site / "index.html").is_file() and (site / "synth-table4-smoke-clean" / "index.html").is_file()
    table = list(csv.DictReader((site / "synth-table4-smoke-clean" / "table4.csv").open()))
    assert [row["model"] for row in table] == models  # the paper's row order
    assert all(0.0 <= float(row["ppocr avg"]) <= 100.0 for row in table)

    table4_trains = {r.sr_model: r.id for r in store.list_runs(kind="train")}

    def parents(experiment: str) -> dict[str, int]:
        return {r.config["tags"]["label"]: r.parent_id for r in store.list_runs(kind="eval")
                if r.config["tags"]["experiment"] == experiment}

    _run(["reproduce", "table3", *common, "--report", str(tmp_path / "rep")])
    table3 = parents("table3")  # srresnet and tsrn are table4's trainings, evaluated again
    assert table3["srresnet"] == table4_trains["srresnet"] and table3["tsrn"] == table4_trains["tsrn"]
    assert table3["tsrn_srb"] not in table4_trains.values()
    _run(["reproduce", "syn-vs-real", *common, "--report", str(tmp_path / "rep")])
    syn = parents("syn-vs-real")  # real-LR tsrn is table4's
    assert syn["tsrn:real-lr"] == table4_trains["tsrn"] and syn["tsrn:bicubic-lr"] != table4_trains["tsrn"]
    trains = store.list_runs(kind="train")
    assert sorted(r.sr_model for r in trains) == sorted([*models[1:], "tsrn_srb", "tsrn_srb_align", "tsrn"])
    bicubic_lr = [r for r in trains if (r.config["data"]["params"] or {}).get("lr_source") == "bicubic"]
    assert [r.sr_model for r in bicubic_lr] == ["tsrn"]
    table3 = list(csv.DictReader((site / "synth-table3-smoke-clean" / "table3.csv").open()))
    assert [row["model"] for row in table3] == ["srresnet", "tsrn_srb", "tsrn_srb_align", "tsrn"]
    syn = list(csv.DictReader((site / "synth-syn-vs-real-smoke-clean" / "syn-vs-real.csv").open()))
    assert sorted(row["model"] for row in syn) == ["tsrn:bicubic-lr", "tsrn:real-lr"]
    index = (site / "index.html").read_text(encoding="utf-8")  # each reproduce added its report to the site
    assert all(f'href="synth-{e}-smoke-clean/index.html"' in index for e in ("table4", "table3", "syn-vs-real"))

    # Running table4 again redoes nothing.
    before = len(store.list_runs(limit=1000))
    _run(["reproduce", "table4", *common, *only])
    assert len(store.list_runs(limit=1000)) == before
