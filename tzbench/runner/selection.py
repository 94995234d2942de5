"""Validation and checkpoint selection of a training run.

Every ``val_every`` steps the scored model (EMA weights when enabled) is evaluated on the
selection sets: the val split (``clean``) or TextZoom's test subsets (``legacy``, with its
per-batch PSNR/SSIM and ``val`` accuracy rule). The sums go through
:class:`tzbench.metrics.MetricAccumulator`, as an evaluation's do, and are all-reduced over the
ranks. The best checkpoint is the one with the highest selection metric (accuracy when a judge
selects, else PSNR), ties going to the higher mean PSNR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from tzbench.catalog import Catalog
from tzbench.config import TrainConfig
from tzbench.db.models import NO_RECOGNIZER
from tzbench.db.store import ResultRow
from tzbench.metrics import MetricAccumulator
from tzbench.registry import load_registry
from tzbench.runner.context import Judge, build_judges, fetch
from tzbench.runner.distributed import DistContext, all_reduce_sum
from tzbench.runner.records import sample_grid

__all__ = ["Selection", "build_selection", "validate", "mean_of", "improves", "val_rows", "selection_grid"]


@dataclass
class Selection:
    """How a run picks its best checkpoint under its protocol."""

    protocol: str
    judge: Judge | None
    sets: dict[str, Any]  # result subset name -> dataset
    limit: int
    metric: str = field(init=False)

    def __post_init__(self) -> None:
        self.metric = "accuracy" if self.judge is not None else "psnr"

    @property
    def legacy(self) -> bool:
        """TextZoom's protocol: unclamped SR, per-batch PSNR/SSIM, the 'val' accuracy rule."""
        return self.protocol == "legacy"

    def describe(self) -> dict[str, Any]:
        """What the checkpoints and the run's config record about the selection (``recognizer``: the
        judge's old key, kept so that readers of earlier records and of new ones find the same key)."""
        judge = self.judge.name if self.judge else NO_RECOGNIZER
        return {"protocol": self.protocol, "metric": self.metric, "sets": list(self.sets), "judge": judge,
                "recognizer": judge,
                "aggregate": "mean over sets" if len(self.sets) > 1 else "single set"}


def build_selection(cfg: TrainConfig, provider: Any, catalog: Catalog, device: torch.device) -> Selection:
    """The selection sets and judge of ``cfg``: the test subsets under ``legacy``, the val split otherwise."""
    name = cfg.selection_judge
    if cfg.protocol == "legacy":
        sets = {s: provider.load("test", s) for s in cfg.data.subsets}
        name = name or load_registry().legacy_selection_judge
    else:
        sets = {"val": provider.load("val", None)}
        name = name or load_registry().selection_judge
    judge = None if name in (NO_RECOGNIZER, "psnr") else build_judges(catalog, [name], device)[0]
    return Selection(cfg.protocol, judge, sets, cfg.val_max_samples)


@torch.no_grad()
def validate(net: torch.nn.Module, sel: Selection, device: torch.device, batch_size: int,
             ctx: DistContext) -> dict[str, dict[str, float]]:
    """Metrics on each selection set, ``{set: {"n", "psnr", "ssim"[, "accuracy"]}}``; every rank
    evaluates its share, the sums are all-reduced in one reduction."""
    was_training = net.training
    net.eval()
    judges = [sel.judge.name] if sel.judge is not None else []
    local: list[float] = []
    for ds in sel.sets.values():
        # Legacy: SR unclamped, clean per-image values of the clamped image beside the per-batch ones.
        acc = MetricAccumulator(clamp=sel.legacy, keep_legacy=sel.legacy, rule="val" if sel.legacy else "test")
        idx = torch.arange(min(len(ds), sel.limit))[ctx.rank::ctx.world_size]
        for start in range(0, idx.numel(), batch_size):
            batch = fetch(ds, idx[start:start + batch_size])
            sr = net(batch["lr"].to(device)).float()
            if not sel.legacy:
                sr = sr.clamp_(0, 1)
            acc.update_images(sr, batch["hr"].to(device))
            if sel.judge is not None:
                acc.update_text(sel.judge.recognizer.recognize(sr[:, :3]), batch["label"], sel.judge.name)
        local += acc.totals(judges)
    total = all_reduce_sum(ctx, local)
    net.train(was_training)
    width = 6 + 2 * len(judges)  # the length of one MetricAccumulator.totals vector
    out: dict[str, dict[str, float]] = {}
    for k, name in enumerate(sel.sets):
        s = MetricAccumulator.summary_of_totals(total[width * k: width * (k + 1)], judges, keep_legacy=sel.legacy)
        v = {"n": float(s.n_images), "psnr": s.psnr, "ssim": s.ssim}
        if sel.legacy and s.n_images:  # TextZoom's numbers: the per-batch values
            v["psnr"], v["ssim"] = s.psnr_legacy, s.ssim_legacy
        if sel.judge is not None:
            v["accuracy"] = s.accuracy[sel.judge.name]
        out[name] = v
    return out


def mean_of(v: dict[str, dict[str, float]], metric: str) -> float:
    """The mean of ``metric`` over the selection sets (what selection compares)."""
    # Legacy: TextZoom compares the sum of the subsets' accuracies (the mean ranks the same).
    vals = [s[metric] for s in v.values()]
    return sum(vals) / len(vals)


def improves(score: float, psnr: float, best_score: float | None, best_psnr: float | None) -> bool:
    """Strictly better by the selection metric, or equal to it with a higher mean PSNR."""
    if best_score is None or score > best_score:
        return True
    return score == best_score and psnr > (best_psnr if best_psnr is not None else -math.inf)


def val_rows(sel: Selection, v: dict[str, dict[str, float]], step: int) -> list[ResultRow]:
    """The result rows of one validation at ``step``."""
    rows: list[ResultRow] = []
    for name, s in v.items():
        n = int(s["n"])
        rows += [ResultRow(name, NO_RECOGNIZER, "psnr", _finite(s["psnr"]), step, n),
                 ResultRow(name, NO_RECOGNIZER, "ssim", _finite(s["ssim"]), step, n)]
        if sel.judge is not None:
            rows.append(ResultRow(name, sel.judge.name, "accuracy", s["accuracy"], step, n))
    return rows


def _finite(x: float) -> float:
    # SQL has no infinity; a perfect reconstruction's PSNR is stored as a large finite value.
    return 1e9 if math.isinf(x) else x


@torch.no_grad()
def selection_grid(net: torch.nn.Module, sel: Selection, device: torch.device, k: int = 4) -> torch.Tensor:
    """Bicubic LR / SR / HR of the first ``k`` pairs of the first selection set, for loggers."""
    ds = next(iter(sel.sets.values()))
    was_training = net.training
    # Its own RNG streams: enabling a logger must not change what the run computes (nor resume's exactness).
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        batch = fetch(ds, torch.arange(min(k, len(ds))))
        net.eval()
        sr = net(batch["lr"].to(device)).float()
    net.train(was_training)
    return sample_grid(batch["lr"], sr, batch["hr"])

