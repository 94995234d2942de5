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
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.data import DataLoader

from tzbench.catalog import Catalog
from tzbench.config import EvalConfig, TrainConfig
from tzbench.data import collate
from tzbench.db.models import NO_RECOGNIZER
from tzbench.db.store import ResultRow, Store
from tzbench.loggers import LoggerSet, build_loggers, check_loggers
from tzbench.runner.checkpoint import (
    CHECKPOINT_FORMAT,
    TRAINING_STATE,
    atomic_write_bytes,
    capture_rng,
    checkpoint_paths,
    new_run_dir,
    optimizer_to_flat,
    rng_snapshot,
    save_checkpoint,
)
from tzbench.runner.context import (
    RunError,
    SRModelInfo,
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
    wrap_model,
)
from tzbench.runner.evaluate import evaluate
from tzbench.runner.precision import Precision, check_runtime, cpu_compiler
from tzbench.runner.recorder import RunRecorder
from tzbench.runner.records import TRAIN_LOG, RunLog, TrainRecords
from tzbench.runner.resume import (
    NONFINITE_STOP,
    RESUME_AFTER_NONFINITE,
    RESUME_MAY_CHANGE,
    ResumePoint,
    config_changes,
    load_resume,
    resolve_resume,
    resume_config,
)
from tzbench.runner.schedule import WeightAverage, make_scheduler
from tzbench.runner.selection import (
    Selection,
    build_selection,
    improves,
    mean_of,
    selection_grid,
    val_rows,
    validate,
)
from tzbench.runner.signals import StopRequests

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

# Names tests import from here since before the split into resume.py and selection.py.
_improves = improves
_validate = validate

log = logging.getLogger("tzbench.runner")


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
# the entry point


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
        compile: ``torch.compile`` the model being trained (also when ``cfg.compile``); on the CPU it
            needs a C++ compiler.
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
        result = _train(cfg, store, catalog, resume, progress, amp, compile or _config_compile(cfg, device, ctx),
                        ctx, device, log_every, tuple(loggers))
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


# ---------------------------------------------------------------------------------------------
# the run's parts and state


@dataclass
class _Parts:
    """What one run trains with, built before its run row."""

    info: SRModelInfo
    net: torch.nn.Module  # the weights; replaced by its SyncBatchNorm copy under DDP on CUDA
    criterion: torch.nn.Module
    train_ds: Any
    sel: Selection
    opt: torch.optim.Optimizer
    prec: Precision
    ema: WeightAverage | None = None
    scheduler: Any = None
    model: torch.nn.Module | None = None  # as trained: DDP, compiled
    scored: torch.nn.Module | None = None  # what validation, selection and the final eval see
    init: dict[str, Any] | None = None  # the weights a fine-tuning run started from


@dataclass
class _Loop:
    """The state carried from step to step, and into the checkpoints."""

    start_step: int = 0
    step: int = 0
    # The selection's best: its score, then mean val PSNR to break ties (accuracy on a few
    # hundred pairs ties often while PSNR still rises), and the step that made it.
    best_score: float | None = None
    best_psnr: float | None = None
    best_step: int | None = None
    train_seconds: float = 0.0
    saved_step: int | None = None  # the step of the last "last" checkpoint written
    t0: float = 0.0
    status: str = "finished"
    message: str | None = None

    @classmethod
    def resumed(cls, meta: Mapping[str, Any]) -> _Loop:
        """The state a training-state checkpoint recorded."""
        step = int(meta["step"])
        return cls(step, step, meta.get("best_score"), meta.get("best_psnr"), meta.get("best_step"),
                   float(meta.get("train_seconds", 0.0)), step)


@dataclass
class _Run:
    """One training run in progress: its config, parts, state and where it is recorded."""

    cfg: TrainConfig
    ctx: DistContext
    device: torch.device
    parts: _Parts
    loop: _Loop
    runtime: dict[str, Any]
    run_id: int
    run_dir: Path
    recorder: RunRecorder | None  # rank 0 only
    records: TrainRecords | None = None  # rank 0 only, once the loop starts


# ---------------------------------------------------------------------------------------------
# the run


