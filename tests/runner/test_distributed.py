"""Data parallel: 2 gloo processes (``--nproc 2``, i.e. torchrun + DDP) train to the same weights
as 1 process with the doubled batch; only rank 0 records. AMP/compile flags on the CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from runner_helpers import SMALL, cli, model_weights, sub_env
from safetensors.torch import load_file

from tzbench.db.store import Store
from tzbench.runner.precision import cpu_compiler

COMMON = ["--steps", "4", "--set", "data.params.n_train=48", "--set", "data.params.n_test=8",
          "--set", "data.eval_batch_size=8", "--set", "val_every=2", "--set", "checkpoint_every=2",
          "--set", "eval_after=false", "--set", "selection_judge=psnr", "--set", "deterministic=true",
          "--no-progress"]


def test_two_processes_equal_one_process_with_double_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    two = subprocess.run(
        [sys.executable, "-m", "tzbench", "train", "srcnn", "--nproc", "2", *COMMON, "--set", "data.batch_size=8",
         "--lr-source", "bicubic",
         "--set", f"out_dir={tmp_path / 'two'}", "--db", db],
        cwd=tmp_path, env=sub_env(), capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stdout + two.stderr
    code, _, err = cli(["train", "srcnn", *COMMON, "--set", "data.batch_size=16", "--lr-source", "bicubic", "--set",
                        f"out_dir={tmp_path / 'one'}", "--db", db], capsys)
    assert code == 0, err

    store = Store(db)
    runs = sorted(store.list_runs("train"), key=lambda r: r.id)
    assert len(runs) == 2, "the 2-process job must record exactly one run (rank 0)"
    ddp, single = runs
    assert ddp.config["runtime"]["world_size"] == 2 and ddp.config["runtime"]["global_batch_size"] == 16
    assert ddp.config["runtime"]["backend"] == "gloo"
    assert single.config["runtime"]["world_size"] == 1
    assert ddp.config["data"]["params"]["lr_source"] == single.config["data"]["params"]["lr_source"] == "bicubic"

    a = model_weights(Path(ddp.config["run_dir"]) / "last.safetensors")
    b = model_weights(Path(single.config["run_dir"]) / "last.safetensors")
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert diff <= 1e-5, diff
    # Every rank's RNG state is in the checkpoint, so a resume restores each rank exactly.
    assert {"rank0.rng.torch", "rank1.rng.torch"} <= set(load_file(Path(ddp.config["run_dir"]) / "last.safetensors"))

    # Same rows (only rank 0 wrote, none twice), and the all-reduced loss/val metrics agree.
    ra = {(r.subset, r.recognizer, r.metric, r.step): r for r in store.results(ddp.id, step=None)}
    rb = {(r.subset, r.recognizer, r.metric, r.step): r for r in store.results(single.id, step=None)}
    assert ra.keys() == rb.keys()
    for k in ra:
        if k[2] != "seconds":
            assert ra[k].value == pytest.approx(rb[k].value, rel=1e-5, abs=1e-5), k
            assert ra[k].n_samples == rb[k].n_samples, k


def test_nproc_workers_get_the_config_the_launcher_resolved(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """--nproc used to rebuild the workers' argv by hand and dropped --lr-source; the workers now
    read the launcher's resolved config, so they resolve exactly what --print-config shows."""
    import tzbench.cli.train as cli_train

    worker: dict[str, object] = {}

    def fake_torchrun(cmd: list[str]) -> int:  # what each worker runs, resolved while the config file exists
        args = cmd[cmd.index("tzbench") + 1:]
        worker["args"] = args
        worker["resolved"] = cli([*args, "--print-config"], capsys)
        return 0

    monkeypatch.setattr(cli_train, "_run_torchrun", fake_torchrun)
    argv = ["--disable-plugin", "tsrn", "train", "srcnn", "--lr-source", "bicubic", "--recipe", "cpu", "--steps", "7",
            "--set", "optim.lr=0.0003", "--data", "synth", "--protocol", "clean", "--db", f"sqlite:///{tmp_path / 'tz.db'}"]
    code, launcher, err = cli([*argv, "--print-config"], capsys)
    assert code == 0, err
    code, _, err = cli([*argv, "--nproc", "2", "--amp", "bf16", "--no-progress"], capsys)
    assert code == 0, err
    args = worker["args"]
    assert isinstance(args, list) and args[:4] == ["--disable-plugin", "tsrn", "train", "srcnn"]
    assert "--amp" in args and "--no-progress" in args and "--lr-source" not in args
    w_code, w_out, w_err = worker["resolved"]  # type: ignore[misc]
    assert w_code == 0, w_err
    assert w_out == launcher
    assert "lr_source: bicubic" in w_out and "  lr: 0.0003\n" in w_out and "\nsteps: 7\n" in w_out
    assert "recipe: cpu" in w_out
    assert not Path(args[args.index("--config") + 1]).exists()  # the temporary config is gone after the run


