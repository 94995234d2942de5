"""RunRecorder: the one writer of run rows for train, eval and train-recognizer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tzbench
from tzbench.db.store import ResultRow, Store
from tzbench.runner.context import RunError
from tzbench.runner.recorder import RunRecorder
from tzbench.weights import sha256_file


def _start(store: Store, **fields: object) -> RunRecorder:
    return RunRecorder.start(store, kind="train-recognizer", device=torch.device("cpu"), config={"steps": 3},
                             sr_model="crnn_tz", benchmark="synth", protocol="clean", comparable=False, seed=7,
                             **fields)


def test_start_records_config_and_provenance_then_finish_records_the_best_checkpoint(db_url: str,
                                                                                      tmp_path: Path) -> None:
    store = Store(db_url)
    rec = _start(store)
    run = rec.row()
    assert (run.kind, run.status, run.sr_model, run.seed, run.config) == ("train-recognizer", "running", "crnn_tz",
                                                                          7, {"steps": 3})
    assert (run.pid, run.host, run.device) == (os.getpid(), socket.gethostname(), "cpu")
    assert run.tzbench_version == tzbench.__version__ and run.torch_version == torch.__version__
    best = tmp_path / "best.safetensors"
    rec.update(checkpoint=str(best))
    assert rec.results([ResultRow("val", "crnn_tz", "accuracy", 0.25, 2, 8)]) == 1
    rec.results([ResultRow("val", "crnn_tz", "accuracy", 0.5, 2, 8)])  # the same key: replaced
    best.write_bytes(b"weights")
    rec.finish("finished", best_checkpoint=best, bad_samples=2)
    run = rec.row()
    assert (run.status, run.message, run.bad_samples) == ("finished", None, 2) and run.finished_at is not None
    assert (run.checkpoint, run.checkpoint_sha256) == (str(best), sha256_file(best))
    assert [(r.metric, r.value, r.step) for r in store.results(rec.run_id, step=None)] == [("accuracy", 0.5, 2)]


def test_finish_without_a_saved_model_clears_the_checkpoint(db_url: str, tmp_path: Path) -> None:
    store = Store(db_url)
    rec = _start(store, checkpoint=str(tmp_path / "best.safetensors"))
    rec.finish("interrupted", "interrupted at step 0", best_checkpoint=tmp_path / "best.safetensors")
    run = rec.row()
    assert (run.status, run.message, run.checkpoint, run.checkpoint_sha256) == (
        "interrupted", "interrupted at step 0", None, None)


@pytest.mark.parametrize(("exc", "status", "message"), [
    (KeyboardInterrupt(), "interrupted", "KeyboardInterrupt: "),
    (ValueError("bad batch"), "failed", "ValueError: bad batch"),
])
def test_abort_records_interrupted_or_failed_with_the_exception(exc: BaseException, status: str, message: str,
                                                                db_url: str) -> None:
    rec = _start(Store(db_url))
    assert rec.abort(exc) == status
    assert (rec.row().status, rec.row().message) == (status, message)
    assert rec.abort(exc, "interrupted by the user") == status and rec.row().message == "interrupted by the user"


def test_reopen_refuses_a_run_whose_process_is_alive_and_restart_takes_it_over(db_url: str) -> None:
    store = Store(db_url)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_id = store.start_run(kind="train", sr_model="srcnn", benchmark="synth", config={}, pid=other.pid)
        with pytest.raises(RunError, match=rf"run {run_id} is still running \(pid {other.pid}\)"):
            RunRecorder.reopen(store, run_id)
    finally:
        other.kill()
        other.wait()
    store.finish_run(run_id, "failed", message="the process died")
    rec = RunRecorder.reopen(store, run_id)
    rec.restart({"steps": 9})
    run = rec.row()
    assert (run.status, run.message, run.finished_at, run.pid, run.config) == ("running", None, None, os.getpid(),
                                                                               {"steps": 9})