def _train(cfg: TrainConfig, store: Store | None, catalog: Catalog, resume: str | None, progress: bool,
           amp: str | None, compile: bool, ctx: DistContext, device: torch.device, log_every: int = 100,
           loggers: tuple[str, ...] = ()) -> TrainOutcome:
    if ctx.is_main and store is None:
        raise RunError("train() needs a Store on rank 0")
    seed_everything(cfg.seed, cfg.deterministic)
    info = build_sr_model(catalog, cfg.model.name, cfg.model.params)
    if not info.trainable:
        raise RunError(f"{cfg.model.name} has no trainable parameters: evaluate it with `tzbench eval {cfg.model.name}`")
    # Resume: the state is read first, so that a config mismatch fails before any work.
    point = load_resume(resume, store, cfg, ctx) if resume is not None else None
    if amp is None and point is not None:
        amp = (point.meta.get("runtime") or {}).get("amp")
    amp = None if amp in (None, "off", "none") else amp
    check_runtime(amp, compile, device)
    parts = _build(cfg, catalog, info, device, Precision(amp, device))  # type: ignore[arg-type]
    loop = _Loop()
    if point is None and cfg.init is not None:  # a resumed run has its own weights already
        parts.init = init_weights(catalog, cfg.model.name, cfg.init, parts.net)
    if point is not None:
        point.restore(parts.net, parts.opt, parts.prec, cfg, ctx, device)
        loop = _Loop.resumed(point.meta)
    parts.ema = WeightAverage(parts.net, cfg.optim.ema_decay) if cfg.optim.ema_decay else None
    if parts.ema is not None and point is not None:
        parts.ema.load_state_tensors(point.state)
    parts.scheduler = make_scheduler(parts.opt, cfg.optim, cfg.steps)
    runtime = {"amp": amp, "compile": compile, "world_size": ctx.world_size,
               "global_batch_size": cfg.data.batch_size * ctx.world_size, "backend": ctx.backend}
    recorder, run_id, run_dir = _open_run(cfg, store, ctx, device, point, parts, runtime, log_every, loggers)
    parts.model, parts.net = wrap_model(parts.net, ctx, device, info.in_channels, compile, runtime, cfg.model.name)
    # Taken after the SyncBatchNorm swap.
    parts.scored = parts.ema.module if parts.ema is not None else parts.net
    run = _Run(cfg, ctx, device, parts, loop, runtime, run_id, run_dir, recorder)
    _run_loop(run, catalog, progress, point, log_every, loggers)
    return _finish(run)


def _build(cfg: TrainConfig, catalog: Catalog, info: SRModelInfo, device: torch.device, prec: Precision) -> _Parts:
    """The model on its device, the loss, the training and selection data, the optimizer."""
    net = info.module.to(device)
    loss_name = cfg.loss.name if cfg.loss else info.default_loss
    loss_params = cfg.loss.params if cfg.loss else info.default_loss_params
    criterion = catalog.create("losses", loss_name, loss_params).to(device)
    provider, _ = build_dataset(catalog, cfg.data.dataset, cfg.data.params, info.in_channels)
    if cfg.eval_after:
        check_subsets(provider, cfg.data.dataset, cfg.data.subsets)  # before hours of training
    train_ds = provider.load("train", None)
    sel = build_selection(cfg, provider, catalog, device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                           weight_decay=cfg.optim.weight_decay)
    return _Parts(info, net, criterion, train_ds, sel, opt, prec)


def _config_compile(cfg: TrainConfig, device: torch.device, ctx: DistContext) -> bool:
    """``cfg.compile``, unless the CPU has no C++ compiler for inductor: a recipe's ``compile`` is
    a speed preference, so the run goes on eager and says so (``--compile`` itself is refused)."""
    if not cfg.compile or device.type != "cpu" or cpu_compiler() is not None:
        return cfg.compile
    if ctx.is_main:
        log.warning("compile=true: no C++ compiler (g++, clang++ or $CXX) for inductor on the CPU; training eager")
    return False


def init_weights(catalog: Catalog, model: str, source: str, net: torch.nn.Module) -> dict[str, Any]:
    """Load the fine-tuning start ``source`` into ``net`` strictly; what the run records of it.

    ``source`` is ``pretrained`` / ``pretrained:TAG`` (the shipped weights) or a tzbench SR
    checkpoint (a file, or a run folder: its best checkpoint).
    """
    from tzbench.pretrained import pick_pretrained, pretrained_path
    from tzbench.runner.checkpoint import load_sr_checkpoint

    if source == "pretrained" or source.startswith("pretrained:"):
        tag = source.partition(":")[2] or True
        path = pretrained_path(pick_pretrained(catalog, model, tag))
    else:
        path = Path(source).expanduser()
        # A run folder means its best; a stem or .json names its .safetensors, as everywhere else.
        path = checkpoint_paths(path / "best" if path.is_dir() else path)[0]
        if not path.is_file():
            raise RunError(f"init={source}: no such checkpoint file")
    meta = load_sr_checkpoint(path, net, model)
    return {"source": source, "path": str(path.resolve()), "sha256": meta["weights_sha256"],
            "from_run": meta.get("run_id"), "from_step": meta.get("step")}


