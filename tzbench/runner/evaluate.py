"""Evaluation: super-resolve each batch once, let every judge read it, record everything."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader

from tzbench.catalog import Catalog
from tzbench.config import EvalConfig
from tzbench.db.models import NO_RECOGNIZER
from tzbench.db.store import ResultRow, Store
from tzbench.metrics import MetricAccumulator, MetricSummary
from tzbench.runner.checkpoint import load_sr_checkpoint, read_checkpoint_meta
from tzbench.runner.context import (
    Judge,
    RunError,
    build_dataset,
    check_finite,
    check_subsets,
    build_judges,
    build_sr_model,
    comparability,
    fetch,
    make_progress,
    pick_device,
    seed_everything,
)
from tzbench.runner.overlap import JudgePool, Prefetcher, judge_threads, sequential_requested
from tzbench.runner.recorder import RunRecorder
from tzbench.runner.records import LINE_EVERY_S, format_duration, progress_mode

__all__ = ["EvalOutcome", "evaluate", "evaluate_model", "summaries_to_rows", "PROTOCOLS"]

#: The evaluation protocols (see docs/runs.md).
PROTOCOLS: tuple[str, ...] = ("clean", "legacy")


@dataclass
class EvalOutcome:
    """The recorded eval run and its per-subset summaries."""

    run_id: int
    summaries: dict[str, MetricSummary]
    comparable: bool
    reason: str
    rows: list[ResultRow] = field(default_factory=list)


class _EvalLines:
    """Plain progress lines of an eval when there is no terminal bar (redirected output,
    ``--no-progress``): one when a subset starts, at most every ``LINE_EVERY_S`` seconds, and
    one with its accuracies when it ends, so a log never sits silent for minutes."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.subset, self.n, self.done, self.t0, self.last = "", 0, 0, 0.0, 0.0

    def start(self, subset: str, n: int) -> None:
        self.subset, self.n, self.done = subset, n, 0
        self.t0 = self.last = time.perf_counter()
        self._say(f"eval {subset}: {n} pairs")

    def advance(self, k: int, acc: MetricAccumulator) -> None:
        self.done += k
        now = time.perf_counter()
        if now - self.last >= LINE_EVERY_S and self.done < self.n:
            self.last = now
            self._say(self._line(acc, now))

    def end(self, acc: MetricAccumulator) -> None:
        self._say(self._line(acc, time.perf_counter()))

    def _line(self, acc: MetricAccumulator, now: float) -> str:
        rate = self.done / max(now - self.t0, 1e-9)
        shown = " ".join(f"{k}={100 * c / max(1, acc.n_text[k]):.1f}%" for k, c in acc.correct.items())
        eta = format_duration((self.n - self.done) / rate) if rate > 0 else "?"
        pct = 100.0 * self.done / max(1, self.n)
        parts = [f"eval {self.subset} {self.done}/{self.n} ({pct:.0f}%)", shown, f"{rate:.1f} images/s",
                 f"ETA {eta}" if self.done < self.n else ""]
        return " ".join(p for p in parts if p)

    def _say(self, line: str) -> None:
        if self.enabled:
            print(line, flush=True)


def _batches(ds: Any, n: int, batch_size: int, num_workers: int) -> Iterator[dict[str, Any]]:
    """The first ``n`` samples of ``ds`` in order, in batches.

    Without workers, batches come straight from the dataset's uint8 cache (one vectorised
    gather per batch, no per-sample Python); with workers, a DataLoader decodes in parallel.
    """
    if num_workers == 0:
        for start in range(0, n, batch_size):
            yield fetch(ds, torch.arange(start, min(n, start + batch_size)))
        return
    from tzbench.data import collate

    sampler = [list(range(s, min(n, s + batch_size))) for s in range(0, n, batch_size)]
    yield from DataLoader(ds, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate)


@dataclass
class _SubsetStart:
    subset: str
    n: int
    #: Its image half is filled by the producer, its text half by the consumer (the judges).
    acc: MetricAccumulator


@dataclass
class _Batch:
    rgb: torch.Tensor
    labels: list[str]


@dataclass
class _SubsetEnd:
    subset: str
    bad: int


def _load_subset(provider: Any, split: str, subset: str, max_samples: int | None) -> tuple[Any, int]:
    ds = provider.load(split, subset)
    n = len(ds) if max_samples is None else min(len(ds), max_samples)
    if n == 0:  # its metrics would be NaN, and a NaN is not a result
        raise RunError(f"the {split} subset {subset!r} has no samples (all bad, or an empty LMDB): "
                       "nothing to evaluate; drop it from data.subsets")
    return ds, n


