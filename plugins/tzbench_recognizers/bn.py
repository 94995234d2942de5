"""Exact ("precise") BatchNorm statistics of a judge's network before it is evaluated."""

from __future__ import annotations

import torch
from torch import Tensor

from tzbench_recognizers.common import TrainableRecognizer
from tzbench_recognizers.objective import recognizer_loss

__all__ = ["recalibrate_bn"]


@torch.no_grad()
def recalibrate_bn(rec: TrainableRecognizer, batches: list[tuple[Tensor, list[str]]]) -> None:
    """Recompute every BatchNorm's running statistics for the current weights ("precise BN").

    Early in training the weights move faster than BN's exponential running averages follow
    (momentum 0.1), so eval mode normalises with stale statistics and a network that reads
    well in train mode outputs nothing in eval mode. The statistics are reset and averaged
    exactly over ``batches`` (images in ``[0, 1]``, labels) run through the training forward.
    """
    bns = [m for m in rec.net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns or not batches:
        return
    was_training = rec.net.training
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    rec.net.train()
    try:
        for images, labels in batches:
            recognizer_loss(rec, images, labels)
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        rec.net.train(was_training)