def _model_provenance(module: torch.nn.Module) -> dict[str, Any]:
    """What a model says about the components inside it, for the run row.

    A model with a text prior (tpgsr, tatt) exposes ``prior_info`` (the prior's name, weights
    and sha256): the issue's rule that every run records which prior it used.
    """
    info = getattr(module, "prior_info", None)
    return {"prior": dict(info)} if isinstance(info, dict) else {}


def _open_run(cfg: TrainConfig, store: Store | None, ctx: DistContext, device: torch.device,
              point: ResumePoint | None, parts: _Parts, runtime: dict[str, Any], log_every: int,
              loggers: tuple[str, ...]) -> tuple[RunRecorder | None, int, Path]:
    """Rank 0 starts the run row (or reopens the resumed one) and the run folder; every rank gets both."""
    recorder: RunRecorder | None = None
    shared: tuple[int, str] | None = None
    if ctx.is_main:
        assert store is not None
        cfg_json = cfg.model_dump(mode="json")
        records_cfg = {"log_every": log_every, "loggers": list(loggers)}
        if point is not None:
            recorder = RunRecorder.reopen(store, int(point.meta["run_id"]))
            row = recorder.row()
            run_dir = Path((row.config or {}).get("run_dir") or Path(point.path).parent).resolve()
            changes = config_changes(point.meta["config"], cfg_json)
            config = {**(row.config or {}), **cfg_json}
            config["resumes"] = [*config.get("resumes", []), {
                "step": point.step, "changed": {k: b for k, (_, b) in changes.items()}, "pid": os.getpid()}]
            config["runtime"] = runtime
            config["records"] = records_cfg
            recorder.restart(config)
        else:
            recorder = RunRecorder.start(
                store, kind="train", device=device, config=cfg_json, sr_model=cfg.model.name,
                provider=parts.info.provider, benchmark=cfg.data.dataset, protocol=cfg.protocol,
                n_params=parts.info.n_params, seed=cfg.seed)
            try:
                run_dir = new_run_dir(cfg.out_dir, f"{recorder.run_id:05d}-{cfg.model.name}")
            except OSError as exc:  # unwritable out_dir: the row must not be left "running"
                recorder.finish("failed", message=f"cannot create the run folder: {exc}")
                raise RunError(f"out_dir {cfg.out_dir}: cannot create the run folder ({exc})") from None
            extra = _model_provenance(parts.info.module)
            if parts.init is not None:
                extra["init_weights"] = parts.init
            recorder.update(checkpoint=str(run_dir / "best.safetensors"),
                            config={**cfg_json, "run_dir": str(run_dir), "runtime": runtime,
                                    "selection": parts.sel.describe(), "records": records_cfg, **extra})
        # Re-runnable as is: tzbench train MODEL --config <run folder>/config.yaml
        atomic_write_bytes(run_dir / "config.yaml", yaml.safe_dump(cfg_json, sort_keys=False).encode())
        shared = (recorder.run_id, str(run_dir))
    run_id, run_dir_s = broadcast_object(ctx, shared)
    return recorder, run_id, Path(run_dir_s)


def _run_loop(run: _Run, catalog: Catalog, progress: bool, point: ResumePoint | None, log_every: int,
              loggers: tuple[str, ...]) -> None:
    """The steps, with rank 0's records open; a failure is recorded in the run row and the log."""
    cfg, ctx, loop = run.cfg, run.ctx, run.loop
    run.parts.net.train()
    loop.t0 = time.perf_counter() - loop.train_seconds
    try:
        if ctx.is_main:
            run.records = _open_records(cfg, run.run_id, run.run_dir, loop.start_step, point is not None, log_every,
                                        progress, build_loggers(catalog, loggers, run.run_dir), run.device,
                                        ctx.world_size)
            if point is not None:  # the running mean goes on over the steps before the checkpoint
                run.records.window.load(point.meta.get("loss_window"))
        with StopRequests() as stop, (run.records if run.records is not None else contextlib.nullcontext()):
            _steps(run, stop)
    except FloatingPointError as exc:
        loop.status = "failed"
        if loop.saved_step is not None:
            hint = (f"the last good checkpoint is {checkpoint_paths(run.run_dir / 'last')[0]} (step {loop.saved_step}); "
                    f"resume it with a lower learning rate: tzbench train {cfg.model.name} --resume {run.run_id} "
                    f"--set optim.lr=...")
        else:
            hint = "no checkpoint was written before it (lower optim.lr or set optim.grad_clip and start again)"
        loop.message = f"{exc}; {NONFINITE_STOP}: {hint}"
    except BaseException as exc:
        text = _record_crash(run, exc)
        if isinstance(exc, OSError):
            raise RunError(text) from exc
        raise


