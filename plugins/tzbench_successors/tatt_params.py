"""Hyper-parameters of TATT (imports only pydantic, so listing is cheap)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TATTLossParams", "TATTParams"]


class TATTParams(BaseModel):
    """TATT: a TSRN_TL_TRANS super-resolution network fed the text prior of a CRNN on its LR
    input through a transformer (the TP interpreter).

    Defaults are the official training command (``train_TATT.sh``: ``--arch tatt --STN --mask
    --sr_share --stu_iter=1 --use_distill --gradient``; ``out_text_channels=64`` = 2 * hidden_units, CRNN prior generator).
    """

    model_config = ConfigDict(extra="forbid")

    scale_factor: int = Field(default=2, ge=2, description="upscaling factor (a power of two)")
    width: int = Field(default=128, gt=0, description="HR width; the LR input is width // scale_factor wide")
    height: int = Field(default=32, gt=0, description="HR height; the LR input is height // scale_factor high")
    stn: bool = Field(default=True, description="TPS-STN alignment module (active in training only)")
    srb_nums: int = Field(default=5, ge=1, description="number of text-guided recurrent residual blocks")
    mask: bool = Field(default=True, description="4-channel RGB + mask input and output (official --mask)")
    hidden_units: int = Field(
        default=32, ge=2, multiple_of=2,
        description="feature width 2 * hidden_units, also the TP transformer's (4 heads) and the text map's",
    )
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
        default=True, description="train the prior generator by tpgsr_loss's distillation (official); off: frozen"
    )
    rotate_train: float = Field(
        default=5.0, ge=0, le=90,
        description="training only: max angle (degrees) of the rotated second pass for tatt_loss's structure-consistency "
                    "term (official --rotate_train=5); 0: no second pass",
    )


class TATTLossParams(BaseModel):
    """``tatt_loss``: ``tpgsr_loss``'s image and distillation terms (one stage) + TATT's rotation
    structure-consistency term. Defaults: the official script (``--gradient --use_distill
    --tssim_loss``, weights 100 : 100 : 10 = 1 : 1 : 0.1)."""

    model_config = ConfigDict(extra="forbid")

    mse_weight: float = Field(default=1.0, ge=0, description="weight of the MSE over all channels")
    gp_weight: float = Field(default=1e-4, ge=0, description="weight of TextZoom's gradient prior on RGB")
    distill: bool = Field(default=True, description="add the distillation term (official --use_distill)")
    distill_weight: float = Field(default=1.0, ge=0, description="its weight relative to the image term")
    teacher: Literal["crnn_tz", "crnn"] = Field(
        default="crnn_tz", description="frozen recognizer reading HR: crnn_tz (shipped) or crnn (official crnn.pth)"
    )
    teacher_weights: str | None = Field(default=None, description="its weights file (else its default)")
    tssim_weight: float = Field(
        default=0.1, ge=0, description="weight of 1 - TRI_SSIM(rotate(sr), sr of rotated lr, rotate(hr)); 0: off"
    )
    scale: float = Field(default=1.0, gt=0, description="multiplies the total; the official loop uses x100")
