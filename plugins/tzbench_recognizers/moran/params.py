"""Torch-free metadata of the MORAN judge, ready for a ``RecognizerSpec``.

Imports only pydantic and :mod:`tzbench.specs` so that plugin listing never imports torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tzbench.specs import WeightsFile

__all__ = ["MORANParams", "CHARSET", "ALPHABET", "END_SYMBOL", "WEIGHTS", "TARGET", "SUMMARY", "PAPER"]

#: Symbols the judge returns (after cutting at the end symbol).
CHARSET = "0123456789abcdefghijklmnopqrstuvwxyz"
#: The decoder's 37 classes: CHARSET then the end symbol '$' (index 36).
END_SYMBOL = "$"
ALPHABET = CHARSET + END_SYMBOL

#: The official file TextZoom loads (a DataParallel state dict: keys carry ``module.``).
WEIGHTS = WeightsFile(
    filename="moran.pth",
    sha256=None,
    source="MORAN_v2 (Canjie-Luo) pretrained model, as linked from the TextZoom README",
)

TARGET = "tzbench_recognizers.moran.judge:MORANRecognizer"
SUMMARY = "MORAN (MORN rectifier + ResNet/BiLSTM/bidirectional attention ASRN, 0-9a-z), the TextZoom judge"
PAPER = "Luo, Jin, Sun. MORAN: A Multi-Object Rectified Attention Network for Scene Text Recognition. Pattern Recognition 2019"


class MORANParams(BaseModel):
    """Hyper-parameters of the MORAN judge.

    The network itself is fixed: ``MORAN(1, 37, 256, 32, 100, BidirDecoder=True)``.
    """

    model_config = ConfigDict(extra="forbid")

    mode: Literal["legacy", "native"] = Field(
        default="legacy",
        description="legacy: TextZoom's input (bicubic 32x100 gray in [0,1]); native: MORAN's own [-1,1]",
    )
    grid_sample_align_corners: bool = Field(
        default=True,
        description=(
            "align_corners of MORN's grid_sample calls, implicit in the official code: True is torch<=1.2 "
            "(the behaviour the released weights were trained under), False is torch>=1.3"
        ),
    )
    max_steps: int = Field(default=20, ge=1, description="decoding steps (TextZoom's placeholder length)")
    weights: str | None = Field(default=None, description="path of moran.pth (loaded strictly, weights_only)")
    device: str | None = Field(default=None, description="torch device; None picks CUDA when available")
    batch_size: int | None = Field(default=None, ge=1, description="max images per forward pass")
