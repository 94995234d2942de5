"""Safety: a non-finite loss stops the run with a clear message and a good checkpoint; Ctrl-C
checkpoints and marks the run interrupted; a torn or foreign checkpoint is refused."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from runner_helpers import SMALL, NaNAfter, NaNPlugin, cli, model_weights, start_tzbench, wait_for_checkpoint

from tzbench.catalog import Catalog
from tzbench.config import TrainConfig
from tzbench.db.store import Store
from tzbench.plugins import get_plugin_manager
from tzbench.runner.checkpoint import load_sr_checkpoint, read_checkpoint_meta, save_checkpoint
from tzbench.runner.context import RunError
from tzbench.runner.train import train


def _cfg(tmp_path: Path, **kw: object) -> TrainConfig:
    data = {"params": {"n_train": 48, "n_test": 8}, "batch_size": 8, "eval_batch_size": 8}
    return TrainConfig.model_validate({
        "model": {"name": "nanafter", "params": {"after": 5}}, "data": data, "steps": 20, "checkpoint_every": 2,
        "val_every": 100, "selection_judge": "psnr", "eval_after": False, "out_dir": str(tmp_path), **kw})


def test_nan_loss_stops_with_last_good_checkpoint(tmp_path: Path, db_url: str) -> None:
    catalog = Catalog(get_plugin_manager(extra_plugins=[NaNPlugin()]))
    store = Store(db_url)
    with pytest.raises(RunError) as info:
        train(_cfg(tmp_path), store, catalog, progress=False)
    msg = str(info.value)
    # Forward calls 1..5 (steps 0..4) are finite, call 6 (step 5) is NaN.
    assert "the training loss became nan at step 5" in msg
    assert "last good checkpoint" in msg and "(step 4)" in msg and "--resume" in msg
    run = store.list_runs("train")[0]
    assert run.status == "failed" and run.message == msg
    last = Path(run.config["run_dir"]) / "last.safetensors"
    assert read_checkpoint_meta(last)["step"] == 4
    assert all(torch.isfinite(v).all() for v in model_weights(last).values())
    # A training state also serves as a model checkpoint (tzbench eval/sr --checkpoint last.safetensors).
    fresh = NaNAfter()
    load_sr_checkpoint(last, fresh, "nanafter")
    assert torch.equal(fresh.conv.weight, model_weights(last)["conv.weight"])


def test_nan_before_any_checkpoint_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    # Adam with lr 1e9 blows the weights up in one update: the loss of step 1 is infinite.
    code, _, err = cli(["train", "srcnn", "--steps", "10", *SMALL, "--set", "optim.lr=1e9", "--set", "checkpoint_every=1",
                        "--set", "selection_judge=psnr", "--set", f"out_dir={tmp_path}", "--db", db, "--no-progress"],
                       capsys)
    assert code == 2
    assert "training loss became inf at step 1" in err and "no checkpoint was written" in err
    run = Store(db).list_runs("train")[0]
    assert run.status == "failed"
    # A checkpoint of weights that already gave an infinite loss is not "good": none was kept.
    assert not (Path(run.config["run_dir"]) / "last.safetensors").exists()


def test_ctrl_c_checkpoints_and_marks_interrupted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    proc = start_tzbench(["train", "srcnn", "--steps", "200", *SMALL, "--set", "checkpoint_every=2",
                          "--set", "selection_judge=psnr", "--set", "eval_after=false", "--set", f"out_dir={tmp_path}",
                          "--db", db, "--no-progress"], tmp_path)
    wait_for_checkpoint(proc, tmp_path)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    run = Store(db).list_runs("train")[0]
    assert run.status == "interrupted"
    assert f"--resume {run.id}" in run.message and "SIGINT" in run.message
    meta = json.loads((Path(run.config["run_dir"]) / "last.json").read_text())
    stopped_at = int(run.message.split("at step ")[1].split(";")[0])
    assert meta["step"] == stopped_at and 2 <= stopped_at < 200  # written on the way out, not the periodic one
    assert meta["kind"] == "training-state"
    # The interrupted run resumes (to a shorter total) and finishes in the same row.
    code, _, err = cli(["train", "srcnn", "--resume", str(run.id), "--steps", str(stopped_at + 1), "--db", db,
                        "--no-progress"], capsys)
    assert code == 0, err
    assert Store(db).get_run(run.id).status == "finished"


def test_torn_or_foreign_checkpoints_are_refused(tmp_path: Path) -> None:
    from tzbench.runner.checkpoint import CheckpointError, load_training_state

    model = torch.nn.Conv2d(3, 3, 1)
    path = save_checkpoint(tmp_path / "best", model.state_dict(), {"sr_model": "srcnn", "kind": "model"})
    with pytest.raises(CheckpointError, match="not of 'vdsr'"):
        load_sr_checkpoint(path, model, "vdsr")
    with pytest.raises(CheckpointError, match="not a training-state"):
        load_training_state(path)
    path.write_bytes(path.read_bytes()[:40])  # a torn file (what a non-atomic writer could leave)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_sr_checkpoint(path, model, "srcnn")


def test_loss_scale_multiplies_the_gradient_that_is_clipped(tmp_path: Path, db_url: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """TextZoom clips the gradient of loss*100 at 0.25: the scale must reach the clipped gradient."""
    norms: list[float] = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        total = real(params, max_norm, *a, **kw)
        norms.append(float(total))
        return total

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    store = Store(db_url)
    catalog = Catalog(get_plugin_manager())
    for scale in (1.0, 100.0):
        cfg = _cfg(tmp_path / str(scale), model={"name": "srcnn"}, steps=1,
                   optim={"grad_clip": 0.25, "loss_scale": scale})
        train(cfg, store, catalog, progress=False)
    assert len(norms) == 2 and norms[1] == pytest.approx(100 * norms[0], rel=1e-4)
    # The recorded loss stays the unscaled one.
    losses = [r.value for run in store.list_runs("train") for r in store.results(run.id, step=1) if r.metric == "loss"]
    assert len(losses) == 2 and losses[0] == pytest.approx(losses[1], rel=1e-6)


def test_reproduce_records_a_diverged_model_and_goes_on(tmp_path: Path, db_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from tzbench.report.reproduce import Job, run_plan

    monkeypatch.chdir(tmp_path)
    catalog = Catalog(get_plugin_manager(extra_plugins=[NaNPlugin()]))
    store = Store(db_url)
    from tzbench.config import EvalConfig

    bad = Job("nanafter", "nanafter", _cfg(tmp_path), EvalConfig(model={"name": "nanafter"}))
    good = Job("bicubic", "bicubic", None, EvalConfig(model={"name": "bicubic"}, data=_cfg(tmp_path).data,
                                                      judges=[], max_samples=4))
    ids = run_plan([bad, good], store, catalog, progress=False)
    assert len(ids) == 1 and store.get_run(ids[0]).sr_model == "bicubic"
    assert any("ended failed: not evaluated" in n for n in bad.notes)
    assert store.list_runs("train")[0].status == "failed"


def test_two_databases_sharing_runs_never_write_into_each_others_folder(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ids are per DB: both first runs are id 1, and once both wrote runs/00001-srcnn/."""
    monkeypatch.chdir(tmp_path)
    args = ["train", "srcnn", "--steps", "2", "--no-progress", *SMALL, "--set", "val_every=2",
            "--set", "val_max_samples=2", "--set", "eval_after=false", "--set", "selection_judge=psnr"]
    assert cli([*args, "--db", f"sqlite:///{tmp_path / 'a.db'}"], capsys)[0] == 0
    first = Store(f"sqlite:///{tmp_path / 'a.db'}").get_run(1)
    before = Path(first.checkpoint).read_bytes()
    assert cli([*args, "--set", "seed=9", "--db", f"sqlite:///{tmp_path / 'b.db'}"], capsys)[0] == 0
    second = Store(f"sqlite:///{tmp_path / 'b.db'}").get_run(1)
    assert Path(first.checkpoint).parent.name == "00001-srcnn"
    assert Path(second.checkpoint).parent.name == "00001-srcnn-2"
    assert Path(first.checkpoint).read_bytes() == before  # untouched, its recorded sha256 still true
    from tzbench.weights import sha256_file

    assert first.checkpoint_sha256 == sha256_file(first.checkpoint)
    assert Path(second.checkpoint).is_absolute() and Path(first.checkpoint).is_absolute()


