"""Training of SR models: seeded, resumable, data-parallel, recorded step by step in the store.

A run's life in the ``runs`` table: ``running`` -> ``finished`` | ``failed`` | ``interrupted``.
A process that dies without saying so (SIGKILL, power loss) leaves ``running`` behind, which
the next command reaps to ``failed`` (the pid is gone). ``--resume RUN_ID`` sets the same row back
to ``running`` under the new pid and finishes it; results already recorded are re-recorded
under the same ``(subset, recognizer, metric, step)`` keys, never duplicated.

Exactness of resume: the sample order is a pure function of ``(seed, epoch)``; the training
state (``last``) holds the weights, the optimizer state, every RNG state, the loss-scaler state,
the step and the best score, and is committed by one atomic rename. A resumed run therefore
reproduces the uninterrupted run bit for bit in deterministic mode.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import signal
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.data import DataLoader

from tzbench.catalog import Catalog
from tzbench.config import EvalConfig, TrainConfig
from tzbench.data import collate
from tzbench.db.models import NO_RECOGNIZER
from tzbench.db.store import ResultRow, Store, StoreError, pid_alive
from tzbench.loggers import LoggerSet, build_loggers, check_loggers
from tzbench.metrics import psnr_legacy_batch, psnr_per_image, ssim_legacy_batch, ssim_per_image, word_accuracy
from tzbench.registry import load_registry
from tzbench.weights import sha256_file
from tzbench.runner.checkpoint import (
    CHECKPOINT_FORMAT,
    TRAINING_STATE,
    atomic_write_bytes,
    capture_rng,
    checkpoint_paths,
    new_run_dir,
    load_training_state,
    optimizer_from_flat,
    optimizer_to_flat,
    read_checkpoint_meta,
    restore_rng,
    rng_snapshot,
    save_checkpoint,
)
from tzbench.runner.context import (
    Judge,
    RunError,
    build_dataset,
    build_judges,
    build_sr_model,
    check_subsets,
    fetch,
    provenance,
    seed_everything,
)
from tzbench.runner.distributed import (
    DistContext,
    all_gather_object,
    all_reduce_sum,
    barrier,
    broadcast_object,
    init_distributed,
    rank_slice,
    shutdown,
)
from tzbench.runner.evaluate import evaluate
from tzbench.runner.precision import Precision, check_runtime
from tzbench.runner.records import TRAIN_LOG, RunLog, TrainRecords, sample_grid
from tzbench.runner.schedule import WeightAverage, make_scheduler

__all__ = [
    "TrainOutcome",
    "train",
    "epoch_order",
    "resolve_resume",
    "resume_config",
    "RESUME_MAY_CHANGE",
    "RESUME_AFTER_NONFINITE",
    "TrainFailed",
]

log = logging.getLogger("tzbench.runner")

#: Config fields a resumed run may change: none of them alters the weights' trajectory.
RESUME_MAY_CHANGE: frozenset[str] = frozenset({
    "steps", "checkpoint_every", "val_every", "eval_after", "judges", "device", "out_dir",
    "data.num_workers",
})
#: Allowed on top only when the run stopped on a non-finite loss, so that it can be continued
#: more carefully; every change is recorded in the run.
RESUME_AFTER_NONFINITE: frozenset[str] = frozenset({"optim.lr", "optim.grad_clip"})
#: In the message of a run stopped on a non-finite loss or weights (what allows the above).
NONFINITE_STOP = "the run stopped on a non-finite value"


@dataclass
class TrainOutcome:
    """Where a training run left its results."""

    run_id: int
    run_dir: Path
    best_checkpoint: Path | None
    last_checkpoint: Path
    best_score: float | None
    eval_run_id: int | None
    status: str
    step: int = 0
    message: str | None = None
    best_step: int | None = None


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of one epoch; a pure function of (seed, epoch), so resume is exact."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g)


# ---------------------------------------------------------------------------------------------
# data


def _batches(ds: Any, batch_size: int, seed: int, start_step: int, num_workers: int,
             ctx: DistContext) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(step, this rank's batch)`` from ``start_step`` on, forever (epochs drop the last
    incomplete global batch, so every step sees full batches on every rank)."""
    n = len(ds)
    global_bs = batch_size * ctx.world_size
    if n < global_bs:
        raise RunError(f"training set has {n} samples, fewer than one global batch of {global_bs} "
                       f"({ctx.world_size} process(es) x batch size {batch_size})")
    per_epoch = n // global_bs
    step = start_step
    while True:
        epoch, offset = divmod(step, per_epoch)
        order = epoch_order(n, seed, epoch)[: per_epoch * global_bs].view(per_epoch, global_bs)
        mine = [rank_slice(order[i], ctx) for i in range(offset, per_epoch)]
        if num_workers == 0:
            for idx in mine:
                yield step, fetch(ds, idx)
                step += 1
            continue
        # Worker seeds come from this generator, not the global RNG, so that a resumed run
        # draws the same random numbers as the uninterrupted one.
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        loader = DataLoader(ds, batch_sampler=[i.tolist() for i in mine], num_workers=num_workers,
                            collate_fn=collate, generator=gen, persistent_workers=False)
        for batch in loader:
            yield step, batch
            step += 1


