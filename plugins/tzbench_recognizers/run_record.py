"""The store side of a ``train-recognizer`` run: its row, its results, how it ended.

Everything training writes to the database goes through :class:`RecognizerRunRecord`, so the
loop never builds a row itself; the class is the seam where the core's run recorder
(``tzbench.runner.recorder``) can replace it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from tzbench.db.store import ResultRow, Store
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
    """The run row of one judge training in ``store`` and the results recorded on it.

    Rows: ``val/accuracy`` and ``train/loss`` per evaluation step, ``train/seconds`` at the end
    (step -1, ``n`` = steps done), and per dataset and test subset ``accuracy_hr`` and
    ``accuracy_lr_bicubic`` of the best checkpoint (subset ``"<dataset>:<subset>"``).
    """

    def __init__(self, store: Store, run_id: int, judge: str) -> None:
        self.store, self.run_id, self.judge = store, run_id, judge

    @classmethod
    def start(cls, store: Store, cfg: RecognizerTrainConfig, provider: str, n_params: int,
              device: torch.device) -> RecognizerRunRecord:
        """Insert the ``running`` row (kind ``train-recognizer``, never comparable)."""
        from tzbench.runner.context import provenance

        run_id = store.start_run(
            kind="train-recognizer", sr_model=cfg.judge.name, provider=provider,
            benchmark=",".join(cfg.data), protocol="clean", comparable=False, config=cfg.model_dump(mode="json"),
            n_params=n_params, seed=cfg.seed, **provenance(device),
        )
        return cls(store, run_id, cfg.judge.name)

    def set_checkpoint(self, path: Path) -> None:
        """Name the file the run's selected weights will be in."""
        self.store.update_run(self.run_id, checkpoint=str(path))

    def validation(self, step: int, accuracy: float, n: int, loss_avg: float | None, batch_size: int) -> None:
        """Validation accuracy at ``step`` and the running-mean training loss (when there is one)."""
        rows = [ResultRow("val", self.judge, "accuracy", accuracy, step, n)]
        if loss_avg is not None:
            rows.append(ResultRow("train", self.judge, "loss", loss_avg, step, batch_size))
        self.store.add_results(self.run_id, rows)

    def training_time(self, seconds: float, steps: int) -> None:
        """Wall-clock seconds of the training loop."""
        self.store.add_results(self.run_id, [ResultRow("train", self.judge, "seconds", seconds, -1, steps)])

    def test(self, scores: dict[str, dict[str, tuple[float, int]]], checkpoint_sha256: str) -> None:
        """Final test accuracies (``{dataset: {"hr:<subset>"|"lr:<subset>": (accuracy, n)}}``) of
        the best checkpoint, whose sha256 is recorded with them."""
        rows = []
        for dataset, res in scores.items():
            for key, (value, n) in res.items():
                source, _, subset = key.partition(":")
                metric = "accuracy_hr" if source == "hr" else "accuracy_lr_bicubic"
                rows.append(ResultRow(f"{dataset}:{subset}", self.judge, metric, value, -1, n))
        self.store.add_results(self.run_id, rows)
        self.store.update_run(self.run_id, checkpoint_sha256=checkpoint_sha256)

    def finish(self, status: str, message: str | None, checkpoint: Path | None, bad_samples: int) -> None:
        """Close the row: ``finished``, ``interrupted`` or ``failed``, with the selected checkpoint."""
        self.store.finish_run(self.run_id, status, message=message,
                              checkpoint=str(checkpoint) if checkpoint is not None else None, bad_samples=bad_samples)

    def crashed(self, exc: BaseException) -> None:
        """Close the row as ``failed`` on an unexpected exception (which the caller re-raises)."""
        self.store.finish_run(self.run_id, "failed", message=f"{type(exc).__name__}: {exc}")
