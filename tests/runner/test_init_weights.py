"""Fine-tuning: `init` starts a run from given weights (a checkpoint or the shipped ones), records
the file and its sha256, and refuses a source that is missing or made for another model."""

from __future__ import annotations

from pathlib import Path

import pytest
from runner_helpers import SMALL, cli
from safetensors.torch import load_file

import tzbench
from tzbench.api import get_catalog
from tzbench.db.store import Store
from tzbench.pretrained import pick_pretrained, pretrained_path
from tzbench.runner.checkpoint import save_checkpoint

QUICK = [*SMALL, "--steps", "1", "--set", "eval_after=false", "--set", "selection_judge=psnr", "--no-progress"]
TINY_LR = ["--set", "optim.lr=1e-9"]


def _train(tmp_path: Path, capsys: pytest.CaptureFixture[str], db: str, *extra: str) -> tuple[int, str]:
    code, out, err = cli(["train", "srcnn", *QUICK, "--set", f"out_dir={tmp_path / 'runs'}", "--db", db, *extra],
                         capsys)
    return code, err + out


def test_a_fine_tuning_run_starts_from_the_given_checkpoint_and_records_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    code, out = _train(tmp_path, capsys, db, "--set", "seed=1")
    assert code == 0, out
    first = Store(db).list_runs("train")[0]
    start = Path(first.config["run_dir"])
    # At lr 1e-9 one step cannot move the weights visibly: the best checkpoint is the start.
    code, out = _train(tmp_path, capsys, db, "--set", f"init={start}", *TINY_LR)
    assert code == 0, out
    second = next(r for r in Store(db).list_runs("train") if r.id != first.id)
    init = second.config["init_weights"]
    assert init["path"] == str((start / "best.safetensors").resolve())
    assert init["from_run"] == first.id
    assert init["sha256"] == tzbench.weights.sha256_file(start / "best.safetensors")
    a, b = load_file(start / "best.safetensors"), load_file(Path(second.config["run_dir"]) / "best.safetensors")
    assert a.keys() == b.keys() and max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    # The checkpoint's .json or stem names the same file, as a checkpoint path does everywhere else.
    for alias in (start / "best.json", start / "best"):
        code, out = _train(tmp_path, capsys, db, "--set", f"init={alias}", *TINY_LR)
        assert code == 0, out
        run = max(Store(db).list_runs("train"), key=lambda r: r.id)
        assert run.config["init_weights"]["path"] == init["path"]
    # The same run from scratch ends elsewhere: the agreement above is the init's doing.
    code, out = _train(tmp_path, capsys, db, *TINY_LR)
    assert code == 0, out
    third = max(Store(db).list_runs("train"), key=lambda r: r.id)
    c = load_file(Path(third.config["run_dir"]) / "best.safetensors")
    assert max((a[k] - c[k]).abs().max().item() for k in a) > 1e-3
    assert "init_weights" not in third.config


def test_a_fine_tuning_run_never_selects_worse_than_its_start(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    code, out = _train(tmp_path, capsys, db, "--set", "init=pretrained:wild-cpu", *TINY_LR)
    assert code == 0, out
    start = Store(db).list_runs("train")[0]
    # One Adam step at lr 0.5 wrecks the trained weights: the start must stay the selected one.
    code, out = _train(tmp_path, capsys, db, "--set", "init=pretrained:wild-cpu", "--set", "optim.lr=0.5")
    assert code == 0, out
    run = max(Store(db).list_runs("train"), key=lambda r: r.id)
    psnr = {r.step: r.value for r in Store(db).results(run.id, step=None)
            if r.subset == "val" and r.metric == "psnr"}
    assert set(psnr) == {0, 1} and psnr[1] < psnr[0] - 1  # validated before the first step, and after it
    assert "selected step 0" in out
    a = load_file(Path(start.config["run_dir"]) / "best.safetensors")
    b = load_file(Path(run.config["run_dir"]) / "best.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6


def test_init_pretrained_starts_from_the_shipped_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    code, out = _train(tmp_path, capsys, db, "--set", "init=pretrained:wild-cpu", *TINY_LR)
    assert code == 0, out
    run = Store(db).list_runs("train")[0]
    shipped = pick_pretrained(get_catalog(), "srcnn", "wild-cpu")
    assert run.config["init_weights"]["path"] == str(pretrained_path(shipped).resolve())
    assert run.config["init_weights"]["sha256"] == shipped.sha256
    shipped_w = load_file(pretrained_path(shipped))
    got = load_file(Path(run.config["run_dir"]) / "best.safetensors")
    assert max((shipped_w[k] - got[k]).abs().max().item() for k in shipped_w) < 1e-6


def test_a_bad_init_is_refused_before_the_run_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    other = save_checkpoint(tmp_path / "vdsr", tzbench.create_sr_model("vdsr", num_layers=2).state_dict(),
                            {"sr_model": "vdsr", "params": {"num_layers": 2}, "kind": "model", "step": 1})
    cases = {str(tmp_path / "missing.safetensors"): "missing.safetensors: no such checkpoint file",
             "pretrained:paper": "no pretrained weights tagged 'paper'",
             str(other): "is a checkpoint of 'vdsr', not of 'srcnn'"}
    for source, message in cases.items():
        code, out = _train(tmp_path, capsys, db, "--set", f"init={source}")
        assert code == 2, out
        assert message in out and "Traceback" not in out
    assert Store(db).list_runs() == []
