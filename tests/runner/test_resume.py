"""Resume: a SIGKILLed training run, resumed, ends with exactly the weights and results of an
uninterrupted run; its row goes running -> failed (reaped) -> running -> finished."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from runner_helpers import SMALL, cli, model_weights, runs_json, start_tzbench, wait_for_checkpoint

from tzbench.db.store import Store

STEPS = 12
# Deterministic mode; checkpoints every 3 steps, validation every 4 (so a resume from step 3
# re-validates step 4 and must overwrite, not duplicate, the killed run's rows).
RUN = ["train", "srcnn", "--steps", str(STEPS), *SMALL, "--set", "checkpoint_every=3", "--set", "val_every=4",
       "--set", "deterministic=true", "--set", "eval_after=false", "--set", "selection_judge=psnr", "--no-progress"]


def _rows(store: Store, run_id: int) -> dict[tuple[str, str, str, int], float]:
    rows = store.results(run_id, step=None)
    keys = [(r.subset, r.recognizer, r.metric, r.step) for r in rows]
    assert len(keys) == len(set(keys)), f"duplicated result rows: {keys}"
    return {(r.subset, r.recognizer, r.metric, r.step): r.value for r in rows}


#: The cpu recipe's schedule and weight average: both must resume exactly too.
CPU_TOOLS = ["--set", "optim.schedule=cosine", "--set", "optim.warmup_steps=4", "--set", "optim.ema_decay=0.9"]


@pytest.mark.parametrize("tools", [[], CPU_TOOLS], ids=["constant", "cosine_ema"])
def test_sigkill_then_resume_equals_uninterrupted(tools: list[str], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"

    code, _, err = cli([*RUN, *tools, "--db", db, "--set", f"out_dir={full_dir}"], capsys)
    assert code == 0, err
    (full_run,) = [r for r in runs_json(db, capsys) if r["kind"] == "train"]

    proc = start_tzbench([*RUN, *tools, "--db", db, "--set", f"out_dir={killed_dir}"], tmp_path)
    meta = wait_for_checkpoint(proc, killed_dir)
    os.kill(proc.pid, signal.SIGSTOP)  # freeze it mid-run, then check that it really is mid-run
    assert proc.poll() is None and 3 <= meta["step"] < STEPS, meta["step"]
    proc.kill()
    proc.wait()
    killed_id = meta["run_id"]
    kill_step = json.loads(next(killed_dir.glob("*/last.json")).read_text())["step"]
    assert kill_step < STEPS

    store = Store(db)
    assert store.get_run(killed_id).status == "running"  # what a dead process leaves behind
    listed = {r["id"]: r["status"] for r in runs_json(db, capsys)}
    assert listed[killed_id] == "failed"  # reaped by `runs list`
    assert "died" in (store.get_run(killed_id).message or "")

    # The config comes from the checkpoint: no --set needed, only the run id.
    code, out, err = cli(["train", "srcnn", "--resume", str(killed_id), "--db", db, "--no-progress"], capsys)
    assert code == 0, err + out
    run = store.get_run(killed_id)
    assert (run.status, run.message, run.pid) == ("finished", None, os.getpid())
    assert [r["step"] for r in run.config["resumes"]] == [kill_step]
    assert len(store.list_runs("train")) == 2  # resuming added no run

    full = model_weights(Path(full_run["checkpoint"]).parent / "last.safetensors")
    resumed = model_weights(Path(run.config["run_dir"]) / "last.safetensors")
    assert full.keys() == resumed.keys()
    if tools:
        from safetensors.torch import load_file

        ema_full = {k: v for k, v in load_file(Path(full_run["checkpoint"]).parent / "last.safetensors").items()
                    if k.startswith("ema.")}
        ema_resumed = {k: v for k, v in load_file(Path(run.config["run_dir"]) / "last.safetensors").items()
                       if k.startswith("ema.")}
        assert ema_full and ema_full.keys() == ema_resumed.keys()
        for k in ema_full:
            assert torch.equal(ema_full[k], ema_resumed[k]), k
    for k in full:
        assert torch.equal(full[k], resumed[k]), k

    a, b = _rows(store, full_run["id"]), _rows(store, killed_id)
    assert a.keys() == b.keys()
    assert {k[3] for k in a if k[0] == "val"} == {4, 8, 12}
    for k in a:
        if k[2] != "seconds":  # wall time differs; everything else is bit-identical
            assert a[k] == b[k], k


def test_a_checkpoint_from_before_a_new_config_field_still_resumes() -> None:
    from tzbench.config import TrainConfig
    from tzbench.runner.resume import config_changes

    new = TrainConfig.model_validate({"model": {"name": "srcnn"}}).model_dump(mode="json")
    old = {k: v for k, v in new.items() if k not in ("compile", "init")}  # written before those fields existed
    assert config_changes(old, new) == {}
    assert config_changes(old, {**new, "compile": True}) == {"compile": (False, True)}
    assert config_changes({**old, "steps": 5}, new) == {"steps": (5, new["steps"])}
    nested = {**new, "optim": {k: v for k, v in new["optim"].items() if k != "min_lr_ratio"}}
    assert config_changes(nested, new) == {}  # a nested field it predates counts as its default too
