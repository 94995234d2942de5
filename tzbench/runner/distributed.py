"""Data-parallel training across processes: torchrun environment, sharding, reductions.

tzbench trains with one process per device under ``torchrun`` (or ``tzbench train --nproc N``,
which starts torchrun for you). Each process reads the environment torchrun sets (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``), joins the process group
(NCCL on CUDA, gloo on CPU) and wraps the model in ``DistributedDataParallel``.

Sharding is a pure function of ``(seed, epoch, step)``: the global epoch order is cut into
global batches of ``world_size * batch_size`` samples and rank ``r`` takes the ``r``-th slice of
each. The union of the ranks' batches is therefore exactly the batch one process sees with
``batch_size * world_size``, which is what makes N-process training equal 1-process training
with the N-times batch (up to float summation order), and what makes resume exact.

Only rank 0 touches the database and writes checkpoints; losses, validation sums and the stop
flags (Ctrl-C, NaN) are all-reduced so every rank takes the same decision at the same step.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DistContext",
    "env_world",
    "init_distributed",
    "shutdown",
    "all_reduce_sum",
    "broadcast_object",
    "all_gather_object",
    "barrier",
    "rank_slice",
    "torchrun_command",
    "wrap_model",
]

log = logging.getLogger("tzbench.runner")


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job (a single process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that records results and writes checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """Whether several processes take part."""
        return self.world_size > 1


def env_world() -> DistContext:
    """The rank/world/local rank torchrun put in the environment (1 process when absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    rank = int(os.environ.get("RANK", "0") or 0)
    local = int(os.environ.get("LOCAL_RANK", str(rank)) or 0)
    return DistContext(rank=rank, world_size=world, local_rank=local)


def init_distributed(device_name: str = "auto", timeout_s: float = 1800.0) -> tuple[DistContext, torch.device]:
    """Join the process group when launched by torchrun; returns the context and this rank's device.

    ``auto`` picks ``cuda:LOCAL_RANK`` when CUDA is present, else the CPU; ``cuda`` alone also
    means this rank's own GPU. Single-process runs return immediately.
    """
    from tzbench.runner.context import RunError, pick_device

    env = env_world()
    if not env.enabled:
        return env, pick_device(device_name)
    if device_name in ("auto", "cuda"):
        if torch.cuda.is_available():
            device = torch.device("cuda", env.local_rank % torch.cuda.device_count())
        elif device_name == "cuda":
            raise RunError("device 'cuda' requested but CUDA is not available")
        else:
            device = torch.device("cpu")
    else:
        device = pick_device(device_name)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
        except (RuntimeError, ValueError) as exc:
            raise RunError(
                f"cannot join the process group (rank {env.rank} of {env.world_size}, backend {backend}): {exc}. "
                "Launch with torchrun, which sets MASTER_ADDR/MASTER_PORT (see docs/runs.md)"
            ) from exc
    return DistContext(env.rank, env.world_size, env.local_rank, backend), device


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (no-op for a single process)."""
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def _reduce_device(ctx: DistContext) -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if ctx.backend == "nccl" else torch.device("cpu")


def all_reduce_sum(ctx: DistContext, values: Sequence[float]) -> list[float]:
    """Element-wise sum of ``values`` over all ranks, in float64 (returns them unchanged alone)."""
    if not ctx.enabled:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_reduce_device(ctx))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def broadcast_object(ctx: DistContext, obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (picklable objects only, e.g. a run id)."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=_reduce_device(ctx))
    return box[0]


def all_gather_object(ctx: DistContext, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    """Wait for every rank."""
    if ctx.enabled:
        if ctx.backend == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def rank_slice(global_batch: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """This rank's contiguous share of a global batch of indices (equal shares)."""
    per = global_batch.numel() // ctx.world_size
    return global_batch[ctx.rank * per:(ctx.rank + 1) * per]


def torchrun_command(nproc: int, args: Sequence[str]) -> list[str]:
    """The command that runs ``tzbench ARGS`` in ``nproc`` processes on this machine via torchrun."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "tzbench", *args]


def wrap_model(net: torch.nn.Module, ctx: DistContext, device: torch.device, in_channels: int, compile: bool,
               runtime: dict[str, Any], name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``(model as trained, net)``: DistributedDataParallel over several processes (BatchNorm made
    SyncBatchNorm on CUDA, which replaces ``net``'s modules but keeps its parameters), then
    ``torch.compile`` when asked. ``runtime`` records ``sync_batchnorm``; ``name`` is for the warning."""
    model: torch.nn.Module = net
    if ctx.enabled:
        if _has_batchnorm(net):
            if device.type == "cuda":
                net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
                runtime["sync_batchnorm"] = True
            elif ctx.is_main:
                log.warning("%s has BatchNorm: on the CPU its statistics are per process (SyncBatchNorm needs CUDA)",
                            name)
        unused = _unused_parameters(net, in_channels, device)
        model = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=unused)
    if compile:
        model = torch.compile(model)  # type: ignore[assignment]
    return model, net


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
