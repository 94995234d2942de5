"""Resuming a training run: which state ``--resume`` names, what may change, loading it back.

A resumed run continues the same run row from its ``last`` training state (see
:mod:`tzbench.runner.checkpoint`): the config must equal the checkpoint's but for
:data:`RESUME_MAY_CHANGE` (and :data:`RESUME_AFTER_NONFINITE` after a non-finite stop), the
process count must be the same, and the weights, optimizer, every RNG and the loss scaler come
back as they were, so the resumed run reproduces the uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tzbench.config import TrainConfig
from tzbench.db.store import Store, StoreError
from tzbench.runner.checkpoint import (
    TRAINING_STATE,
    checkpoint_paths,
    load_training_state,
    optimizer_from_flat,
    read_checkpoint_meta,
    restore_rng,
)
from tzbench.runner.context import RunError
from tzbench.runner.distributed import DistContext, broadcast_object
from tzbench.runner.precision import Precision

__all__ = ["RESUME_MAY_CHANGE", "RESUME_AFTER_NONFINITE", "NONFINITE_STOP", "ResumePoint", "resolve_resume",
           "resume_config", "load_resume", "config_changes"]

#: Config fields a resumed run may change: none of them alters the weights' trajectory.
RESUME_MAY_CHANGE: frozenset[str] = frozenset({
    "steps", "checkpoint_every", "val_every", "eval_after", "judges", "device", "out_dir",
    "data.num_workers", "compile",
})
#: Allowed on top only when the run stopped on a non-finite loss, so that it can be continued
#: more carefully; every change is recorded in the run.
RESUME_AFTER_NONFINITE: frozenset[str] = frozenset({"optim.lr", "optim.grad_clip"})
#: In the message of a run stopped on a non-finite loss or weights (what allows the above).
NONFINITE_STOP = "the run stopped on a non-finite value"


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


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (old, new)}`` of every config field that differs (model params compared whole).

    A field ``old`` predates counts as its default, so that adding a field keeps old runs resumable."""
    a, b = _flat(_with_defaults(old)), _flat(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if _norm(a.get(k)) != _norm(b.get(k))}


def _with_defaults(config: dict[str, Any]) -> dict[str, Any]:
    # Validation fills every field the old config lacks, nested ones too, with its default.
    try:
        return TrainConfig.model_validate(config).model_dump(mode="json")
    except ValueError:  # not a TrainConfig of this version: compared as it is
        return config


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


@dataclass
class ResumePoint:
    """A training state to continue from, already checked against the new run's config."""

    path: str
    state: dict[str, torch.Tensor]
    meta: dict[str, Any]

    @property
    def step(self) -> int:
        """The optimizer steps the state holds."""
        return int(self.meta["step"])

    def restore(self, net: torch.nn.Module, opt: torch.optim.Optimizer, prec: Precision, cfg: TrainConfig,
                ctx: DistContext, device: torch.device) -> None:
        """Weights, optimizer (with the config's learning rate), this rank's RNG and the scaler, as saved."""
        state, meta = self.state, self.meta
        net.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")}, strict=True)
        optimizer_from_flat(opt, {k: v.to(device) for k, v in state.items() if k.startswith("optim.")}, meta["optimizer"])
        for g in opt.param_groups:  # the allowed changes take effect
            g["lr"] = cfg.optim.lr
        ranks = meta.get("rng_ranks") or [None]
        mine = ranks[ctx.rank] if ctx.rank < len(ranks) else None
        restore_rng({k[len(f"rank{ctx.rank}."):]: v for k, v in state.items() if k.startswith(f"rank{ctx.rank}.rng.")}
                    or {k: v for k, v in state.items() if k.startswith("rng.")}, mine)
        prec.load_state(meta.get("scaler"))
        if self.step >= cfg.steps:
            raise RunError(f"the run already reached step {self.step}; pass --steps > {self.step} to continue it")


def load_resume(resume: str, store: Store | None, cfg: TrainConfig, ctx: DistContext) -> ResumePoint:
    """Read the state ``resume`` names and refuse what cannot continue it (another model, a locked config
    change, another process count), before any work."""
    # Rank 0 resolves a run id through the database; the other ranks get the path.
    path = broadcast_object(ctx, str(resolve_resume(resume, store)) if ctx.is_main else None)
    state, meta, _ = load_training_state(path)
    if meta["sr_model"] != cfg.model.name:
        raise RunError(f"the checkpoint is of {meta['sr_model']!r}, not of {cfg.model.name!r}")
    changes = config_changes(meta["config"], cfg.model_dump(mode="json"))
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
    return ResumePoint(path, state, meta)
