"""A run folder's records: train.log, metrics.jsonl, plain progress lines, the running-mean loss
in the DB, and absolute checkpoint paths that work from any folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from runner_helpers import SMALL, cli

from tzbench.db.store import Store
from tzbench.runner import records
from tzbench.runner.records import RunningMean, format_duration, read_metrics

TINY = [*SMALL, "--set", "val_every=3", "--set", "eval_after=false", "--set", "selection_judge=psnr",
        "--set", "deterministic=true", "--no-progress"]


def _train(args: list[str], db: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, Path]:
    code, out, err = cli(["train", "srcnn", *args, "--db", db], capsys)
    assert code == 0, err + out
    run = Store(db).list_runs("train")[0]
    return out, Path(run.config["run_dir"])


def test_log_history_and_progress_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    # Reference: the same deterministic run recording every step's loss.
    _, each = _train(["--steps", "6", *TINY, "--set", f"out_dir={tmp_path / 'each'}", "--log-every", "1"], db, capsys)
    per_step = {r["step"]: r for r in read_metrics(each / "metrics.jsonl") if r["kind"] == "train"}
    assert sorted(per_step) == [1, 2, 3, 4, 5, 6]

    db2 = f"sqlite:///{tmp_path / 'b.db'}"
    out, run_dir = _train(["--steps", "6", *TINY, "--set", f"out_dir={tmp_path / 'two'}", "--log-every", "2"],
                          db2, capsys)
    # Not a terminal: plain progress lines every 2 steps (step/total, loss mean, lr, s/step, ETA).
    lines = [ln for ln in out.splitlines() if ln.startswith("train srcnn step ")]
    assert [ln.split()[3] for ln in lines] == ["2/6", "4/6", "6/6"]
    assert all(" loss " in ln and " lr 0.001 " in ln and " s/step ETA " in ln for ln in lines)
    assert "train srcnn validation at step 3: val: psnr=" in out

    hist = read_metrics(run_dir / "metrics.jsonl")
    train = {r["step"]: r for r in hist if r["kind"] == "train"}
    assert sorted(train) == [2, 4, 6]
    for s in (2, 4, 6):  # the running mean over the last 2 steps, and each term's
        want = (per_step[s - 1]["loss"] + per_step[s]["loss"]) / 2
        assert train[s]["loss"] == pytest.approx(want, rel=1e-6)
        assert train[s]["terms"]["mse"] == pytest.approx(want, rel=1e-6)  # l2's one term is the loss
        assert train[s]["lr"] == pytest.approx(1e-3)
        assert train[s]["s_per_step"] > 0
    vals = [r for r in hist if r["kind"] == "val"]
    assert [r["step"] for r in vals] == [3, 6]
    assert set(vals[0]["metrics"]["val"]) == {"n", "psnr", "ssim"}

    # The DB's train loss at a validation step is that running mean, not one batch's loss.
    rows = {(r.metric, r.step): r for r in Store(db2).results(Store(db2).list_runs("train")[0].id, None)
            if r.subset == "train"}
    assert rows[("loss", 3)].value == pytest.approx((per_step[2]["loss"] + per_step[3]["loss"]) / 2, rel=1e-6)
    assert rows[("loss", 3)].n_samples == 2 * 8
    assert rows[("loss", 6)].value == pytest.approx(train[6]["loss"], rel=1e-6)
    psnr_3 = next(r for r in Store(db2).results(Store(db2).list_runs("train")[0].id, None)
                  if (r.subset, r.metric, r.step) == ("val", "psnr", 3))
    assert vals[0]["metrics"]["val"]["psnr"] == pytest.approx(psnr_3.value)

    log = (run_dir / "train.log").read_text()
    assert "tzbench train srcnn: run 1, 6 steps, folder " in log
    for ln in lines:  # what the user saw, timestamped
        assert ln in log
    assert "validation at step 6" in log and "run 1 finished at step 6" in log


def test_resume_appends_to_log_and_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    _, run_dir = _train(["--steps", "4", *TINY, "--set", f"out_dir={tmp_path}", "--log-every", "2"], db, capsys)
    first_log = (run_dir / "train.log").read_text()
    first_hist = (run_dir / "metrics.jsonl").read_text()
    code, out, err = cli(["train", "srcnn", "--resume", "1", "--steps", "6", "--db", db, "--no-progress",
                          "--log-every", "2"], capsys)
    assert code == 0, err + out
    log = (run_dir / "train.log").read_text()
    assert log.startswith(first_log)  # appended, never truncated
    assert "run 1 resumed at step 4" in log[len(first_log):] and "run 1 finished at step 6" in log[len(first_log):]
    hist = (run_dir / "metrics.jsonl").read_text()
    assert hist.startswith(first_hist)
    added = [json.loads(x) for x in hist[len(first_hist):].splitlines()]
    assert added[0]["kind"] == "resume" and added[0]["step"] == 4
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == "train"] == [2, 4, 6]


def test_checkpoint_paths_are_absolute(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(work)
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    _, run_dir = _train(["--steps", "3", *TINY, "--set", "out_dir=runs"], db, capsys)
    rel = os.path.relpath(run_dir / "best.safetensors", work)
    assert not Path(rel).is_absolute()
    code, out, err = cli(["eval", "srcnn", "--checkpoint", rel, "--db", db, "--no-progress", "--max-samples", "2",
                          "--set", "judges=[]"], capsys)
    assert code == 0, err + out
    # Resuming by a relative folder keeps the recorded folder absolute too.
    code, out, err = cli(["train", "srcnn", "--resume", os.path.relpath(run_dir, work), "--steps", "4", "--db", db,
                          "--no-progress"], capsys)
    assert code == 0, err + out
    monkeypatch.chdir(elsewhere)  # what `tzbench report` run from another folder reads
    store = Store(db)
    for run in store.list_runs():
        assert run.checkpoint and Path(run.checkpoint).is_absolute() and Path(run.checkpoint).is_file(), run.kind


def test_a_line_at_least_every_30_seconds(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "LINE_EVERY_S", 0.0)  # every step is "30 s later"
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    out, run_dir = _train(["--steps", "3", *TINY, "--set", f"out_dir={tmp_path}", "--log-every", "100"], db, capsys)
    steps = [ln.split()[3] for ln in out.splitlines() if ln.startswith("train srcnn step ")]
    assert steps == ["1/3", "2/3", "3/3"]
    # The history keeps its cadence (every 100 steps, and the last step).
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == "train"] == [3]


def test_running_mean_window_and_helpers(tmp_path: Path) -> None:
    m = RunningMean(3)
    for v in (1.0, 2.0, 3.0, 10.0):
        m.push({"loss": v})
    assert m.mean("loss") == pytest.approx(5.0) and m.count("loss") == 3
    assert m.mean("other") != m.mean("other")  # NaN before any value
    assert [format_duration(x) for x in (5, 185, 7620)] == ["5s", "3m05s", "2h07m"]
    f = tmp_path / "m.jsonl"
    f.write_text('{"kind": "train", "step": 2, "loss": 1}\n{"kind": "train", "step": 4, "loss": 2}\n'
                 '{"kind": "resume", "step": 2}\n{"kind": "train", "step": 4, "loss": 3}\n'
                 '{"kind": "val", "step": 4, "metrics": {}}\n')
    assert [(r["kind"], r["step"], r.get("loss")) for r in read_metrics(f)] == [
        ("train", 2, 1), ("train", 4, 3), ("val", 4, None)]


def test_on_a_terminal_the_bar_replaces_the_lines_but_the_log_keeps_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "progress_mode", lambda progress: "bar" if progress else "lines")
    rec = records.TrainRecords(tmp_path, "train x", 4, 0, 2, progress=True)
    assert rec.mode == "bar"
    with rec:
        rec.start({"start_step": 0}, "header line")
        for s in range(1, 5):
            rec.step(s, float(s), {"mse": float(s)}, 1e-3)
        rec.validation(4, {"val": {"psnr": 20.0, "n": 2.0}}, "psnr", 20.0, True)
    rec.close("the end")
    out = capsys.readouterr().out
    assert "train x step 2/4" not in out and "train x validation at step 4" in out  # the bar, plus events
    log = (tmp_path / records.TRAIN_LOG).read_text()
    assert "train x step 2/4 (50%) loss 1.50000 lr 0.001" in log and "train x step 4/4 (100%) loss 3.50000" in log
    assert log.splitlines()[-1].endswith(" the end")
    assert records.progress_mode(False) == "lines"


def test_the_final_eval_is_in_the_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    _, run_dir = _train(["--steps", "2", *SMALL, "--set", "val_every=2", "--set", "selection_judge=psnr",
                         "--set", "judges=[]", "--set", f"out_dir={tmp_path}", "--no-progress"], db, capsys)
    eval_run = Store(db).list_runs("eval")[0]
    log = (run_dir / "train.log").read_text()
    for r in Store(db).results(eval_run.id):
        assert f"final eval (run {eval_run.id}): {r.subset} {r.recognizer} {r.metric}={r.value:.4f}" in log
    assert "final eval" in log.splitlines()[-1]


def test_eval_without_a_terminal_prints_progress_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An eval in a log gets a line per subset start and end, and one at least every 30 s between."""
    import importlib

    ev = importlib.import_module("tzbench.runner.evaluate")  # the module, not runner's evaluate()
    monkeypatch.setattr(ev, "LINE_EVERY_S", 0.0)  # every batch is "30 s later"
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    code, out, err = cli(["eval", "bicubic", *SMALL, "--set", "data.params.n_test=20", "--set", "judges=[]",
                          "--db", db], capsys)
    assert code == 0, err + out
    lines = [ln for ln in out.splitlines() if ln.startswith("eval ")]
    for subset in ("easy", "medium", "hard"):
        mine = [ln for ln in lines if ln.startswith(f"eval {subset}")]
        assert mine[0] == f"eval {subset}: 20 pairs", lines
        assert [ln.split()[2] for ln in mine[1:]] == ["8/20", "16/20", "20/20"], lines
        assert "ETA" in mine[1] and "ETA" not in mine[-1] and "images/s" in mine[-1]