# ---------------------------------------------------------------------------------------------
# validation and selection


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
        """What the checkpoints record about the selection."""
        return {"protocol": self.protocol, "metric": self.metric, "sets": list(self.sets),
                "recognizer": self.judge.name if self.judge else NO_RECOGNIZER,
                "aggregate": "mean over sets" if len(self.sets) > 1 else "single set"}


def _selection(cfg: TrainConfig, provider: Any, catalog: Catalog, device: torch.device) -> Selection:
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
def _validate(net: torch.nn.Module, sel: Selection, device: torch.device, batch_size: int,
              ctx: DistContext) -> dict[str, dict[str, float]]:
    """Metrics on each selection set; every rank evaluates its share, sums are all-reduced."""
    was_training = net.training
    net.eval()
    names = list(sel.sets)
    local: list[float] = []
    for name in names:
        ds = sel.sets[name]
        idx = torch.arange(min(len(ds), sel.limit))[ctx.rank::ctx.world_size]
        sums = [0.0] * 7  # psnr, ssim, n, correct, legacy psnr, legacy ssim, batches
        for start in range(0, idx.numel(), batch_size):
            batch = fetch(ds, idx[start:start + batch_size])
            sr = net(batch["lr"].to(device)).float()
            if not sel.legacy:
                sr = sr.clamp_(0, 1)
            hr = batch["hr"].to(device)
            sums[0] += float(psnr_per_image(sr, hr, clamp=sel.legacy).double().sum())
            sums[1] += float(ssim_per_image(sr, hr, clamp=sel.legacy).double().sum())
            sums[2] += sr.shape[0]
            if sel.judge is not None:
                preds = sel.judge.recognizer.recognize(sr[:, :3])
                sums[3] += sum(word_accuracy(preds, batch["label"], "val" if sel.legacy else "test"))
            if sel.legacy:
                sums[4] += psnr_legacy_batch(sr, hr)
                sums[5] += ssim_legacy_batch(sr, hr)
                sums[6] += 1
        local += sums
    total = all_reduce_sum(ctx, local)
    net.train(was_training)
    out: dict[str, dict[str, float]] = {}
    for k, name in enumerate(names):
        psnr, ssim, n, correct, lpsnr, lssim, nb = total[7 * k: 7 * k + 7]
        v = {"n": n, "psnr": psnr / n if n else math.nan, "ssim": ssim / n if n else math.nan}
        if sel.legacy and nb:
            v["psnr"], v["ssim"] = round(lpsnr / nb, 6), round(lssim / nb, 6)
        if sel.judge is not None:
            v["accuracy"] = correct / n if n else math.nan
        out[name] = v
    return out


def _mean(v: dict[str, dict[str, float]], metric: str) -> float:
    # Legacy: TextZoom compares the sum of the subsets' accuracies (the mean ranks the same).
    vals = [s[metric] for s in v.values()]
    return sum(vals) / len(vals)


def _improves(score: float, psnr: float, best_score: float | None, best_psnr: float | None) -> bool:
    """Strictly better by the selection metric, or equal to it with a higher mean PSNR."""
    if best_score is None or score > best_score:
        return True
    return score == best_score and psnr > (best_psnr if best_psnr is not None else -math.inf)