def test_amp_and_compile_flags_on_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    base = ["train", "srcnn", *SMALL, "--db", db, "--no-progress", "--set", "eval_after=false",
            "--set", "selection_judge=psnr", "--set", f"out_dir={tmp_path}"]
    code, _, err = cli([*base, "--steps", "2", "--amp", "fp16"], capsys)
    assert code == 2 and "--amp fp16 needs CUDA" in err and "bf16" in err
    import torch._inductor.config  # noqa: F401 - it reads $CXX once, on import: not the fake one below

    with monkeypatch.context() as m:  # inductor builds CPU kernels with a C++ compiler
        m.setenv("CXX", str(tmp_path / "no-such-c++"))
        code, _, err = cli([*base, "--steps", "2", "--compile"], capsys)
        assert code == 2 and "--compile on the CPU needs a C++ compiler" in err
        assert Store(db).list_runs() == []
        # A recipe's compile=true is a preference: without a compiler the run trains eager and says so.
        code, _, err = cli([*base, "--steps", "2", "--set", "compile=true"], capsys)
        assert code == 0, err
        assert "no C++ compiler" in caplog.text
        run = Store(db).list_runs("train")[0]
        assert run.config["compile"] is True and run.config["runtime"]["compile"] is False
    # bf16 autocast works on the CPU: the run trains and records the choice.
    code, _, err = cli([*base, "--steps", "2", "--amp", "bf16"], capsys)
    assert code == 0, err
    run = Store(db).list_runs("train")[0]
    assert run.status == "finished" and run.config["runtime"]["amp"] == "bf16"
    last = model_weights(Path(run.config["run_dir"]) / "last.safetensors")
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in last.values())


@pytest.mark.skipif(cpu_compiler() is None, reason="inductor needs a C++ compiler on the CPU")
def test_compile_on_the_cpu_trains_like_eager(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    base = ["train", "srcnn", *SMALL, "--db", db, "--no-progress", "--set", "eval_after=false", "--steps", "3",
            "--set", "selection_judge=psnr", "--set", f"out_dir={tmp_path}", "--set", "deterministic=true"]
    weights = {}
    for flag in ([], ["--compile"]):
        code, _, err = cli([*base, *flag], capsys)
        assert code == 0, err
        run = max(Store(db).list_runs("train"), key=lambda r: r.id)
        assert run.status == "finished"
        assert run.config["compile"] is bool(flag) and run.config["runtime"]["compile"] is bool(flag)
        weights[bool(flag)] = model_weights(Path(run.config["run_dir"]) / "last.safetensors")
    # The same three steps: inductor's kernels round differently from eager's, nothing more.
    assert weights[True].keys() == weights[False].keys()
    diff = max((weights[True][k] - weights[False][k]).abs().max().item() for k in weights[True])
    assert diff < 1e-4
