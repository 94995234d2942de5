"""The fields TPGSR and TATT share: a TSRN-style SR body fed a CRNN's text prior, and the loss that
distils a frozen teacher's HR reading into that prior (imports only pydantic, so listing is cheap)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PRIORS", "TextPriorLossParams", "TextPriorSRParams"]

#: Text-prior generators TPGSR and TATT can use: CTC judges with the 37-class ``0-9a-z`` + blank output.
PRIORS = ("crnn_tz", "crnn")


class TextPriorSRParams(BaseModel):
    """The SR body and its text-prior generator (official defaults of both TPGSR and TATT)."""

    model_config = ConfigDict(extra="forbid")

    scale_factor: int = Field(default=2, ge=2, description="upscaling factor (a power of two)")
    width: int = Field(default=128, gt=0, description="HR width; the LR input is width // scale_factor wide")
    height: int = Field(default=32, gt=0, description="HR height; the LR input is height // scale_factor high")
    stn: bool = Field(default=True, description="TPS-STN alignment module (active in training only)")
    srb_nums: int = Field(default=5, ge=1, description="number of text-guided recurrent residual blocks")
    mask: bool = Field(default=True, description="4-channel RGB + mask input and output (official --mask)")
    stn_at_test: bool = Field(default=False, description="also rectify in eval mode (the official code does not)")
    grid_sample_align_corners: bool = Field(
        default=False, description="TPS grid_sample align_corners: False = torch>=1.3, True = torch<=1.2 'legacy'"
    )
    prior: Literal["crnn_tz", "crnn"] = Field(
        default="crnn_tz",
        description="text-prior generator: crnn_tz (weights tzbench trained and ships) or crnn (official "
                    "crnn.pth, from prior_weights or `tzbench weights add crnn PATH`)",
    )
    prior_weights: str | None = Field(default=None, description="weights file of the prior generator (else default)")


class TextPriorLossParams(BaseModel):
    """TextZoom's image loss + the distillation of a frozen teacher's HR reading into the prior
    generator's LR reading (official weights 1 / 1e-4 and 100 : 100)."""

    model_config = ConfigDict(extra="forbid")

    mse_weight: float = Field(default=1.0, ge=0, description="weight of the MSE over all channels")
    gp_weight: float = Field(default=1e-4, ge=0, description="weight of TextZoom's gradient prior on RGB")
    distill: bool = Field(default=True, description="add the distillation term (official --use_distill)")
    distill_weight: float = Field(default=1.0, ge=0, description="its weight relative to the image term")
    teacher: Literal["crnn_tz", "crnn"] = Field(
        default="crnn_tz", description="frozen recognizer reading HR: crnn_tz (shipped) or crnn (official crnn.pth)"
    )
    teacher_weights: str | None = Field(default=None, description="its weights file (else its default)")
    scale: float = Field(default=1.0, gt=0, description="multiplies the total; the official loop uses x100")