def _val_rows(sel: Selection, v: dict[str, dict[str, float]], step: int) -> list[ResultRow]:
    rows: list[ResultRow] = []
    for name, s in v.items():
        n = int(s["n"])
        rows += [ResultRow(name, NO_RECOGNIZER, "psnr", _finite(s["psnr"]), step, n),
                 ResultRow(name, NO_RECOGNIZER, "ssim", _finite(s["ssim"]), step, n)]
        if sel.judge is not None:
            rows.append(ResultRow(name, sel.judge.name, "accuracy", s["accuracy"], step, n))
    return rows


def _finite(x: float) -> float:
    return 1e9 if math.isinf(x) else x


# ---------------------------------------------------------------------------------------------
# resume


def _stopped_nonfinite(store: Store | None, meta: dict[str, Any]) -> bool:
    """Whether the checkpoint's run is recorded as stopped on a non-finite loss or weights."""
    if store is None or meta.get("run_id") is None:
        return False
    try:
        run = store.get_run(int(meta["run_id"]))
    except StoreError:  # a checkpoint of another database: nothing says it diverged
        return False
    return run.status == "failed" and NONFINITE_STOP in (run.message or "")


def resolve_resume(resume: str, store: Store | None) -> Path:
    """The training-state file named by ``--resume``: a run id, a run folder or a checkpoint."""
    if resume.isdigit():
        if store is None:
            raise RunError("--resume RUN_ID needs the database that recorded the run")
        run = store.get_run(int(resume))
        if run.kind != "train":
            raise RunError(f"run {resume} is a {run.kind} run, not a training run")
        run_dir = (run.config or {}).get("run_dir") or (str(Path(run.checkpoint).parent) if run.checkpoint else None)
        if run_dir is None:
            raise RunError(f"run {resume} records no run folder; pass the path of its last.safetensors")
        path = Path(run_dir) / "last.safetensors"
        if not path.is_file():
            raise RunError(f"run {resume} has no training state at {path} (it stopped before its first checkpoint; "
                           "start it again)")
        return path
    p = Path(resume)
    if p.is_dir():
        p = p / "last.safetensors"
    return checkpoint_paths(p)[0]


def resume_config(resume: str, store: Store | None) -> dict[str, Any]:
    """The config a resumed run continues with (the CLI applies ``--set`` on top of it)."""
    path = resolve_resume(resume, store)
    meta = read_checkpoint_meta(path)
    if meta.get("kind") != TRAINING_STATE:
        raise RunError(f"{path} is not a training-state checkpoint (use the run's last.safetensors or its id)")
    return dict(meta["config"])


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and k != "params":
            out.update(_flat(v, key))
        else:
            out[key] = v
    return out


def _config_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    a, b = _flat(old), _flat(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if _norm(a.get(k)) != _norm(b.get(k))}


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


# ---------------------------------------------------------------------------------------------
# stop requests (Ctrl-C, SIGTERM)


