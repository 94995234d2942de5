"""Hyper-parameters of the successors' models and losses (imports only pydantic, so listing is cheap)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["TBSRNParams", "TextFocusLossParams", "PCANParams", "PCANLossParams", "TRANSFORMER_FILE", "CONFUSION_FILE"]

#: The official pretrained transformer recognizer, under ``$TZBENCH_HOME/weights/``.
TRANSFORMER_FILE = "pretrain_transformer.pth"
#: The official character confusion matrix (62x62 counts), under ``$TZBENCH_HOME/weights/``.
CONFUSION_FILE = "confuse.pkl"


class TBSRNParams(BaseModel):
    """TBSRN constructor arguments; defaults are the official README's training command
    (``--STN``, no ``--mask``: 3 channels). ``in_channels`` of the model follow ``mask``."""

    model_config = ConfigDict(extra="forbid")

    scale_factor: int = Field(default=2, ge=2, description="upscaling factor (a power of two)")
    width: int = Field(default=128, gt=0, description="HR width; the STN samples to width // scale_factor")
    height: int = Field(default=32, gt=0, description="HR height; the STN samples to height // scale_factor")
    stn: bool = Field(default=True, description="TPS-STN alignment module (active in training only)")
    srb_nums: int = Field(default=5, ge=1, description="number of self-attention residual blocks")
    mask: bool = Field(default=False, description="4-channel RGB + mask input and output (official --mask)")
    hidden_units: int = Field(default=32, gt=0, multiple_of=2, description="feature width is 2 * hidden_units")
    stn_at_test: bool = Field(default=False, description="also rectify in eval mode (the official code does not)")
    grid_sample_align_corners: bool = Field(
        default=False, description="TPS grid_sample align_corners: False = torch>=1.3, True = torch<=1.2 'legacy'"
    )


class TextFocusLossParams(BaseModel):
    """``text_focus``: MSE + attention-map L1 + confusion-weighted CE of a frozen transformer
    recognizer (Scene Text Telescope). Defaults are the official weights (1, 10, 0.0005)."""

    model_config = ConfigDict(extra="forbid")

    text_focus: bool = Field(default=True, description="the two text terms (official --text_focus); off: MSE only")
    ce_on: Literal["sr", "hr"] = Field(
        default="sr",
        description="recognizer prediction the CE reads: 'sr' (fixed upstream in 9bd7824) or 'hr' (the first "
                    "release, which gives the SR network no gradient through the CE)",
    )
    mse_weight: float = Field(default=1.0, ge=0, description="weight of the MSE over all channels")
    attention_weight: float = Field(default=10.0, ge=0, description="weight of the attention-map L1")
    recognition_weight: float = Field(default=0.0005, ge=0, description="weight of the confusion-weighted CE")
    transformer_weights: str | None = Field(
        default=None, description=f"official transformer recognizer state dict; else $TZBENCH_HOME/weights/{TRANSFORMER_FILE}"
    )
    confusion: str | None = Field(
        default=None,
        description=f"confusion matrix (.pkl as released, or .npy); else $TZBENCH_HOME/weights/{CONFUSION_FILE}",
    )


class PCANParams(BaseModel):
    """PCAN constructor arguments; defaults are the official README's training command
    (``--STN --mask``: 4 channels). ``in_channels`` of the model follow ``mask``."""

    model_config = ConfigDict(extra="forbid")

    scale_factor: int = Field(default=2, ge=2, description="upscaling factor (a power of two)")
    width: int = Field(default=128, gt=0, description="HR width; the STN samples to width // scale_factor")
    height: int = Field(default=32, gt=0, description="HR height; the STN samples to height // scale_factor")
    stn: bool = Field(default=True, description="TPS-STN alignment module (active in training only)")
    srb_nums: int = Field(default=5, ge=1, description="number of parallel contextual attention blocks (PCABs)")
    mask: bool = Field(default=True, description="4-channel RGB + mask input and output (official --mask)")
    hidden_units: int = Field(default=32, ge=4, description="feature width is 2 * hidden_units")
    stn_at_test: bool = Field(default=False, description="also rectify in eval mode (the official code does not)")
    grid_sample_align_corners: bool = Field(
        default=False, description="TPS grid_sample align_corners: False = torch>=1.3, True = torch<=1.2 'legacy'"
    )

    @model_validator(mode="after")
    def _texture_attention_width(self) -> PCANParams:
        # The texture attention works on (2h * n) // 4 channels and its SE divides six times that by 16.
        if 6 * (2 * self.hidden_units * self.srb_nums // 4) < 16:
            raise ValueError(f"hidden_units={self.hidden_units} with srb_nums={self.srb_nums} leaves the texture "
                             f"attention's squeeze-excitation no unit: need 6 * (2 * hidden_units * srb_nums // 4) >= 16")
        return self


class PCANLossParams(BaseModel):
    """``pcan_loss``: MSE + optional gradient prior + optional edge guidance (PCAN's ``ImageLoss``).
    Defaults are the official training command (``--edge``, no ``--gradient``) and weights [1, 1e-4, 1e-4]."""

    model_config = ConfigDict(extra="forbid")

    mse_weight: float = Field(default=1.0, ge=0, description="weight of the MSE over all channels")
    gradient: bool = Field(default=False, description="add TextZoom's gradient prior on RGB (official --gradient)")
    gp_weight: float = Field(default=1e-4, ge=0, description="weight of the gradient prior")
    edge: bool = Field(default=True, description="add the Sobel edge-guidance L1 on RGB (official --edge)")
    eg_weight: float = Field(default=1e-4, ge=0, description="weight of the edge-guidance term")
    scale: float = Field(default=1.0, gt=0, description="multiplies the total; the official loop optimises loss*100")
