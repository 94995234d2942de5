"""Hyper-parameters of TPGSR (imports only pydantic, so listing is cheap)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PRIORS", "TPGSRLossParams", "TPGSRParams"]

#: Text-prior generators TPGSR can use: CTC judges with the 37-class ``0-9a-z`` + blank output.
PRIORS = ("crnn_tz", "crnn")


class TPGSRParams(BaseModel):
    """TPGSR: a TSRN_TL super-resolution network fed the text prior of a CRNN on its LR input.

    Defaults are the official TPGSR-TSRN training command (``train_TPGSR-TSRN.sh``: ``--STN
    --mask --sr_share --stu_iter=1``, CRNN prior generator, fine-tuned jointly).
    """

    model_config = ConfigDict(extra="forbid")

    scale_factor: int = Field(default=2, ge=2, description="upscaling factor (a power of two)")
    width: int = Field(default=128, gt=0, description="HR width; the STN samples to width // scale_factor")
    height: int = Field(default=32, gt=0, description="HR height; the STN samples to height // scale_factor")
    stn: bool = Field(default=True, description="TPS-STN alignment module (active in training only)")
    srb_nums: int = Field(default=5, ge=1, description="number of text-guided recurrent residual blocks")
    mask: bool = Field(default=True, description="4-channel RGB + mask input and output (official --mask)")
    hidden_units: int = Field(default=32, gt=0, description="feature width is 2 * hidden_units (even)")
    text_channels: int = Field(default=32, ge=2, multiple_of=2, description="channels of the text feature map")
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
    finetune_prior: bool = Field(
        default=True, description="train the prior generator jointly with the SR network (official); off: frozen"
    )
    stages: int = Field(default=1, ge=1, le=5, description="multi-stage: each stage re-reads the previous SR output")
    share_sr: bool = Field(default=True, description="one SR network for every stage (official --sr_share)")
    share_prior: bool = Field(default=False, description="one prior generator for every stage (official --tpg_share)")
    prior_dropout: float = Field(
        default=0.25, ge=0, lt=1,
        description="training only: the prior of the first floor(B * p) samples of a batch is zeroed (official B // 4)",
    )


class TPGSRLossParams(BaseModel):
    """``tpgsr_loss``: per stage, TextZoom's image loss + the distillation of a frozen teacher's
    HR reading into the prior generator's LR reading. Defaults: the official script
    (``--gradient --use_distill``, weights 1 / 1e-4 and 100 : 100)."""

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
