"""Opt-in speed options of a training run: mixed precision (``--amp``) and ``--compile``.

Both are off by default, because they change the numbers a run produces; when used they are
recorded in the run's config (``runtime``) and in its checkpoints.

* ``--amp bf16``: autocast to bfloat16. On CUDA, and also on the CPU, where torch's CPU
  autocast supports bfloat16 (useful on CPUs with AVX512-BF16/AMX; elsewhere slower).
* ``--amp fp16``: autocast to float16 with a dynamic loss scaler; CUDA only (the CPU has no
  fast float16 kernels, so it is refused with a message rather than silently run slowly).
* ``--compile``: ``torch.compile`` of the SR model being trained. On the CPU inductor builds
  its kernels with a C++ compiler, so there it needs one (:func:`cpu_compiler`); it measured
  faster for the conv baselines only (docs/performance.md), which the ``cpu`` recipe compiles.
"""

from __future__ import annotations

import os
import shutil
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import torch

__all__ = ["AmpMode", "Precision", "check_runtime"]

AmpMode = Literal["bf16", "fp16"]
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_runtime(amp: str | None, compile: bool, device: torch.device) -> None:
    """Refuse combinations tzbench does not run, with the reason and the alternative."""
    from tzbench.runner.context import RunError

    if amp is not None and amp not in _DTYPES:
        raise RunError(f"--amp {amp!r}: choose bf16 or fp16")
    if amp == "fp16" and device.type != "cuda":
        raise RunError(f"--amp fp16 needs CUDA (this run is on {device}); use --amp bf16 on the CPU, or no --amp")
    if compile and device.type == "cpu" and cpu_compiler() is None:
        raise RunError("--compile on the CPU needs a C++ compiler for inductor (g++ or clang++, or $CXX; "
                       "Debian: apt install g++), and none was found; drop --compile (compile=false)")


def cpu_compiler() -> str | None:
    """The C++ compiler inductor would build CPU kernels with, or None."""
    cxx = os.environ.get("CXX")
    if cxx:
        return shutil.which(cxx)
    return shutil.which("g++") or shutil.which("clang++")


@dataclass
class Precision:
    """Autocast context and loss scaler of one run."""

    amp: AmpMode | None
    device: torch.device

    def __post_init__(self) -> None:
        enabled = self.amp == "fp16" and self.device.type == "cuda"
        self.scaler: torch.amp.GradScaler | None = torch.amp.GradScaler("cuda") if enabled else None

    def autocast(self) -> AbstractContextManager[Any]:
        """The forward pass's context: autocast when ``amp`` is set."""
        if self.amp is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=_DTYPES[self.amp])

    def backward_step(self, loss: torch.Tensor, opt: torch.optim.Optimizer, params: Any, grad_clip: float | None) -> None:
        """``backward`` + optional clipping + ``step``, through the scaler when there is one."""
        if self.scaler is None:
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            opt.step()
            return
        self.scaler.scale(loss).backward()
        if grad_clip:
            self.scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        self.scaler.step(opt)
        self.scaler.update()

    def state(self) -> dict[str, Any] | None:
        """The scaler's state (JSON-able) for checkpoints."""
        if self.scaler is None:
            return None
        return {k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in self.scaler.state_dict().items()}

    def load_state(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state`."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
