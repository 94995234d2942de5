"""Hyper-parameters of the built-in losses (pydantic only, so listing losses stays cheap).

Defaults are the values of the paper each loss comes from; see docs/losses.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "VGG19_FILE",
    "TextPriorParams",
    "VGG_LAYERS",
    "L1Params",
    "L2Params",
    "CharbonnierParams",
    "TVParams",
    "GradientProfileParams",
    "TSRNLossParams",
    "PerceptualParams",
    "SRResNetLossParams",
]

#: The VGG19 ImageNet state dict the perceptual losses read, under ``$TZBENCH_HOME/weights/``.
VGG19_FILE = "vgg19.pth"

#: Activation names of VGG19's ``features`` stack a perceptual loss can compare.
VGG_LAYERS = Literal[
    "relu1_1", "relu1_2",
    "relu2_1", "relu2_2",
    "relu3_1", "relu3_2", "relu3_3", "relu3_4",
    "relu4_1", "relu4_2", "relu4_3", "relu4_4",
    "relu5_1", "relu5_2", "relu5_3", "relu5_4",
]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class L1Params(_Params):
    """``l1``: no hyper-parameters."""


class L2Params(_Params):
    """``l2`` (MSE): no hyper-parameters."""


class CharbonnierParams(_Params):
    """``charbonnier``: ``mean(sqrt((sr - hr)^2 + eps^2))``."""

    eps: float = Field(default=1e-3, gt=0, description="smoothing constant (LapSRN: 1e-3)")


class TVParams(_Params):
    """``tv``: total variation of the SR image (the HR image is ignored)."""

    power: Literal[1, 2] = Field(default=2, description="1: mean |diff|; 2: mean diff^2")


class GradientProfileParams(_Params):
    """``gradient_profile``: L1 distance between gradient-magnitude maps."""

    eps: float = Field(default=1e-6, gt=0, description="added under the square root (TextZoom: 1e-6)")
    channels: Literal["rgb", "all"] = Field(
        default="rgb", description="'rgb' compares channels [:3] only, as TSRN does (the mask is left out)"
    )


class TSRNLossParams(_Params):
    """``tsrn_loss``: TextZoom's ``ImageLoss(gradient=True, loss_weight=[1, 1e-4])``."""

    mse_weight: float = Field(default=1.0, ge=0, description="weight of MSE over all channels")
    gp_weight: float = Field(default=1e-4, ge=0, description="weight of the gradient prior on [:3]")
    scale: float = Field(
        default=1.0, gt=0,
        description="multiplies the total; TextZoom's training loop optimises loss*100",
    )


class PerceptualParams(_Params):
    """``perceptual``: distance between VGG19 activations of SR and HR (RGB channels)."""

    weights: str | None = Field(
        default=None,
        description="VGG19 state dict (.pth); else $TZBENCH_VGG_WEIGHTS, else $TZBENCH_HOME/weights/vgg19.pth",
    )
    layer: VGG_LAYERS = Field(default="relu5_4", description="compared activation (SRGAN's VGG54)")
    criterion: Literal["l2", "l1"] = "l2"
    normalize: bool = Field(default=True, description="apply ImageNet mean/std to [0,1] inputs first")


class SRResNetLossParams(_Params):
    """``srresnet_loss``: ``mse_weight*L2 + tv_weight*TV + perceptual_weight*perceptual``.

    TextZoom lists L2 + TV + perceptual for SRResNet without weights; the defaults follow SRGAN
    (Ledig et al., 2017). ``perceptual_weight > 0`` needs VGG19 weights (construction fails
    with a message naming the file otherwise); ``perceptual_weight=0`` trains without them.
    """

    mse_weight: float = Field(default=1.0, ge=0)
    tv_weight: float = Field(default=2e-8, ge=0)
    perceptual_weight: float = Field(default=6e-3, ge=0, description="~1/12.75^2, SRGAN's VGG rescaling")
    vgg_weights: str | None = Field(default=None, description="as PerceptualParams.weights")
    vgg_layer: VGG_LAYERS = "relu5_4"


class TextPriorParams(_Params):
    """``text_prior``: an SR loss plus the divergence of a frozen CTC judge's readings of SR and HR."""

    base: str = Field(default="tsrn_loss", description="the SR loss the text term is added to (a registered loss)")
    base_params: dict[str, Any] = Field(default_factory=dict, description="params of the base loss")
    judge: str = Field(default="crnn_tz", description="a judge with ctc_logits (frozen; reads SR and HR)")
    weight: float = Field(default=0.01, ge=0, description="weight of the per-frame KL term")
    temperature: float = Field(default=1.0, gt=0, description="softens both posteriors before the KL")