def _stream(model: torch.nn.Module, provider: Any, subsets: list[str], device: torch.device, batch_size: int,
            num_workers: int, legacy: bool, split: str, max_samples: int | None,
            load_ahead: bool, threads: int) -> Iterator[_SubsetStart | _Batch | _SubsetEnd]:
    """Everything of an evaluation but the judges, in order: each subset loaded, then per batch
    the SR output (its PSNR/SSIM already added to the subset's accumulator) and the labels.

    The consumer reads the accumulator's summary only after ``_SubsetEnd``, when this side is
    done with it. ``load_ahead``: decode the next subset on a thread of its own while this
    one's batches are made and read. ``threads``: torch's thread count for the SR model here.
    """
    # Per thread, and a new thread starts with whatever count another thread set last.
    torch.set_num_threads(threads)
    loader = ThreadPoolExecutor(1, thread_name_prefix="tzbench-load") if load_ahead else None
    pending: Future[tuple[Any, int]] | None = None
    try:
        # Grad mode is per thread, and this runs on the producer thread when the work overlaps.
        with torch.inference_mode():
            for k, subset in enumerate(subsets):
                ds, n = pending.result() if pending is not None else _load_subset(provider, split, subset, max_samples)
                pending = None
                if loader is not None and k + 1 < len(subsets):
                    pending = loader.submit(_load_subset, provider, split, subsets[k + 1], max_samples)
                # Clean: sr is clipped once below, so the accumulator need not clip it twice more.
                acc = MetricAccumulator(clamp=legacy, keep_legacy=legacy)
                yield _SubsetStart(subset, n, acc)
                for batch in _batches(ds, n, batch_size, num_workers):
                    lr = batch["lr"].to(device, non_blocking=True)
                    hr = batch["hr"].to(device, non_blocking=True)
                    sr = check_finite(model(lr).float(), f"{subset} batch at sample {acc.n_images}")
                    if not legacy:
                        sr = sr.clamp_(0, 1)
                    acc.update_images(sr, hr)
                    yield _Batch(sr[:, :3], batch["label"])
                yield _SubsetEnd(subset, len(getattr(ds, "bad_samples", []) or []))
    finally:
        if loader is not None:
            loader.shutdown(wait=True, cancel_futures=True)


@torch.inference_mode()
def evaluate_model(
    model: torch.nn.Module,
    provider: Any,
    subsets: list[str],
    judges: list[Judge],
    device: torch.device,
    batch_size: int = 64,
    num_workers: int = 0,
    protocol: str = "clean",
    split: str = "test",
    max_samples: int | None = None,
    progress: bool = True,
    sequential: bool | None = None,
    readings: dict[str, dict[str, list[str]]] | None = None,
) -> tuple[dict[str, MetricSummary], dict[str, int], int]:
    """Run ``model`` over each subset; returns summaries, subset sizes and bad-sample count.

    The SR output is computed once per batch and shared by the image metrics and every judge.
    ``clean``: the SR image is clipped to [0, 1] (as written to disk) before anything reads it;
    PSNR/SSIM per image. ``legacy``: TextZoom's test loop: the raw SR output goes to the judges
    and to the per-batch PSNR/SSIM (``MetricAccumulator(keep_legacy=True)``), unclipped.

    By default the work overlaps (:mod:`tzbench.runner.overlap`): a producer thread decodes the
    next subset and super-resolves the next batch while the judges read the current one, side
    by side. ``sequential=True`` (when None: ``$TZBENCH_EVAL_SEQUENTIAL=1``) is the one-thread
    reference path; both give the same results. ``readings``, when given, receives every judge's
    reading of every sample in dataset order: ``{subset: {judge: [str, ...]}}``.
    """
    if protocol not in PROTOCOLS:
        raise RunError(f"unknown protocol {protocol!r}; choose {' or '.join(PROTOCOLS)}")
    if sequential is None:
        sequential = sequential_requested()
    legacy = protocol == "legacy"
    model.eval().to(device)
    summaries: dict[str, MetricSummary] = {}
    sizes: dict[str, int] = {}
    bad = 0
    events = _stream(model, provider, subsets, device, batch_size, num_workers, legacy, split, max_samples,
                     load_ahead=not sequential, threads=torch.get_num_threads())
    # Two batches ahead: one waiting while the next is made, so the judges never wait on SR.
    producer = contextlib.closing(events) if sequential else Prefetcher(events, depth=2, name="tzbench-sr")
    bar = progress_mode(progress) == "bar"
    lines = _EvalLines(enabled=not bar)
    with make_progress(disable=not bar) as prog, producer as stream, \
            JudgePool([j.recognizer for j in judges], concurrent=not sequential) as pool:
        task: Any = None
        acc, subset = MetricAccumulator(), ""
        for event in stream:
            if isinstance(event, _SubsetStart):
                subset, acc = event.subset, event.acc
                sizes[subset] = event.n
                task = prog.add_task(f"eval {subset}", total=event.n, info="")
                lines.start(subset, event.n)
                if readings is not None:
                    readings[subset] = {j.name: [] for j in judges}
            elif isinstance(event, _Batch):
                for judge, preds in zip(judges, pool.read(event.rgb), strict=True):
                    acc.update_text(preds, event.labels, judge.name)
                    if readings is not None:
                        readings[subset][judge.name].extend(preds)
                if bar:
                    shown = " ".join(f"{k}={c / max(1, acc.n_text[k]):.3f}" for k, c in acc.correct.items())
                    prog.update(task, advance=len(event.labels), info=shown)
                lines.advance(len(event.labels), acc)
            else:
                lines.end(acc)
                summaries[subset] = acc.summary()
                bad += event.bad
    return summaries, sizes, bad