def _record_crash(run: _Run, exc: BaseException) -> str:
    """Record the run ended by ``exc`` (rank 0); returns the message, with the resume hint after an OSError."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError) and run.loop.saved_step is not None:
        # e.g. a full disk while checkpointing: the previous state is whole (atomic writes)
        text += (f"; the last good checkpoint is {checkpoint_paths(run.run_dir / 'last')[0]} "
                 f"(step {run.loop.saved_step}): fix the cause, then resume with: "
                 f"tzbench train {run.cfg.model.name} --resume {run.run_id}")
    if run.recorder is not None:
        kind = run.recorder.abort(exc, text)
        if run.records is not None:
            run.records.close(f"run {run.run_id} {kind}: {text}")
    return text


def _steps(run: _Run, stop: StopRequests) -> None:
    """Optimizer steps until ``cfg.steps`` or a stop request (the state is then saved first)."""
    cfg, ctx, p, loop = run.cfg, run.ctx, run.parts, run.loop
    params = [q for q in p.net.parameters() if q.requires_grad]
    batches = _batches(p.train_ds, cfg.data.batch_size, cfg.seed, loop.start_step, cfg.data.num_workers, ctx)
    if p.init is not None and loop.step == 0:
        # Fine-tuning: the weights it starts from are the first candidate, so the selected
        # checkpoint is never worse on val than the start.
        _validation(run, cfg.data.batch_size)
    while loop.step < cfg.steps:
        # The state after `step` updates: RNG first, since fetching and the forward may draw.
        rng = rng_snapshot()
        _, batch = next(batches)
        loss, mean_loss, terms, stops = _forward(run, batch, stop)
        # A periodic checkpoint of the state after `step` updates is written only now that
        # those weights gave a finite loss: "last" is always a good state to resume from.
        if stops or (loop.step > loop.start_step and loop.step % cfg.checkpoint_every == 0):
            _save_last(run, rng)
        if stops:
            break
        p.opt.zero_grad(set_to_none=True)
        if p.scheduler is not None:
            p.scheduler.step_update(loop.step)
        p.prec.backward_step(loss * cfg.optim.loss_scale, p.opt, params, cfg.optim.grad_clip)
        loop.step += 1
        if p.ema is not None:
            p.ema.update(p.net, loop.step)
        if run.records is not None:
            run.records.step(loop.step, mean_loss, terms, float(p.opt.param_groups[0]["lr"]))
        if loop.step % cfg.val_every == 0 or loop.step == cfg.steps:
            _validation(run, batch["lr"].shape[0])
    if loop.step == cfg.steps:
        _save_last(run)
    else:  # stopped by a signal; the state was saved above
        loop.status = "interrupted"
        loop.message = (f"interrupted ({stop.signal or 'signal'}) at step {loop.step}; "
                        f"resume with: tzbench train {cfg.model.name} --resume {run.run_id}")


def _forward(run: _Run, batch: dict[str, Any],
             stop: StopRequests) -> tuple[torch.Tensor, float, dict[str, float], bool]:
    """``(loss, mean loss over ranks, mean loss terms, whether a rank was asked to stop)`` of one batch."""
    ctx, p, device = run.ctx, run.parts, run.device
    assert p.model is not None
    lr = batch["lr"].to(device, non_blocking=True)
    hr = batch["hr"].to(device, non_blocking=True)
    with p.prec.autocast():
        sr = p.model(lr)
        # A loss that reads the words (a recognizer's CE) says so; the others keep (sr, hr).
        loss = (p.criterion(sr, hr, labels=batch["label"]) if getattr(p.criterion, "needs_labels", False)
                else p.criterion(sr, hr))
    terms = _loss_terms(p.criterion)
    # One reduction carries the loss, its terms and the stop flag: every rank stops at the same step.
    loss_sum, stops, *term_sums = all_reduce_sum(ctx, [float(loss.detach()), float(stop.flag), *terms.values()])
    mean_loss = loss_sum / ctx.world_size
    if not math.isfinite(mean_loss):
        raise FloatingPointError(f"the training loss became {mean_loss} at step {run.loop.step}")
    return loss, mean_loss, {k: v / ctx.world_size for k, v in zip(terms, term_sums)}, bool(stops)


def _validation(run: _Run, batch_size: int) -> None:
    """Validate the scored model; rank 0 keeps a better one as ``best`` and records the numbers."""
    cfg, ctx, p, loop = run.cfg, run.ctx, run.parts, run.loop
    assert p.scored is not None
    v = validate(p.scored, p.sel, run.device, cfg.data.eval_batch_size, ctx)
    score, psnr = mean_of(v, p.sel.metric), mean_of(v, "psnr")
    improved = improves(score, psnr, loop.best_score, loop.best_psnr)
    if improved:
        loop.best_score, loop.best_psnr, loop.best_step = score, psnr, loop.step
    if not ctx.is_main:
        return
    records = run.records
    assert run.recorder is not None and records is not None
    if improved:
        save_checkpoint(run.run_dir / "best", p.scored.state_dict(), _meta(run, {"val": v, "kind": "model"}))
    # The train loss of the DB's history: the mean over the last log_every steps.
    seen = records.window.count("loss") * batch_size * ctx.world_size
    loss = [ResultRow("train", NO_RECOGNIZER, "loss", records.window.mean("loss"), loop.step, seen)] if seen else []
    run.recorder.results([*val_rows(p.sel, v, loop.step), *loss])
    grid = selection_grid(p.scored, p.sel, run.device) if records.loggers else None
    records.validation(loop.step, v, p.sel.metric, score, improved, grid)


# ---------------------------------------------------------------------------------------------
# checkpoints


def _meta(run: _Run, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A checkpoint's metadata at the current step."""
    cfg, p, loop = run.cfg, run.parts, run.loop
    return {
        "format": CHECKPOINT_FORMAT, "sr_model": cfg.model.name, "params": p.info.params,
        "in_channels": p.info.in_channels, "step": loop.step, "run_id": run.run_id, "best_score": loop.best_score,
        "best_psnr": loop.best_psnr, "best_step": loop.best_step, "ema_decay": cfg.optim.ema_decay,
        "selection": p.sel.describe(), "protocol": cfg.protocol, "config": cfg.model_dump(mode="json"),
        "runtime": run.runtime, "world_size": run.ctx.world_size, **provenance(run.device), **(extra or {}),
    }


