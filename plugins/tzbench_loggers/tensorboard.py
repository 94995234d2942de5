"""The ``tensorboard`` training logger: event files under ``<run folder>/tb/``.

Tags: ``train/loss``, ``train/loss/<term>``, ``train/lr``, ``train/s_per_step`` (every
``log_every`` steps, running means), ``<set>/<metric>`` for each validation set (``val/psnr``,
``val/ssim``, ``val/accuracy``) and the image ``<first set>/samples`` (rows: bicubic LR, SR, HR).
View with ``tensorboard --logdir runs/``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Importing this module is what needs the package: torch's writer raises ImportError without it.
from torch.utils.tensorboard import SummaryWriter

__all__ = ["TensorBoardLogger"]


def _wait_past_existing_files(log_dir: Path) -> None:
    """Wait until a new event file will sort after every file already in ``log_dir``.

    Event files are named ``events.out.tfevents.<whole seconds>.<host>.<pid>...`` and read in
    name order; the purge of re-run steps only applies to files read *later*. A run killed and
    resumed within one second would otherwise be ordered by pid, i.e. at random.
    """
    stamps = []
    for f in log_dir.glob("events.out.tfevents.*"):
        part = f.name.split(".")[3]
        if part.isdigit():
            stamps.append(int(part))
    # Bounded: a file stamped far ahead (a clock set back) must not hang the run.
    deadline = time.monotonic() + 2.0
    while stamps and int(time.time()) <= max(stamps) and time.monotonic() < deadline:
        time.sleep(0.05)


class TensorBoardLogger:
    """A :class:`tzbench.loggers.TrainLogger` writing TensorBoard events."""

    def __init__(self, run_dir: Path, subdir: str = "tb", flush_secs: int = 30) -> None:
        self.log_dir = Path(run_dir) / subdir
        self.flush_secs = flush_secs
        self.writer: SummaryWriter | None = None

    def on_start(self, info: Mapping[str, Any]) -> None:
        # A resumed run writes again the steps after its checkpoint: TensorBoard drops the old ones.
        start = int(info.get("start_step") or 0)
        if start:
            _wait_past_existing_files(self.log_dir)
        self.writer = SummaryWriter(log_dir=str(self.log_dir), flush_secs=self.flush_secs,
                                    purge_step=start + 1 if start else None)
        self.writer.add_text("config", f"run {info.get('run_id')} of {info.get('model')}: "
                             f"{info.get('steps')} steps", global_step=start)

    def on_step(self, step: int, scalars: Mapping[str, float]) -> None:
        assert self.writer is not None
        for name, value in scalars.items():
            self.writer.add_scalar(f"train/{name}", value, step)

    def on_validation(self, step: int, metrics: Mapping[str, Mapping[str, float]], sample_grid: Any) -> None:
        assert self.writer is not None
        for set_name, values in metrics.items():
            for metric, value in values.items():
                if metric != "n":
                    self.writer.add_scalar(f"{set_name}/{metric}", value, step)
        if sample_grid is not None:
            self.writer.add_image(f"{next(iter(metrics), 'val')}/samples", sample_grid, step)
        self.writer.flush()

    def on_end(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
