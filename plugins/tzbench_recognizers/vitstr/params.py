"""Torch-free metadata of the ViTSTR judge, ready for a ``RecognizerSpec``.

Imports only pydantic and :mod:`tzbench.specs` so that plugin listing never imports torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tzbench.specs import WeightsFile

__all__ = ["ViTSTRParams", "CHARSET", "WEIGHTS", "TARGET", "SUMMARY", "PAPER"]

#: Output symbols: TextZoom's scoring alphabet.
CHARSET = "0123456789abcdefghijklmnopqrstuvwxyz"

#: No published weights fit this small 32x128 model: it is trained here (train-recognizer).
WEIGHTS = WeightsFile(
    filename="vitstr.safetensors",
    sha256=None,
    source="trained here: tzbench train-recognizer vitstr (no pretrained file is downloaded)",
)

TARGET = "tzbench_recognizers.vitstr.judge:ViTSTRRecognizer"
SUMMARY = "ViTSTR-style judge: timm VisionTransformer on 32x128 RGB, per-token (or CTC) read-out, 0-9a-z"
PAPER = "Atienza. Vision Transformer for Fast and Efficient Scene Text Recognition. ICDAR 2021"


class ViTSTRParams(BaseModel):
    """Hyper-parameters of the ViTSTR judge (a small ViT sized for 32x128 word crops).

    ViTSTR-Tiny reads 224x224 gray with 16x16 patches, 12 layers of width 192; here the input
    is the HR size itself (32x128 RGB, no resize) with 4x8 patches (a 8x16 token grid), and
    the depth is halved so that it trains on a CPU.
    """

    model_config = ConfigDict(extra="forbid")

    head: Literal["tokens", "ctc"] = Field(
        default="tokens",
        description="tokens: ViTSTR's read-out, one class (or end) per leading token, cross-entropy; "
        "ctc: token columns averaged into frames, CTC",
    )
    img_size: tuple[int, int] = Field(default=(32, 128), description="(H, W) the encoder reads")
    patch_size: tuple[int, int] = Field(default=(4, 8), description="(H, W) of a patch")
    embed_dim: int = Field(default=192, ge=8)
    depth: int = Field(default=6, ge=1)
    num_heads: int = Field(default=3, ge=1)
    mlp_ratio: float = Field(default=4.0, gt=0)
    max_len: int = Field(default=25, ge=1, description="longest word the tokens head can read")
    weights: str | None = Field(default=None, description="weights file: a tzbench checkpoint or a .pth state dict")
    device: str | None = Field(default=None, description="torch device; None picks CUDA when available")
    batch_size: int | None = Field(default=None, ge=1, description="max images per forward pass")