def _save_last(run: _Run, rng: tuple[Any, ...] | None = None) -> None:
    """The training state after the current step. Every rank contributes its RNG state (``rng``: a
    snapshot from the top of the step); rank 0 writes."""
    ctx, p, loop = run.ctx, run.parts, run.loop
    elapsed = time.perf_counter() - loop.t0
    if not all(bool(torch.isfinite(q).all()) for q in p.net.parameters()):
        raise FloatingPointError(f"the weights became non-finite at step {loop.step}")
    rng_t, rng_js = capture_rng(rng)
    gathered = all_gather_object(ctx, ({k: v.clone() for k, v in rng_t.items()}, rng_js))
    if not ctx.is_main:
        return
    opt_tensors, opt_meta = optimizer_to_flat(p.opt)
    tensors = {**{f"model.{k}": v for k, v in p.net.state_dict().items()}, **opt_tensors, **rng_t,
               **(p.ema.state_tensors() if p.ema is not None else {})}
    for r, (t, _) in enumerate(gathered):
        tensors.update({f"rank{r}.{k}": v for k, v in t.items()})
    save_checkpoint(run.run_dir / "last", tensors, _meta(run, {
        "kind": TRAINING_STATE, "optimizer": opt_meta, "rng_ranks": [js for _, js in gathered],
        "scaler": p.prec.state(), "train_seconds": elapsed,
        "loss_window": run.records.window.state() if run.records is not None else {}}))
    loop.saved_step = loop.step


def _finish(run: _Run) -> TrainOutcome:
    """Rank 0 records how the run ended (status, best checkpoint, seconds) and closes its records."""
    ctx, loop = run.ctx, run.loop
    elapsed = time.perf_counter() - loop.t0
    barrier(ctx)
    best_file = checkpoint_paths(run.run_dir / "best")[0]
    last_file = checkpoint_paths(run.run_dir / "last")[0]
    if run.recorder is not None:
        run.recorder.finish(loop.status, loop.message, best_checkpoint=best_file,
                            bad_samples=len(getattr(run.parts.train_ds, "bad_samples", []) or []))
        run.recorder.results([ResultRow("train", NO_RECOGNIZER, "seconds", elapsed, -1, loop.step)])
        if run.records is not None:
            chosen = f"; best step {loop.best_step}, checkpoint {best_file}" if best_file.exists() else ""
            run.records.close(f"run {run.run_id} {loop.status} at step {loop.step} in {elapsed:.0f} s{chosen}"
                              + (f"; {loop.message}" if loop.message else ""))
    return TrainOutcome(run.run_id, run.run_dir, best_file if best_file.exists() else None, last_file,
                        loop.best_score, None, loop.status, loop.step, loop.message, loop.best_step)