def _broken_srcnn(tmp_path: Path, how: str) -> Path:
    net = torch.nn.Module()
    from tzbench.api import get_catalog

    net = get_catalog().create("sr-models", "srcnn", {})
    state = net.state_dict()
    if how == "nan":
        state = {k: torch.full_like(v, float("nan")) for k, v in state.items()}
    else:  # integer weights
        state = {k: v.round().long() for k, v in state.items()}
    return save_checkpoint(tmp_path / f"srcnn-{how}", state, {"sr_model": "srcnn", "params": {}, "kind": "model"})


def test_nan_weights_stop_eval_and_sr_at_the_first_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """NaN weights once ran the whole eval, then failed on 'NOT NULL constraint failed', and sr
    wrote black PNGs with exit 0."""
    ckpt = _broken_srcnn(tmp_path, "nan")
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    code, _, err = cli(["eval", "srcnn", "--checkpoint", str(ckpt), "--db", db, "--no-progress", "--max-samples", "4",
                        "--set", "judges=[ppocr]", "--set", "data.params.n_test=8"], capsys)
    assert code == 2 and "output NaN or inf for 4 of 4 images in easy" in err
    (run,) = Store(db).list_runs("eval")
    assert run.status == "failed" and Store(db).results(run.id) == []
    crop = tmp_path / "crop.png"
    from PIL import Image

    Image.new("RGB", (64, 16), (200, 200, 200)).save(crop)
    code, _, err = cli(["sr", str(crop), "--model", "srcnn", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o")],
                       capsys)
    assert code == 2 and "NaN or inf" in err and not (tmp_path / "o" / "crop.png").exists()


def test_integer_weights_are_refused_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _broken_srcnn(tmp_path, "int")
    code, _, err = cli(["eval", "srcnn", "--checkpoint", str(ckpt), "--db", f"sqlite:///{tmp_path / 'tz.db'}",
                        "--no-progress", "--set", "judges=[ppocr]"], capsys)
    assert code == 2 and "holds torch.int64 values, the model expects floating point" in err and "conv1" in err
    from tzbench.weights import WeightsError, load_strict

    net = torch.nn.Linear(2, 2)
    with pytest.raises(WeightsError, match="key 'weight' holds torch.int64"):
        load_strict(net, {"weight": torch.zeros(2, 2, dtype=torch.long), "bias": torch.zeros(2)}, source="x.pth")


def test_unwritable_out_dir_fails_the_row_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The row was left 'running' and later mislabelled 'the process died'."""
    blocker = tmp_path / "runs"
    blocker.write_text("a file where the run folders should go")
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    code, _, err = cli(["train", "srcnn", "--steps", "2", *SMALL, "--set", f"out_dir={blocker}", "--set",
                        "selection_judge=psnr", "--set", "eval_after=false", "--db", db, "--no-progress"], capsys)
    assert code == 2 and f"out_dir {blocker}: cannot create the run folder" in err
    (run,) = Store(db).list_runs("train")
    assert run.status == "failed" and "cannot create the run folder" in run.message
    assert blocker.read_text() == "a file where the run folders should go"
    code, _, err = cli(["sr", str(blocker), "--model", "bicubic", "--out", str(blocker)], capsys)
    assert code == 2  # not an image; and --out a file is refused before any work
    img = tmp_path / "c.png"
    from PIL import Image

    Image.new("RGB", (30, 10)).save(img)
    code, _, err = cli(["sr", str(img), "--model", "bicubic", "--out", str(blocker)], capsys)
    assert code == 2 and "is a file, not a folder" in err and blocker.read_text().startswith("a file")


def test_lr_may_change_on_resume_only_after_a_nonfinite_stop(tmp_path: Path, db_url: str) -> None:
    """docs/runs.md: optim.lr / grad_clip may change on --resume only to continue a diverged run."""
    catalog = Catalog(get_plugin_manager(extra_plugins=[NaNPlugin()]))
    store = Store(db_url)
    with pytest.raises(RunError):
        train(_cfg(tmp_path), store, catalog, progress=False)  # NaN at step 5, last good state at 4
    (run,) = store.list_runs("train")
    slower = _cfg(tmp_path, optim={"lr": 1e-5})
    try:
        train(slower, store, catalog, resume=str(run.id), progress=False)
    except RunError as exc:  # it may diverge again; what matters is that the change was accepted
        assert "cannot resume" not in str(exc)
    assert store.get_run(run.id).config["resumes"][0]["changed"] == {"optim.lr": 1e-5}

    ok = _cfg(tmp_path / "b", model={"name": "srcnn"}, steps=4)
    train(ok, store, catalog, progress=False)
    finished = [r for r in store.list_runs("train") if r.sr_model == "srcnn"][0]
    with pytest.raises(RunError, match=r"cannot resume .*optim.lr: 0.001 -> 1e-05.*too after a non-finite loss"):
        train(_cfg(tmp_path / "b", model={"name": "srcnn"}, steps=6, optim={"lr": 1e-5}), store, catalog,
              resume=str(finished.id), progress=False)


def test_a_full_disk_while_checkpointing_fails_with_the_resume_hint(tmp_path: Path, db_url: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The run was marked failed with a bare OSError and no word on what to resume from."""
    import errno
    import importlib

    train_mod = importlib.import_module("tzbench.runner.train")  # the module; the package exports a function

    real, calls = train_mod.save_checkpoint, {"n": 0}

    def full_disk(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] > 2:  # the first "last" checkpoints fit, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(train_mod, "save_checkpoint", full_disk)
    store = Store(db_url)
    with pytest.raises(RunError, match=r"No space left on device.*last good checkpoint is .*--resume"):
        train(_cfg(tmp_path, model={"name": "srcnn"}, steps=10), store, get_catalog_default(), progress=False)
    (run,) = store.list_runs("train")
    assert run.status == "failed" and "fix the cause, then resume with: tzbench train srcnn --resume" in run.message
    assert read_checkpoint_meta(Path(run.config["run_dir"]) / "last.safetensors")["step"] in (2, 4)


def get_catalog_default() -> Catalog:
    return Catalog(get_plugin_manager())


def test_an_empty_subset_is_refused_not_recorded_as_nan() -> None:
    """An empty subset ran the whole evaluation, then failed on 'NOT NULL constraint failed'."""
    from tzbench.runner.evaluate import evaluate_model

    class Empty:
        def load(self, split: str, subset: str) -> list:
            return []

    with pytest.raises(RunError, match="the test subset 'hard' has no samples"):
        evaluate_model(torch.nn.Identity(), Empty(), ["hard"], [], torch.device("cpu"), progress=False)
