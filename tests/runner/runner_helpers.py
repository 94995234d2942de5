"""Helpers of the runner tests: tiny synth runs through the real CLI, in-process or as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from pydantic import BaseModel, ConfigDict
from safetensors.torch import load_file

from tzbench.cli import main
from tzbench.hookspecs import hookimpl
from tzbench.specs import SRModelSpec

#: Tiny synth data: 46 train / 2 val pairs, 8 per test subset; batches of 8.
SMALL = ["--set", "data.params.n_train=48", "--set", "data.params.n_test=8", "--set", "data.batch_size=8",
         "--set", "data.eval_batch_size=8"]


def cli(argv: list[str], capsys: pytest.CaptureFixture[str] | None = None) -> tuple[int, str, str]:
    """Run ``tzbench ARGV`` in this process; returns (exit code, stdout, stderr)."""
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    if capsys is None:
        return code, "", ""
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def sub_env() -> dict[str, str]:
    """Environment of tzbench subprocesses: same thread count as this process (bit-exact
    comparisons need the same reduction order), no progress bars, wide console."""
    return {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), "TZBENCH_NO_PROGRESS": "1",
            "COLUMNS": "200"}


def start_tzbench(argv: list[str], cwd: Path) -> subprocess.Popen[str]:
    """``python -m tzbench ARGV`` in the background."""
    return subprocess.Popen([sys.executable, "-m", "tzbench", *argv], cwd=cwd, env=sub_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(proc: subprocess.Popen[str], folder: Path, timeout: float = 240.0) -> dict:
    """Poll until some ``*/last.json`` appears under ``folder``; returns its metadata."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        found = sorted(folder.glob("*/last.json"))
        if found:
            try:
                return json.loads(found[0].read_text())
            except json.JSONDecodeError:  # os.replace is atomic, but be patient anyway
                pass
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"tzbench exited ({proc.returncode}) before a checkpoint:\n{out}\n{err}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("no checkpoint appeared in time")


def model_weights(path: Path) -> dict[str, torch.Tensor]:
    """The SR model's tensors of a training-state (``model.*``) or model checkpoint."""
    state = load_file(path)
    if any(k.startswith("model.") for k in state):
        return {k[6:]: v for k, v in state.items() if k.startswith("model.")}
    return state


def runs_json(db: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    """``tzbench runs list --format json`` (which reaps dead runs first)."""
    code, out, err = cli(["runs", "list", "--db", db, "--format", "json"], capsys)
    assert code == 0, err
    return json.loads(out)


# ---------------------------------------------------------------------------------------------
# an in-process plugin whose model turns its output into NaN after a number of training steps


class NaNAfterParams(BaseModel):
    """Params of :class:`NaNAfter`."""

    model_config = ConfigDict(extra="forbid")
    after: int = 3


class NaNAfter(torch.nn.Module):
    """A one-conv SR model whose training forward returns NaN from call ``after + 1`` on."""

    in_channels = 3

    def __init__(self, after: int = 3) -> None:
        super().__init__()
        self.after = after
        self.calls = 0
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest"))
        if self.training:  # validation runs in eval mode
            self.calls += 1
            if self.calls > self.after:
                return y * float("nan")
        return y


class NaNPlugin:
    """Registers ``nanafter`` (pass to ``get_plugin_manager(extra_plugins=[NaNPlugin()])``)."""

    @hookimpl
    def register_sr_models(self) -> list[SRModelSpec]:
        return [SRModelSpec(name="nanafter", target="runner_helpers:NaNAfter", params=NaNAfterParams,
                            summary="test model: NaN after k steps", paper="-", default_loss="l2", in_channels=3)]
