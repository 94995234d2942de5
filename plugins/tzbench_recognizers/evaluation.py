"""Scoring a judge on a dataset: word accuracy on HR or bicubic LR images (TextZoom's test rule).

No side effects: the training run records what these functions return.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from tzbench.data import collate
from tzbench.metrics import word_accuracy
from tzbench_recognizers.augment import bicubic_up

__all__ = ["AccuracyReport", "Reader", "ScoredDataset", "read_accuracy", "score_test_sets", "scores_line"]


class Reader(Protocol):
    """What scoring needs of a judge: strings for images ``(B, 3, H, W)`` in ``[0, 1]``."""

    def recognize(self, images: Tensor) -> list[str]:
        """The judge's reading of each image."""
        ...


class ScoredDataset(Protocol):
    """What scoring needs of a dataset provider: its test subsets and their samples."""

    def subsets(self, split: str) -> list[str]:
        """The subsets of ``split`` (e.g. ``easy``, ``medium``, ``hard`` of ``test``)."""
        ...

    def load(self, split: str, subset: str | None = None) -> Dataset:
        """The samples of ``split`` (one subset, or all)."""
        ...


@dataclass
class AccuracyReport:
    """Word accuracy of one judge on one set: ``correct / n`` plus a few examples."""

    correct: int
    n: int
    examples: list[tuple[str, str]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """``correct / n`` (``nan`` for an empty set)."""
        return self.correct / self.n if self.n else math.nan


@torch.no_grad()
def read_accuracy(
    rec: Reader,
    dataset: Dataset,
    batch_size: int = 128,
    source: Literal["hr", "lr_bicubic"] = "hr",
    keep_examples: int = 0,
) -> AccuracyReport:
    """Word accuracy of judge ``rec`` reading ``dataset`` (TextZoom's test rule).

    ``source="hr"`` feeds the HR images; ``"lr_bicubic"`` the LR images upsampled bicubically
    to the HR size (the "no super-resolution" baseline of TextZoom).
    """
    correct = n = 0
    examples: list[tuple[str, str]] = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate):
        images = batch["hr"][:, :3] if source == "hr" else bicubic_up(batch["lr"][:, :3], tuple(batch["hr"].shape[-2:]))
        preds = rec.recognize(images)
        ok = word_accuracy(preds, batch["label"])
        correct += sum(ok)
        n += len(ok)
        if len(examples) < keep_examples:
            examples.extend(list(zip(preds, batch["label"]))[: keep_examples - len(examples)])
    return AccuracyReport(correct, n, examples)


def score_test_sets(rec: Reader, provider: ScoredDataset, subsets: list[str], batch_size: int,
                max_samples: int | None = None) -> dict[str, tuple[float, int]]:
    """``{"hr:<subset>"|"lr:<subset>": (accuracy, n)}`` plus the pooled ``:all`` of each source.

    Only the ``subsets`` the provider's test split has are read, each limited to its first
    ``max_samples`` samples when given; ``lr`` is the bicubic-upsampled LR image.
    """
    out: dict[str, tuple[float, int]] = {}
    pooled = {"hr": [0, 0], "lr": [0, 0]}
    for subset in [s for s in subsets if s in provider.subsets("test")]:
        ds: Dataset = provider.load("test", subset)
        if max_samples is not None and len(ds) > max_samples:
            ds = Subset(ds, range(max_samples))
        for source, kind in (("hr", "hr"), ("lr", "lr_bicubic")):
            rep = read_accuracy(rec, ds, batch_size, kind)
            out[f"{source}:{subset}"] = (rep.accuracy, rep.n)
            pooled[source][0] += rep.correct
            pooled[source][1] += rep.n
    for source, (c, n) in pooled.items():
        if n:
            out[f"{source}:all"] = (c / n, n)
    return out


def scores_line(dataset: str, scores: dict[str, tuple[float, int]]) -> str:
    """The progress line of :func:`score_test_sets`' result on ``dataset``."""
    return f"test {dataset}: " + ", ".join(f"{k}={v:.4f} (n={n})" for k, (v, n) in scores.items())
