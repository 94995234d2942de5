"""The built-in ``tensorboard`` logger: a tiny training run, its event file read back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from runner_helpers import SMALL, cli, model_weights, start_tzbench, wait_for_checkpoint

from tzbench.db.store import Store
from tzbench.runner.checkpoint import read_checkpoint_meta
from tzbench.runner.records import read_metrics


def test_tensorboard_events_hold_losses_lr_metrics_and_a_grid(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    db = f"sqlite:///{tmp_path / 'tz.db'}"
    args = ["train", "srcnn", "--steps", "4", *SMALL, "--set", "val_every=2", "--set", "eval_after=false",
            "--set", "selection_judge=psnr", "--set", "deterministic=true", "--db", db, "--no-progress",
            "--log-every", "2"]
    code, out, err = cli([*args, "--set", f"out_dir={tmp_path / 'plain'}"], capsys)
    assert code == 0, err + out
    code, out, err = cli([*args, "--set", f"out_dir={tmp_path / 'tb'}", "--logger", "tensorboard"], capsys)
    assert code == 0, err + out
    plain_dir, run_dir = (Path(r.config["run_dir"]) for r in reversed(Store(db).list_runs("train")))
    # The logger (its sample-grid forward included) changes nothing the run computes.
    plain, logged = model_weights(plain_dir / "last.safetensors"), model_weights(run_dir / "last.safetensors")
    assert all(torch.equal(plain[k], logged[k]) for k in plain)
    assert Store(db).list_runs("train")[0].config["records"] == {"log_every": 2, "loggers": ["tensorboard"]}
    events = sorted((run_dir / "tb").glob("events.out.tfevents.*"))
    assert len(events) == 1

    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"train/loss", "train/loss/mse", "train/lr", "train/s_per_step", "val/psnr", "val/ssim"} <= set(tags["scalars"])
    hist = read_metrics(run_dir / "metrics.jsonl")
    train = {r["step"]: r for r in hist if r["kind"] == "train"}
    val = {r["step"]: r["metrics"]["val"] for r in hist if r["kind"] == "val"}
    loss = {e.step: e.value for e in acc.Scalars("train/loss")}
    assert sorted(loss) == [2, 4]
    for s in (2, 4):  # the same running means as metrics.jsonl (float32 in the event file)
        assert loss[s] == pytest.approx(train[s]["loss"], rel=1e-5)
    assert [(e.step, pytest.approx(e.value)) for e in acc.Scalars("train/lr")] == [(2, 1e-3), (4, 1e-3)]
    psnr = {e.step: e.value for e in acc.Scalars("val/psnr")}
    assert sorted(psnr) == [2, 4] and psnr[4] == pytest.approx(val[4]["psnr"], rel=1e-5)
    assert "val/samples" in tags["images"]
    images = acc.Images("val/samples")
    assert [im.step for im in images] == [2, 4]
    # rows bicubic LR / SR / HR of 2 val pairs: 3 x 32 px high, 2 x 128 px wide, padding 2
    assert (images[0].height, images[0].width) == (3 * 34 + 2, 2 * 130 + 2)
    assert images[0].encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_killed_and_resumed_run_keeps_one_event_per_step(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    db = f"sqlite:///{tmp_path / 'tz.db'}"
    logging = ["--db", db, "--no-progress", "--log-every", "1", "--logger", "tensorboard"]
    # val_every=1: each validation flushes the events, so the killed run leaves steps past its checkpoint.
    proc = start_tzbench(["train", "srcnn", "--steps", "200", *SMALL, "--set", "val_every=1", "--set", "checkpoint_every=3",
                          "--set", "eval_after=false", "--set", "selection_judge=psnr", "--set", "val_max_samples=2",
                          "--set", f"out_dir={tmp_path}", *logging], tmp_path)
    wait_for_checkpoint(proc, tmp_path)
    run_dir = next(tmp_path.glob("*-srcnn"))
    # Killed one step after a checkpoint (every 3 steps), two steps before the next one.
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120 and proc.poll() is None:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        steps = [json.loads(x)["step"] for x in lines[:-1] if '"kind": "train"' in x]  # the last may be partial
        if steps and steps[-1] > 3 and steps[-1] % 3 == 1:
            break
        time.sleep(0.01)
    proc.kill()
    proc.communicate()
    ckpt_step = read_checkpoint_meta(run_dir / "last.safetensors")["step"]
    written = [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == "train"]
    assert max(written) > ckpt_step  # steps the resumed run computes again
    end = max(written) + 2
    code, out, err = cli(["train", "srcnn", "--resume", "1", "--steps", str(end), *logging], capsys)
    assert code == 0, err + out
    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    events = acc.Scalars("train/loss")
    assert [e.step for e in events] == list(range(1, end + 1))  # no step twice, none lost
    hist = {r["step"]: r["loss"] for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == "train"}
    assert [e.value for e in events] == [pytest.approx(hist[s], rel=1e-5) for s in range(1, end + 1)]


def test_a_resumed_writer_sorts_after_a_file_from_the_same_second(tmp_path: Path) -> None:
    # CI saw a run killed and resumed within one second: the resumed file then sorted by pid, before the
    # killed run's file, so TensorBoard purged nothing and showed steps 4, 5, 6, 1, 2, 3, 4.
    from tzbench_loggers.tensorboard import TensorBoardLogger

    tb = tmp_path / "tb"
    tb.mkdir()
    old = tb / f"events.out.tfevents.{int(time.time()) + 1}.host.99999.0"
    old.write_bytes(b"")
    logger = TensorBoardLogger(tmp_path)
    logger.on_start({"start_step": 3, "run_id": 1, "model": "srcnn", "steps": 6})
    logger.on_end()
    files = sorted(tb.glob("events.out.tfevents.*"))
    assert len(files) == 2
    assert files[0] == old
