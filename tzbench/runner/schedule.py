"""Learning-rate schedules and weight averaging for training runs (the ``cpu`` recipe's tools).

Both are functions of the step alone (the schedule) or are saved with the training state (the
average), so a resumed run follows the uninterrupted one exactly:

- :func:`make_scheduler`: linear warm-up then cosine decay, timm's ``CosineLRScheduler``
  stepped per update; ``constant`` keeps Adam's lr fixed (TextZoom's recipe).
- :class:`WeightAverage`: an exponential moving average of the weights and BatchNorm buffers
  (timm's ``ModelEmaV3`` with its warm-up, so a short run is not dominated by the initial
  weights). Validation, the best checkpoint and the final eval use the average.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tzbench.config import OptimConfig

__all__ = ["make_scheduler", "WeightAverage", "EMA_PREFIX"]

#: Key prefix of the averaged weights inside a training-state checkpoint.
EMA_PREFIX = "ema."


def make_scheduler(opt: torch.optim.Optimizer, optim: OptimConfig, total_steps: int) -> Any | None:
    """The per-update scheduler of ``optim.schedule`` over ``total_steps``, or None for constant lr.

    ``step_update(k)`` sets the lr used by update ``k`` (0-based): warm-up from
    ``lr * optim.warmup_init_ratio`` to ``lr`` over ``optim.warmup_steps`` updates, then a cosine
    down to ``lr * optim.min_lr_ratio`` at ``total_steps``.
    """
    if optim.schedule == "constant":
        return None
    from timm.scheduler import CosineLRScheduler

    sched = CosineLRScheduler(
        opt,
        # warmup_prefix: the cosine starts when the warm-up ends and spans the remaining updates
        t_initial=max(1, total_steps - optim.warmup_steps),
        lr_min=optim.lr * optim.min_lr_ratio,
        warmup_t=optim.warmup_steps,
        warmup_lr_init=optim.lr * optim.warmup_init_ratio,
        warmup_prefix=True,
        t_in_epochs=False,
    )
    sched.step_update(0)
    return sched


class WeightAverage:
    """EMA of a model's parameters and buffers; ``module`` is the averaged copy (eval mode)."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        from timm.utils import ModelEmaV3

        self.decay = decay
        # use_warmup: the effective decay grows as 1 - (1 + step)^(-2/3) up to `decay`, so the
        # average forgets the random init within the first hundred steps.
        self._ema = ModelEmaV3(net, decay=decay, use_warmup=True)
        self._ema.module.eval()

    @property
    def module(self) -> nn.Module:
        """The averaged model."""
        return self._ema.module

    def update(self, net: nn.Module, step: int) -> None:
        """Fold in ``net``'s weights after update number ``step`` (1-based)."""
        self._ema.update(net, step=step)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The averaged state, keyed ``ema.<name>`` for the training-state file."""
        return {f"{EMA_PREFIX}{k}": v.detach().clone() for k, v in self.module.state_dict().items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state_tensors` (strict: every key of the model must be there)."""
        mine = {k[len(EMA_PREFIX):]: v for k, v in tensors.items() if k.startswith(EMA_PREFIX)}
        if not mine:
            raise KeyError("the training state holds no averaged weights (ema.*)")
        self.module.load_state_dict(mine, strict=True)