class _StopRequests:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so the checkpoint written on
    the way out is consistent (never taken half-way through an optimizer step). A second
    Ctrl-C (seconds later) raises KeyboardInterrupt at once."""

    #: A repeated SIGINT within this many seconds is the same Ctrl-C (torchrun forwards the
    #: terminal's SIGINT to workers that already received it), not a request to force-quit.
    FORCE_AFTER_S = 2.0

    def __init__(self) -> None:
        self.flag = False
        self.signal: str | None = None
        self._first = 0.0
        self._prev: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:  # noqa: ARG002 - signal API
        now = time.monotonic()
        if self.flag and signum == signal.SIGINT and now - self._first > self.FORCE_AFTER_S:
            raise KeyboardInterrupt
        if not self.flag:
            self.flag, self._first = True, now
            self.signal = signal.Signals(signum).name

    def __enter__(self) -> _StopRequests:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._prev[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread: the caller handles interrupts
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, prev in self._prev.items():
            signal.signal(sig, prev)


# ---------------------------------------------------------------------------------------------
# DDP helpers


def _unused_parameters(net: torch.nn.Module, in_channels: int, device: torch.device) -> bool:
    """Whether a training forward leaves some parameter without gradient (DDP must know).

    Probed on a copy with the RNG state restored afterwards, so the real model and the random
    stream are untouched."""
    rng = torch.get_rng_state()
    probe = copy.deepcopy(net).train()
    out = probe(torch.zeros(2, in_channels, 16, 64, device=device))
    out.float().sum().backward()
    unused = any(p.requires_grad and p.grad is None for p in probe.parameters())
    torch.set_rng_state(rng)
    return unused


def _has_batchnorm(net: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())


# ---------------------------------------------------------------------------------------------
# the run


def train(
    cfg: TrainConfig,
    store: Store | None,
    catalog: Catalog,
    resume: str | None = None,
    progress: bool = True,
    amp: str | None = None,
    compile: bool = False,
    log_every: int = 100,
    loggers: Sequence[str] = (),
) -> TrainOutcome:
    """Train ``cfg.model`` on ``cfg.data``; validate, checkpoint and record as configured.

    Args:
        cfg: the run's configuration.
        store: where the run is recorded; only rank 0 of a distributed job uses it (other
            ranks may pass ``None``).
        catalog: the components.
        resume: a run id, run folder or ``last`` checkpoint: training continues from its step
            with the same sample order, optimizer, RNG and scaler state, in the same run row.
            ``cfg`` must equal the checkpoint's config except for :data:`RESUME_MAY_CHANGE`.
        progress: a progress bar on a terminal; False (or output that is not a terminal): plain
            progress lines (rank 0). Either way the lines also go to ``<run>/train.log``.
        amp: ``bf16`` / ``fp16`` mixed precision, ``off``, or None (off; on resume: as before).
        compile: ``torch.compile`` the model (CUDA only).
        log_every: steps between records of the running-mean loss (``metrics.jsonl``, loggers,
            progress lines); also the window of that mean.
        loggers: names of training loggers (``register_loggers``, e.g. ``tensorboard``) to call.

    Under torchrun (``WORLD_SIZE`` > 1) every rank calls this; the model is wrapped in
    DistributedDataParallel and ``cfg.data.batch_size`` is the per-process batch.

    Raises:
        RunError: bad setup, or a non-finite loss (the run is then recorded as ``failed``).
    """
    ctx, device = init_distributed(cfg.device)
    if ctx.is_main and cfg.eval_after:
        # The judges of the final eval are built (then dropped) before training, so a missing
        # binary, package or weights file fails now, not after an hour of training.
        build_judges(catalog, cfg.judges, device)
    if ctx.is_main:
        check_loggers(catalog, loggers)  # an unknown name or a missing package: before the run row
    if log_every < 1:
        raise RunError(f"--log-every must be at least 1 (got {log_every})")
    try:
        result = _train(cfg, store, catalog, resume, progress, amp, compile, ctx, device, log_every, tuple(loggers))
    finally:
        shutdown(ctx)
    if ctx.is_main and result.status == "finished" and cfg.eval_after and result.best_checkpoint is not None:
        assert store is not None
        ecfg = EvalConfig(model=cfg.model, checkpoint=str(result.best_checkpoint), data=cfg.data, judges=cfg.judges,
                          protocol=cfg.protocol, seed=cfg.seed, device=str(device))
        result.eval_run_id = evaluate(ecfg, store, catalog, parent_id=result.run_id, progress=progress).run_id
        _log_eval(result.run_dir, store, result.eval_run_id)
    if result.status == "failed":
        raise TrainFailed(result)
    return result


class TrainFailed(RunError):
    """A training that ran and was recorded ``failed`` (a non-finite loss); ``outcome`` says where."""

    def __init__(self, outcome: TrainOutcome) -> None:
        super().__init__(outcome.message or "training failed")
        self.outcome = outcome


def _log_eval(run_dir: Path, store: Store, eval_run_id: int) -> None:
    """The final evaluation's results, appended to the training run's log."""
    runlog = RunLog(run_dir / TRAIN_LOG)
    try:
        for r in store.results(eval_run_id):
            runlog.write(f"final eval (run {eval_run_id}): {r.subset} {r.recognizer} {r.metric}={r.value:.4f} "
                         f"(n={r.n_samples})")
    finally:
        runlog.close()


def _loss_terms(criterion: Any) -> dict[str, float]:
    """The loss's named terms of its last call (``.parts``), as floats; {} when it has none."""
    parts = getattr(criterion, "parts", None)
    if not isinstance(parts, Mapping):
        return {}
    return {str(k): float(v) for k, v in parts.items()}


@torch.no_grad()
def _sample_grid(net: torch.nn.Module, sel: Selection, device: torch.device, k: int = 4) -> torch.Tensor:
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


