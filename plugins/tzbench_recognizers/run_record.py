"""The store side of a ``train-recognizer`` run: its row, its results, how it ended.

Everything training writes to the database goes through :class:`RecognizerRunRecord`, so the
loop never builds a row itself; it writes through the core's
:class:`~tzbench.runner.recorder.RunRecorder`, the one writer of run rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from tzbench.db.store import ResultRow, Store
from tzbench.runner.recorder import RunRecorder
from tzbench_recognizers.train_config import RecognizerTrainConfig

if TYPE_CHECKING:
    from tzbench.catalog import Catalog

__all__ = ["RecognizerRunRecord", "provider_of"]


def provider_of(plugin_name: str, catalog: Catalog) -> str:
    """``"<distribution> <version>"`` of the plugin that registers a judge (its name if unknown)."""
    for info in getattr(getattr(catalog.pm, "tzbench_loaded", None), "infos", []):
        if info.name == plugin_name:
            return f"{info.dist} {info.version}"
    return plugin_name


class RecognizerRunRecord:
    """The run row of one judge training in the store and the results recorded on it.

    Rows: ``val/accuracy`` and ``train/loss`` per evaluation step, ``train/seconds`` at the end
    (step -1, ``n`` = steps done), and per dataset and test subset ``accuracy_hr`` and
    ``accuracy_lr_bicubic`` of the best checkpoint (subset ``"<dataset>:<subset>"``). Every write
    goes through the core's :class:`~tzbench.runner.recorder.RunRecorder` (:attr:`recorder`), so
    a recognizer run's row is written as ``train``'s and ``eval``'s are.
    """

    def __init__(self, recorder: RunRecorder, judge: str) -> None:
        self.recorder, self.judge = recorder, judge

    @property
    def run_id(self) -> int:
        """The run's id in the store."""
        return self.recorder.run_id

    @classmethod
    def start(cls, store: Store, cfg: RecognizerTrainConfig, provider: str, n_params: int,
              device: torch.device) -> RecognizerRunRecord:
        """Insert the ``running`` row (kind ``train-recognizer``, never comparable)."""
        recorder = RunRecorder.start(
            store, kind="train-recognizer", device=device, config=cfg.model_dump(mode="json"),
            sr_model=cfg.judge.name, provider=provider, benchmark=",".join(cfg.data), protocol="clean",
            comparable=False, n_params=n_params, seed=cfg.seed,
        )
        return cls(recorder, cfg.judge.name)

    def set_checkpoint(self, path: Path) -> None:
        """Name the file the run's selected weights will be in."""
        self.recorder.update(checkpoint=str(path))

    def validation(self, step: int, accuracy: float, n: int, loss_avg: float | None, batch_size: int) -> None:
        """Validation accuracy at ``step`` and the running-mean training loss (when there is one)."""
        rows = [ResultRow("val", self.judge, "accuracy", accuracy, step, n)]
        if loss_avg is not None:
            rows.append(ResultRow("train", self.judge, "loss", loss_avg, step, batch_size))
        self.recorder.results(rows)

    def training_time(self, seconds: float, steps: int) -> None:
        """Wall-clock seconds of the training loop."""
        self.recorder.results([ResultRow("train", self.judge, "seconds", seconds, -1, steps)])

    def test(self, scores: dict[str, dict[str, tuple[float, int]]], checkpoint_sha256: str) -> None:
        """Final test accuracies (``{dataset: {"hr:<subset>"|"lr:<subset>": (accuracy, n)}}``) of
        the best checkpoint, whose sha256 is recorded with them."""
        rows = []
        for dataset, res in scores.items():
            for key, (value, n) in res.items():
                source, _, subset = key.partition(":")
                metric = "accuracy_hr" if source == "hr" else "accuracy_lr_bicubic"
                rows.append(ResultRow(f"{dataset}:{subset}", self.judge, metric, value, -1, n))
        self.recorder.results(rows)
        self.recorder.update(checkpoint_sha256=checkpoint_sha256)

    def finish(self, status: str, message: str | None, checkpoint: Path | None, bad_samples: int) -> None:
        """Close the row: ``finished``, ``interrupted`` or ``failed``, with the selected checkpoint.

        The sha256 is the one :meth:`test` recorded: a failed run's checkpoint path stays without it,
        as it was never scored."""
        self.recorder.finish(status, message, checkpoint=str(checkpoint) if checkpoint is not None else None,
                             bad_samples=bad_samples)

    def crashed(self, exc: BaseException) -> None:
        """Close the row as ``failed`` on an unexpected exception (which the caller re-raises)."""
        self.recorder.abort(exc)