def summaries_to_rows(summaries: dict[str, MetricSummary], protocol: str, step: int = -1) -> list[ResultRow]:
    """Result rows per subset, plus ``all``: accuracy weighted by sample count."""
    rows: list[ResultRow] = []
    legacy = protocol == "legacy"
    total_n = 0
    psnr_sum = ssim_sum = 0.0
    correct: dict[str, int] = {}
    counted: dict[str, int] = {}
    for subset, s in summaries.items():
        psnr = s.psnr_legacy if legacy and s.psnr_legacy is not None else s.psnr
        ssim = s.ssim_legacy if legacy and s.ssim_legacy is not None else s.ssim
        rows.append(ResultRow(subset, NO_RECOGNIZER, "psnr", _finite(psnr), step, s.n_images))
        rows.append(ResultRow(subset, NO_RECOGNIZER, "ssim", _finite(ssim), step, s.n_images))
        for judge, acc in s.accuracy.items():
            rows.append(ResultRow(subset, judge, "accuracy", acc, step, s.n_text[judge]))
            correct[judge] = correct.get(judge, 0) + s.correct[judge]
            counted[judge] = counted.get(judge, 0) + s.n_text[judge]
        total_n += s.n_images
        psnr_sum += psnr * s.n_images
        ssim_sum += ssim * s.n_images
    if len(summaries) > 1 and total_n:
        rows.append(ResultRow("all", NO_RECOGNIZER, "psnr", _finite(psnr_sum / total_n), step, total_n))
        rows.append(ResultRow("all", NO_RECOGNIZER, "ssim", _finite(ssim_sum / total_n), step, total_n))
        for judge, n in counted.items():
            rows.append(ResultRow("all", judge, "accuracy", correct[judge] / n, step, n))
    return rows


def _finite(x: float) -> float:
    # SQL has no infinity; a perfect reconstruction's PSNR is stored as a large finite value.
    return 1e9 if math.isinf(x) else x


def evaluate(
    cfg: EvalConfig,
    store: Store,
    catalog: Catalog,
    parent_id: int | None = None,
    progress: bool = True,
) -> EvalOutcome:
    """Evaluate ``cfg.model`` (from its checkpoint) on the test subsets and record the run."""
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    # A tzbench checkpoint brings the params it was trained with (shape params and choices like
    # TSRN's stn_at_test alike); the config's own params override them.
    recorded = (read_checkpoint_meta(cfg.checkpoint).get("params") or {}) if cfg.checkpoint else {}
    info = build_sr_model(catalog, cfg.model.name, {**recorded, **cfg.model.params})
    ckpt_meta: dict[str, Any] = {}
    if cfg.checkpoint:
        ckpt_meta = load_sr_checkpoint(cfg.checkpoint, info.module, cfg.model.name)
    elif info.trainable:
        raise RunError(
            f"{cfg.model.name} is trainable: pass --checkpoint (a tzbench .safetensors checkpoint); "
            f"untrained weights would not be a meaningful result"
        )
    sequential = sequential_requested()
    # Judges that read side by side share the cores instead of each taking all of them.
    threads = None if sequential or len(cfg.judges) < 2 else judge_threads(len(cfg.judges))
    judges = build_judges(catalog, cfg.judges, device, threads)  # before the data: a missing weights file fails fast
    provider, _ = build_dataset(catalog, cfg.data.dataset, cfg.data.params, info.in_channels)
    check_subsets(provider, cfg.data.dataset, cfg.data.subsets)
    rec = RunRecorder.start(
        store,
        kind="eval",
        device=device,
        config={**cfg.model_dump(mode="json"), "model_params_used": info.params,
                "judge_modes": {j.name: j.mode for j in judges},
                "judge_weights_sha256": {j.name: j.weights_sha256 for j in judges}},
        sr_model=cfg.model.name,
        provider=info.provider,
        benchmark=cfg.data.dataset,
        protocol=cfg.protocol,
        checkpoint=cfg.checkpoint,
        checkpoint_sha256=ckpt_meta.get("weights_sha256"),
        parent_id=parent_id,
        n_params=info.n_params,
        seed=cfg.seed,
    )
    try:
        summaries, sizes, bad = evaluate_model(
            info.module, provider, cfg.data.subsets, judges, device,
            batch_size=cfg.data.eval_batch_size, num_workers=cfg.data.num_workers,
            protocol=cfg.protocol, max_samples=cfg.max_samples, progress=progress, sequential=sequential,
        )
        bench, version, comparable, reason = comparability(
            None, cfg.data.dataset, cfg.data.params, sizes, judges, cfg.protocol, cfg.max_samples
        )
        rows = summaries_to_rows(summaries, cfg.protocol)
        rec.results(rows)
        rec.finish("finished", message=reason or None, benchmark=bench, benchmark_version=version,
                   comparable=comparable, bad_samples=bad)
    except BaseException as exc:
        rec.abort(exc, "interrupted by the user" if isinstance(exc, KeyboardInterrupt) else None)
        raise
    return EvalOutcome(rec.run_id, summaries, comparable, reason, rows)
