"""Registers the built-in training losses. Imports no torch: targets are resolved lazily."""

from __future__ import annotations

from tzbench.hookspecs import hookimpl
from tzbench.specs import LossSpec
from tzbench_losses.params import (
    CharbonnierParams,
    GradientProfileParams,
    L1Params,
    L2Params,
    PerceptualParams,
    SRResNetLossParams,
    TSRNLossParams,
    TextPriorParams,
    TVParams,
    VGG19_FILE,
)

__all__ = ["register_losses"]

_TEXTZOOM = "Wang et al., Scene Text Image Super-Resolution in the Wild, ECCV 2020"


@hookimpl
def register_losses() -> list[LossSpec]:
    """The losses of the TextZoom baselines: l1, l2, charbonnier, tv, gradient_profile,
    tsrn_loss, perceptual and srresnet_loss (formulas in docs/losses.md)."""
    return [
        LossSpec(name="l1", target="tzbench_losses.l1:L1Loss", params=L1Params,
                 summary="mean absolute error (RRDB, EDSR, RDN in TextZoom)"),
        LossSpec(name="l2", target="tzbench_losses.l2:L2Loss", params=L2Params,
                 summary="mean squared error (SRCNN, VDSR in TextZoom)"),
        LossSpec(name="charbonnier", target="tzbench_losses.charbonnier:CharbonnierLoss",
                 params=CharbonnierParams, summary="mean sqrt((sr-hr)^2 + eps^2), eps=1e-3",
                 paper="Lai et al., LapSRN, CVPR 2017"),
        LossSpec(name="tv", target="tzbench_losses.tv:TVLoss", params=TVParams,
                 summary="total variation of the SR image (smoothness prior)"),
        LossSpec(name="gradient_profile", target="tzbench_losses.gradient_profile:GradientProfileLoss",
                 params=GradientProfileParams, summary="L1 between gradient-magnitude maps (GP loss)",
                 paper=_TEXTZOOM),
        LossSpec(name="tsrn_loss", target="tzbench_losses.tsrn_loss:TSRNLoss", params=TSRNLossParams,
                 summary="TSRN: MSE over all channels + 1e-4 x gradient prior on RGB", paper=_TEXTZOOM),
        LossSpec(name="perceptual", target="tzbench_losses.perceptual:PerceptualLoss",
                 params=PerceptualParams, summary="VGG19 feature distance (needs user-provided VGG19 weights)",
                 paper="Johnson et al., ECCV 2016; Ledig et al., CVPR 2017", weights_file=VGG19_FILE),
        LossSpec(name="text_prior", target="tzbench_losses.text_prior:TextPriorLoss", params=TextPriorParams,
                 summary="an SR loss + KL between a frozen CTC judge's per-frame readings of SR and HR (crnn_tz)",
                 paper="text-prior loss of TPGSR (Ma et al., TIP 2023) / TATT (Ma et al., CVPR 2022)"),
        LossSpec(name="srresnet_loss", target="tzbench_losses.srresnet_loss:SRResNetLoss",
                 params=SRResNetLossParams, summary="SRResNet: L2 + TV + perceptual (VGG19 weights unless "
                 "perceptual_weight=0)", paper="Ledig et al., CVPR 2017; " + _TEXTZOOM,
                 weights_file=VGG19_FILE, params_without_weights={"perceptual_weight": 0.0}),
    ]
