"""Training of SR models: seeded, resumable, recorded step by step in the store."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from tzbench.catalog import Catalog
from tzbench.config import EvalConfig, TrainConfig
from tzbench.data import collate
from tzbench.db.models import NO_RECOGNIZER
from tzbench.db.store import ResultRow, Store
from tzbench.metrics import MetricAccumulator
from tzbench.runner.checkpoint import checkpoint_paths, read_checkpoint_meta, save_checkpoint
from tzbench.runner.context import (
    RunError,
    build_dataset,
    build_judges,
    build_sr_model,
    make_progress,
    pick_device,
    provenance,
    seed_everything,
)
from tzbench.runner.evaluate import evaluate

__all__ = ["TrainOutcome", "train", "epoch_order"]


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


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of one epoch; a pure function of (seed, epoch), so resume is exact."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g)


def _batches(ds: Any, batch_size: int, seed: int, start_step: int, num_workers: int):
    n = len(ds)
    if n < batch_size:
        raise RunError(f"training set has {n} samples, fewer than batch size {batch_size}")
    per_epoch = n // batch_size  # drop_last: every step sees a full batch
    step = start_step
    while True:
        epoch, offset = divmod(step, per_epoch)
        order = epoch_order(n, seed, epoch)[: per_epoch * batch_size].view(per_epoch, batch_size)
        sampler = [order[i].tolist() for i in range(offset, per_epoch)]
        loader = DataLoader(ds, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate)
        for batch in loader:
            yield step, batch
            step += 1


def _optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = v
    for key, v in meta["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _validate(model, val_ds, judge, device, batch_size) -> dict[str, float]:
    model.eval()
    acc = MetricAccumulator(clamp=True, keep_legacy=False)
    with torch.no_grad():
        for batch in DataLoader(val_ds, batch_size=batch_size, shuffle=False, collate_fn=collate):
            sr = model(batch["lr"].to(device)).float().clamp_(0, 1)
            acc.update_images(sr[:, :3], batch["hr"][:, :3].to(device))
            if judge is not None:
                acc.update_text(judge.recognizer.recognize(sr[:, :3]), batch["label"], judge.name)
    model.train()
    s = acc.summary()
    out = {"psnr": s.psnr, "ssim": s.ssim, "n": float(s.n_images)}
    if judge is not None:
        out["accuracy"] = s.accuracy[judge.name]
    return out


def train(
    cfg: TrainConfig,
    store: Store,
    catalog: Catalog,
    resume: str | None = None,
    progress: bool = True,
) -> TrainOutcome:
    """Train ``cfg.model`` on ``cfg.data``; validate, checkpoint and record as configured.

    ``resume`` is a run id or a ``last`` checkpoint path; training continues from its step
    with the same sample order, optimizer state and RNG state, in the same run row.
    """
    device = pick_device(cfg.device)
    seed_everything(cfg.seed, cfg.deterministic)
    info = build_sr_model(catalog, cfg.model.name, cfg.model.params)
    if not info.trainable:
        raise RunError(f"{cfg.model.name} has no trainable parameters: evaluate it with `tzbench eval {cfg.model.name}`")
    model = info.module.to(device)
    loss_name = cfg.loss.name if cfg.loss else info.default_loss
    loss_params = cfg.loss.params if cfg.loss else info.default_loss_params
    criterion = catalog.create("losses", loss_name, loss_params).to(device)
    provider, data_params = build_dataset(catalog, cfg.data.dataset, cfg.data.params, info.in_channels)
    train_ds = provider.load("train", None)
    if cfg.protocol == "legacy":
        # TextZoom's own practice, reproduced on purpose: selection on the test subsets.
        val_ds = torch.utils.data.ConcatDataset([provider.load("test", s) for s in cfg.data.subsets])
    else:
        val_ds = provider.load("val", None)
    if len(val_ds) > cfg.val_max_samples:
        val_ds = torch.utils.data.Subset(val_ds, range(cfg.val_max_samples))
    judge = None
    if cfg.selection_judge:
        judge = build_judges(catalog, [cfg.selection_judge], device)[0]
    sel_metric = "accuracy" if judge is not None else "psnr"
    sel_judge_name = judge.name if judge is not None else NO_RECOGNIZER

    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                           weight_decay=cfg.optim.weight_decay)
    start_step = 0
    best_score: float | None = None
    run_id: int
    if resume is not None:
        run_id, run_dir, start_step, best_score = _resume(resume, store, model, opt, cfg)
    else:
        run_id = store.start_run(
            kind="train", sr_model=cfg.model.name, provider=info.provider, benchmark=cfg.data.dataset,
            protocol=cfg.protocol, config=cfg.model_dump(mode="json"), n_params=info.n_params,
            seed=cfg.seed, **provenance(device),
        )
        run_dir = Path(cfg.out_dir) / f"{run_id:05d}-{cfg.model.name}"
        run_dir.mkdir(parents=True, exist_ok=True)
        store.update_run(run_id, checkpoint=str(run_dir / "best.safetensors"))
    best_path = run_dir / "best"
    last_path = run_dir / "last"

    def meta(step: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "format": "tzbench-checkpoint-1", "sr_model": cfg.model.name, "params": info.params,
            "in_channels": info.in_channels, "step": step, "run_id": run_id, "best_score": best_score,
            "selection": {"metric": sel_metric, "recognizer": sel_judge_name},
            "config": cfg.model_dump(mode="json"), **provenance(device), **(extra or {}),
        }

    def save_last(step: int) -> None:
        opt_tensors, opt_meta = _optimizer_state(opt)
        state = {**{f"model.{k}": v for k, v in model.state_dict().items()}, **opt_tensors,
                 "rng.torch": torch.get_rng_state()}
        save_checkpoint(last_path, state, meta(step, {"optimizer": opt_meta, "kind": "training-state"}))

    model.train()
    step = start_step
    status = "finished"
    message: str | None = None
    interrupted = {"flag": False}
    prev_handler = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):  # noqa: ANN001 - signal API
        interrupted["flag"] = True

    try:
        signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread
        prev_handler = None
    t0 = time.perf_counter()
    try:
        with make_progress(disable=not progress) as prog:
            task = prog.add_task(f"train {cfg.model.name}", total=cfg.steps, completed=start_step, info="")
            batches = _batches(train_ds, cfg.data.batch_size, cfg.seed, start_step, cfg.data.num_workers)
            while step < cfg.steps:
                if interrupted["flag"]:
                    raise KeyboardInterrupt
                step, batch = next(batches)
                lr = batch["lr"].to(device, non_blocking=True)
                hr = batch["hr"].to(device, non_blocking=True)
                sr = model(lr)
                loss = criterion(sr, hr)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"loss became {loss.item()} at step {step}; the last good checkpoint is {last_path}.safetensors"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.optim.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
                opt.step()
                step += 1
                prog.update(task, completed=step, info=f"loss={loss.item():.4f}")
                if step % cfg.val_every == 0 or step == cfg.steps:
                    v = _validate(model, val_ds, judge, device, cfg.data.eval_batch_size)
                    score = v[sel_metric]
                    rows = [ResultRow("val", NO_RECOGNIZER, "psnr", v["psnr"], step, int(v["n"])),
                            ResultRow("val", NO_RECOGNIZER, "ssim", v["ssim"], step, int(v["n"])),
                            ResultRow("train", NO_RECOGNIZER, "loss", float(loss.item()), step, lr.shape[0])]
                    if judge is not None:
                        rows.append(ResultRow("val", judge.name, "accuracy", v["accuracy"], step, int(v["n"])))
                    if best_score is None or score > best_score:
                        best_score = score
                        save_checkpoint(best_path, model.state_dict(), meta(step, {"val": v}))
                    store.add_results(run_id, rows)
                    prog.update(task, info=f"loss={loss.item():.4f} val {sel_metric}={score:.4f}")
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    save_last(step)
    except KeyboardInterrupt:
        save_last(step)
        status, message = "interrupted", f"interrupted at step {step}; resume with --resume {run_id}"
    except FloatingPointError as exc:
        status, message = "failed", str(exc)
    except BaseException as exc:
        store.finish_run(run_id, "failed", message=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if prev_handler is not None:
            signal.signal(signal.SIGTERM, prev_handler)
    elapsed = time.perf_counter() - t0
    best_file = checkpoint_paths(best_path)[0]
    store.finish_run(
        run_id, status, message=message, checkpoint=str(best_file) if best_file.exists() else None,
        bad_samples=len(getattr(train_ds, "bad_samples", []) or []),
    )
    if best_file.exists():
        store.update_run(run_id, checkpoint_sha256=read_checkpoint_meta(best_file)["weights_sha256"])
    store.add_results(run_id, [ResultRow("train", NO_RECOGNIZER, "seconds", elapsed, -1, step)])
    eval_id = None
    if status == "finished" and cfg.eval_after and best_file.exists():
        ecfg = EvalConfig(model=cfg.model, checkpoint=str(best_file), data=cfg.data, judges=cfg.judges,
                          protocol=cfg.protocol, seed=cfg.seed, device=cfg.device)
        eval_id = evaluate(ecfg, store, catalog, parent_id=run_id, progress=progress).run_id
    if status == "failed":
        raise RunError(message or "training failed")
    return TrainOutcome(run_id, run_dir, best_file if best_file.exists() else None,
                        checkpoint_paths(last_path)[0], best_score, eval_id, status)


def _resume(resume: str, store: Store, model, opt, cfg: TrainConfig) -> tuple[int, Path, int, float | None]:
    if resume.isdigit():
        run = store.get_run(int(resume))
        if run.kind != "train":
            raise RunError(f"run {resume} is a {run.kind} run, not a training run")
        path = Path(run.checkpoint or "").parent / "last.safetensors"
    else:
        path = Path(resume)
    meta = read_checkpoint_meta(path)
    if meta.get("kind") != "training-state":
        raise RunError(f"{path} is not a training-state checkpoint (use the run's last.safetensors)")
    if meta["sr_model"] != cfg.model.name:
        raise RunError(f"{path} is a checkpoint of {meta['sr_model']!r}, not of {cfg.model.name!r}")
    tensors = load_file(checkpoint_paths(path)[0])
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    _restore_optimizer(opt, {k: v for k, v in tensors.items() if k.startswith("optim.")}, meta["optimizer"])
    torch.set_rng_state(tensors["rng.torch"])
    run_id = int(meta["run_id"])
    store.update_run(run_id, status="running", finished_at=None, message=None)
    return run_id, checkpoint_paths(path)[0].parent, int(meta["step"]), meta.get("best_score")