def _open_records(cfg: TrainConfig, run_id: int, run_dir: Path, start_step: int, resumed: bool, log_every: int,
                  progress: bool, loggers: list[Any], device: torch.device, world_size: int) -> TrainRecords:
    """Rank 0's train.log, metrics.jsonl, loggers and progress display, started."""
    records = TrainRecords(run_dir, f"train {cfg.model.name}", cfg.steps, start_step, log_every, progress,
                           LoggerSet(loggers))
    what = f"run {run_id} resumed at step {start_step}" if resumed else f"run {run_id}"
    records.start({"run_id": run_id, "run_dir": str(run_dir), "model": cfg.model.name, "steps": cfg.steps,
                   "start_step": start_step, "config": cfg.model_dump(mode="json")},
                  f"tzbench train {cfg.model.name}: {what}, {cfg.steps} steps, folder {run_dir} "
                  f"(device {device}, {world_size} process(es), pid {os.getpid()})", resumed)
    return records


def _train(cfg: TrainConfig, store: Store | None, catalog: Catalog, resume: str | None, progress: bool,
           amp: str | None, compile: bool, ctx: DistContext, device: torch.device, log_every: int = 100,
           loggers: tuple[str, ...] = ()) -> TrainOutcome:
    if ctx.is_main and store is None:
        raise RunError("train() needs a Store on rank 0")
    seed_everything(cfg.seed, cfg.deterministic)
    info = build_sr_model(catalog, cfg.model.name, cfg.model.params)
    if not info.trainable:
        raise RunError(f"{cfg.model.name} has no trainable parameters: evaluate it with `tzbench eval {cfg.model.name}`")

    # -- resume: read the state first, so a config mismatch fails before any work ----------
    state: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    if resume is not None:
        # Rank 0 resolves a run id through the database; the other ranks get the path.
        path = broadcast_object(ctx, str(resolve_resume(resume, store)) if ctx.is_main else None)
        state, meta, _ = load_training_state(path)
        if meta["sr_model"] != cfg.model.name:
            raise RunError(f"the checkpoint is of {meta['sr_model']!r}, not of {cfg.model.name!r}")
        changes = _config_changes(meta["config"], cfg.model_dump(mode="json"))
        may = set(RESUME_MAY_CHANGE)
        if broadcast_object(ctx, _stopped_nonfinite(store, meta) if ctx.is_main else None):
            may |= RESUME_AFTER_NONFINITE
        locked = {k: v for k, v in changes.items() if k not in may}
        if locked:
            shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in locked.items())
            after = (f" ({', '.join(sorted(RESUME_AFTER_NONFINITE))} too after a non-finite loss)"
                     if may == set(RESUME_MAY_CHANGE) else "")
            raise RunError(f"cannot resume with a different configuration ({shown}); only "
                           f"{', '.join(sorted(may))} may change{after}")
        if int(meta.get("world_size", 1)) != ctx.world_size:
            raise RunError(f"the run was trained with {meta.get('world_size', 1)} process(es), this job has "
                           f"{ctx.world_size}: resume with the same number (the global batch would change)")
        if amp is None:
            amp = (meta.get("runtime") or {}).get("amp")
    amp = None if amp in (None, "off", "none") else amp
    check_runtime(amp, compile, device)
    prec = Precision(amp, device)  # type: ignore[arg-type]

    net = info.module.to(device)
    loss_name = cfg.loss.name if cfg.loss else info.default_loss
    loss_params = cfg.loss.params if cfg.loss else info.default_loss_params
    criterion = catalog.create("losses", loss_name, loss_params).to(device)
    provider, _ = build_dataset(catalog, cfg.data.dataset, cfg.data.params, info.in_channels)
    if cfg.eval_after:
        check_subsets(provider, cfg.data.dataset, cfg.data.subsets)  # before hours of training
    train_ds = provider.load("train", None)
    sel = _selection(cfg, provider, catalog, device)

    opt = torch.optim.Adam(net.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                           weight_decay=cfg.optim.weight_decay)
    start_step = 0
    # The selection's best: its score, then mean val PSNR to break ties (accuracy on a few
    # hundred pairs ties often while PSNR still rises), and the step that made it.
    best_score: float | None = None
    best_psnr: float | None = None
    best_step: int | None = None
    train_seconds = 0.0
    if resume is not None:
        net.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")}, strict=True)
        optimizer_from_flat(opt, {k: v.to(device) for k, v in state.items() if k.startswith("optim.")}, meta["optimizer"])
        for g in opt.param_groups:  # the allowed changes take effect
            g["lr"] = cfg.optim.lr
        ranks = meta.get("rng_ranks") or [None]
        mine = ranks[ctx.rank] if ctx.rank < len(ranks) else None
        restore_rng({k[len(f"rank{ctx.rank}."):]: v for k, v in state.items() if k.startswith(f"rank{ctx.rank}.rng.")}
                    or {k: v for k, v in state.items() if k.startswith("rng.")}, mine)
        prec.load_state(meta.get("scaler"))
        start_step = int(meta["step"])
        best_score = meta.get("best_score")
        best_psnr, best_step = meta.get("best_psnr"), meta.get("best_step")
        train_seconds = float(meta.get("train_seconds", 0.0))
        if start_step >= cfg.steps:
            raise RunError(f"the run already reached step {start_step}; pass --steps > {start_step} to continue it")

    ema = WeightAverage(net, cfg.optim.ema_decay) if cfg.optim.ema_decay else None
    if ema is not None and resume is not None:
        ema.load_state_tensors(state)
    scheduler = make_scheduler(opt, cfg.optim, cfg.steps)

    runtime = {"amp": amp, "compile": compile, "world_size": ctx.world_size,
               "global_batch_size": cfg.data.batch_size * ctx.world_size, "backend": ctx.backend}

    # -- the run row (rank 0) and the run folder ---------------------------------------------
    run_id: int
    run_dir: Path
    if ctx.is_main:
        assert store is not None
        if resume is not None:
            run_id = int(meta["run_id"])
            run = store.get_run(run_id)
            if (run.status == "running" and run.host == socket.gethostname() and run.pid
                    and run.pid != os.getpid() and pid_alive(run.pid)):
                raise RunError(f"run {run_id} is still running (pid {run.pid}); stop it before resuming")
            run_dir = Path((run.config or {}).get("run_dir") or Path(path).parent).resolve()
            changes = _config_changes(meta["config"], cfg.model_dump(mode="json"))
            config = dict(run.config or {})
            config.update(cfg.model_dump(mode="json"))
            config["resumes"] = [*config.get("resumes", []), {
                "step": start_step, "changed": {k: b for k, (_, b) in changes.items()}, "pid": os.getpid()}]
            config["runtime"] = runtime
            config["records"] = {"log_every": log_every, "loggers": list(loggers)}
            store.update_run(run_id, status="running", finished_at=None, message=None, pid=os.getpid(),
                             host=socket.gethostname(), config=config)
        else:
            run_id = store.start_run(
                kind="train", sr_model=cfg.model.name, provider=info.provider, benchmark=cfg.data.dataset,
                protocol=cfg.protocol, config=cfg.model_dump(mode="json"), n_params=info.n_params,
                seed=cfg.seed, **provenance(device),
            )
            try:
                run_dir = new_run_dir(cfg.out_dir, f"{run_id:05d}-{cfg.model.name}")
            except OSError as exc:  # unwritable out_dir: the row must not be left "running"
                store.finish_run(run_id, "failed", message=f"cannot create the run folder: {exc}")
                raise RunError(f"out_dir {cfg.out_dir}: cannot create the run folder ({exc})") from None
            store.update_run(run_id, checkpoint=str(run_dir / "best.safetensors"),
                             config={**cfg.model_dump(mode="json"), "run_dir": str(run_dir), "runtime": runtime,
                                     "selection": sel.describe(),
                                     "records": {"log_every": log_every, "loggers": list(loggers)}})
        # Re-runnable as is: tzbench train MODEL --config <run folder>/config.yaml
        atomic_write_bytes(run_dir / "config.yaml",
                           yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False).encode())
        shared = (run_id, str(run_dir))
    else:
        shared = None
    run_id, run_dir_s = broadcast_object(ctx, shared)
    run_dir = Path(run_dir_s)
    best_path = run_dir / "best"
    last_path = run_dir / "last"

    # -- the model as trained: DDP, SyncBatchNorm on CUDA, compile ---------------------------
    model: torch.nn.Module = net
    if ctx.enabled:
        if _has_batchnorm(net):
            if device.type == "cuda":
                net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
                runtime["sync_batchnorm"] = True
            elif ctx.is_main:
                log.warning("%s has BatchNorm: on the CPU its statistics are per process (SyncBatchNorm needs CUDA)",
                            cfg.model.name)
        unused = _unused_parameters(net, info.in_channels, device)
        model = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=unused)
    if compile:
        model = torch.compile(model)  # type: ignore[assignment]
    # What validation, selection and the final eval see; taken after the SyncBatchNorm swap.
    scored = ema.module if ema is not None else net

    def meta_for(step: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "sr_model": cfg.model.name, "params": info.params,
            "in_channels": info.in_channels, "step": step, "run_id": run_id, "best_score": best_score,
            "best_psnr": best_psnr, "best_step": best_step, "ema_decay": cfg.optim.ema_decay,
            "selection": sel.describe(), "protocol": cfg.protocol, "config": cfg.model_dump(mode="json"),
            "runtime": runtime, "world_size": ctx.world_size, **provenance(device), **(extra or {}),
        }

    last_saved: dict[str, Any] = {"step": start_step if resume is not None else None}

    def save_last(step: int, elapsed: float, rng: tuple[Any, ...] | None = None) -> None:
        """Every rank contributes its RNG state (``rng``: a snapshot from the top of the step);
        rank 0 writes."""
        if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
            raise FloatingPointError(f"the weights became non-finite at step {step}")
        rng_t, rng_js = capture_rng(rng)
        gathered = all_gather_object(ctx, ({k: v.clone() for k, v in rng_t.items()}, rng_js))
        if not ctx.is_main:
            return
        opt_tensors, opt_meta = optimizer_to_flat(opt)
        tensors = {**{f"model.{k}": v for k, v in net.state_dict().items()}, **opt_tensors, **rng_t,
                   **(ema.state_tensors() if ema is not None else {})}
        for r, (t, _) in enumerate(gathered):
            tensors.update({f"rank{r}.{k}": v for k, v in t.items()})
        save_checkpoint(last_path, tensors, meta_for(step, {
            "kind": TRAINING_STATE, "optimizer": opt_meta, "rng_ranks": [js for _, js in gathered],
            "scaler": prec.state(), "train_seconds": elapsed,
            "loss_window": records.window.state() if records is not None else {}}))
        last_saved["step"] = step

    # -- the loop -------------------------------------------------------------------------------
    net.train()
    step = start_step
    status, message = "finished", None
    t0 = time.perf_counter() - train_seconds
    params = [p for p in net.parameters() if p.requires_grad]
    records: TrainRecords | None = None
    try:
        if ctx.is_main:
            records = _open_records(cfg, run_id, run_dir, start_step, resume is not None, log_every, progress,
                                    build_loggers(catalog, loggers, run_dir), device, ctx.world_size)
            if resume is not None:  # the running mean goes on over the steps before the checkpoint
                records.window.load(meta.get("loss_window"))
        with _StopRequests() as stop, (records if records is not None else contextlib.nullcontext()):
            batches = _batches(train_ds, cfg.data.batch_size, cfg.seed, start_step, cfg.data.num_workers, ctx)
            while step < cfg.steps:
                # The state after `step` updates: RNG first, since fetching and the forward may draw.
                rng = rng_snapshot()
                _, batch = next(batches)
                lr = batch["lr"].to(device, non_blocking=True)
                hr = batch["hr"].to(device, non_blocking=True)
                with prec.autocast():
                    sr = model(lr)
                    # A loss that reads the words (a recognizer's CE) says so; the others keep (sr, hr).
                    loss = (criterion(sr, hr, labels=batch["label"]) if getattr(criterion, "needs_labels", False)
                            else criterion(sr, hr))
                terms = _loss_terms(criterion)
                # One reduction carries the loss, its terms and the stop flag: every rank stops at the same step.
                loss_sum, stops, *term_sums = all_reduce_sum(ctx, [float(loss.detach()), float(stop.flag),
                                                                   *terms.values()])
                mean_loss = loss_sum / ctx.world_size
                if not math.isfinite(mean_loss):
                    raise FloatingPointError(f"the training loss became {mean_loss} at step {step}")
                # A periodic checkpoint of the state after `step` updates is written only now that
                # those weights gave a finite loss: "last" is always a good state to resume from.
                if stops or (step > start_step and step % cfg.checkpoint_every == 0):
                    save_last(step, time.perf_counter() - t0, rng)
                if stops:
                    break
                opt.zero_grad(set_to_none=True)
                if scheduler is not None:
                    scheduler.step_update(step)
                prec.backward_step(loss * cfg.optim.loss_scale, opt, params, cfg.optim.grad_clip)
                step += 1
                if ema is not None:
                    ema.update(net, step)
                if records is not None:
                    records.step(step, mean_loss, {k: v / ctx.world_size for k, v in zip(terms, term_sums)},
                                 float(opt.param_groups[0]["lr"]))
                if step % cfg.val_every == 0 or step == cfg.steps:
                    v = _validate(scored, sel, device, cfg.data.eval_batch_size, ctx)
                    score, psnr = _mean(v, sel.metric), _mean(v, "psnr")
                    improved = _improves(score, psnr, best_score, best_psnr)
                    if improved:
                        best_score, best_psnr, best_step = score, psnr, step
                    if ctx.is_main:
                        assert store is not None and records is not None
                        if improved:
                            save_checkpoint(best_path, scored.state_dict(), meta_for(step, {"val": v, "kind": "model"}))
                        # The train loss of the DB's history: the mean over the last log_every steps.
                        seen = records.window.count("loss") * lr.shape[0] * ctx.world_size
                        store.add_results(run_id, [*_val_rows(sel, v, step),
                                                   ResultRow("train", NO_RECOGNIZER, "loss", records.window.mean("loss"),
                                                             step, seen)])
                        grid = _sample_grid(scored, sel, device) if records.loggers else None
                        records.validation(step, v, sel.metric, score, improved, grid)
            if step == cfg.steps:
                save_last(step, time.perf_counter() - t0)
            else:  # stopped by a signal; the state was saved above
                status = "interrupted"
                message = (f"interrupted ({stop.signal or 'signal'}) at step {step}; "
                           f"resume with: tzbench train {cfg.model.name} --resume {run_id}")
    except FloatingPointError as exc:
        status = "failed"
        if last_saved["step"] is not None:
            hint = (f"the last good checkpoint is {checkpoint_paths(last_path)[0]} (step {last_saved['step']}); "
                    f"resume it with a lower learning rate: tzbench train {cfg.model.name} --resume {run_id} "
                    f"--set optim.lr=...")
        else:
            hint = "no checkpoint was written before it (lower optim.lr or set optim.grad_clip and start again)"
        message = f"{exc}; {NONFINITE_STOP}: {hint}"
    except BaseException as exc:
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, OSError) and last_saved["step"] is not None:
            # e.g. a full disk while checkpointing: the previous state is whole (atomic writes)
            text += (f"; the last good checkpoint is {checkpoint_paths(last_path)[0]} (step {last_saved['step']}): "
                     f"fix the cause, then resume with: tzbench train {cfg.model.name} --resume {run_id}")
        if ctx.is_main and store is not None:
            kind = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            store.finish_run(run_id, kind, message=text)
            if records is not None:
                records.close(f"run {run_id} {kind}: {text}")
        if isinstance(exc, OSError):
            raise RunError(text) from exc
        raise
    elapsed = time.perf_counter() - t0
    barrier(ctx)
    best_file = checkpoint_paths(best_path)[0]
    last_file = checkpoint_paths(last_path)[0]
    if ctx.is_main:
        assert store is not None
        store.finish_run(
            run_id, status, message=message, checkpoint=str(best_file) if best_file.exists() else None,
            bad_samples=len(getattr(train_ds, "bad_samples", []) or []),
        )
        if best_file.exists():
            store.update_run(run_id, checkpoint_sha256=sha256_file(best_file))
        store.add_results(run_id, [ResultRow("train", NO_RECOGNIZER, "seconds", elapsed, -1, step)])
        if records is not None:
            chosen = f"; best step {best_step}, checkpoint {best_file}" if best_file.exists() else ""
            records.close(f"run {run_id} {status} at step {step} in {elapsed:.0f} s{chosen}"
                          + (f"; {message}" if message else ""))
    return TrainOutcome(run_id, run_dir, best_file if best_file.exists() else None, last_file, best_score, None,
                        status, step, message, best_step)

