"""A run of a model with a text prior records which prior it used and its sha256."""

from __future__ import annotations

from pathlib import Path

import pytest
from runner_helpers import SMALL, cli

from tzbench.db.store import Store
from tzbench.weights import sha256_file


@pytest.mark.parametrize("model", ["tpgsr", "tatt"])
def test_a_text_prior_run_records_its_prior_and_sha256(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       model: str) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    code, out, err = cli(["train", model, "--steps", "1", *SMALL, "--set", "model.params.srb_nums=1",
                          "--set", "model.params.hidden_units=8", "--set", "eval_after=false",
                          "--set", "selection_judge=psnr", "--set", f"out_dir={tmp_path}", "--db", db,
                          "--no-progress"], capsys)
    assert code == 0, err + out
    prior = Store(db).list_runs("train")[0].config["prior"]
    assert prior["prior"] == "crnn_tz"
    assert prior["sha256"] == sha256_file(prior["weights"])  # the file the prior was built from


def test_a_model_without_a_prior_records_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    code, out, err = cli(["train", "srcnn", "--steps", "1", *SMALL, "--set", "eval_after=false",
                          "--set", "selection_judge=psnr", "--set", f"out_dir={tmp_path}", "--db", db,
                          "--no-progress"], capsys)
    assert code == 0, err + out
    assert "prior" not in Store(db).list_runs("train")[0].config
