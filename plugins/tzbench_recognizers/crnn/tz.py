"""``crnn_tz``: the CRNN judge with weights trained by tzbench and shipped in this package.

TextZoom's CRNN judge reads with ``crnn.pth`` from crnn.pytorch, which cannot be downloaded
here; without it no user can read SR outputs with the paper's own recognizer architecture.
``crnn_tz`` is that architecture and TextZoom's preprocessing with weights every install has
(trained on synth + wild's *train* splits, never on a test set; docs/judges.md says how and
what it reads). The file is located through the package, checked against its pinned sha256
and loaded strictly; it is a ``crnn`` checkpoint, so ``tzbench eval --judge crnn`` with it
as ``crnn.safetensors`` reads the same strings.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tzbench_recognizers.crnn.judge import CRNNRecognizer
from tzbench_recognizers.crnn.params import TZ_WEIGHTS

__all__ = ["CRNNTZRecognizer", "shipped_weights"]


def shipped_weights(verify: bool = True) -> Path:
    """The installed file of the shipped weights (sha256 checked against the pin)."""
    from tzbench.pretrained import pretrained_path

    return pretrained_path(TZ_WEIGHTS, verify=verify)


class CRNNTZRecognizer(CRNNRecognizer):
    """CRNN (``CRNN(32, 1, 37, 256)``), TextZoom's ``legacy`` input, tzbench's shipped weights.

    Args:
        weights: another ``crnn`` tzbench checkpoint to read with (default: the shipped one).
        device: ``"cpu"``, ``"cuda"``...; ``None`` picks CUDA when available.
        batch_size: largest batch per forward pass (``None``: the whole input).

    Attributes:
        model_path: the weights file read; the runner records its sha256 and compares it with
            registry.yaml's pin.
    """

    name = "crnn_tz"
    #: The judge whose checkpoints these are (train-recognizer trains ``crnn``).
    weights_owner = "crnn"

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
    ) -> None:
        path = Path(weights) if weights is not None else shipped_weights()
        super().__init__(mode="legacy", weights=path, device=device, batch_size=batch_size)
        self.model_path = path
