"""Hyper-parameters of the baseline SR models (pydantic only, so listing stays cheap).

Defaults are the configuration TextZoom's ``base.py`` builds (scale 2, HR 32x128). Field names
are the lower-case forms of the official constructor arguments (``STN`` -> ``stn``); the extra
width/depth knobs keep the official values as defaults and exist for quick, smaller runs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BicubicParams",
    "SRCNNParams",
    "VDSRParams",
    "SRResNetParams",
    "RRDBParams",
    "EDSRParams",
    "RDNParams",
    "LapSRNParams",
]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _STNParams(_Params):
    """Shared fields of the models that carry TextZoom's optional TPS-STN."""

    width: int = Field(default=128, gt=0, description="HR width; sizes the TPS grid")
    height: int = Field(default=32, gt=0, description="HR height; sizes the TPS grid")
    stn: bool = Field(
        default=False,
        description="add the TPS-STN (stn_head.*, tps.* keys); applied in training only",
    )


class BicubicParams(_Params):
    """Bicubic x2 upsampling has no hyper-parameters."""


class SRCNNParams(_STNParams):
    """SRCNN (Dong et al.): 9-1-5 convolutions on the nearest-upsampled input."""


class VDSRParams(_STNParams):
    """VDSR (Kim et al.): a deep plain conv stack learning the residual to the upsampled input."""

    num_layers: int = Field(default=18, ge=1, description="3x3 conv+ReLU layers between input and output convs")
    num_features: int = Field(default=64, ge=1)


class SRResNetParams(_STNParams):
    """SRResNet (Ledig et al.) as configured in TextZoom."""

    mask: bool = Field(default=True, description="4 input/output channels (RGB + binary mask) when true")


class RRDBParams(_Params):
    """RRDBNet, the ESRGAN generator (Wang et al.)."""

    num_features: int = Field(default=64, ge=1, description="nf")
    num_blocks: int = Field(default=23, ge=1, description="nb: RRDB blocks in the trunk")
    growth: int = Field(default=32, ge=1, description="gc: growth channels of each dense block")


class EDSRParams(_Params):
    """EDSR (Lim et al.), the large configuration."""

    num_blocks: int = Field(default=32, ge=1)
    num_features: int = Field(default=256, ge=1)
    res_scale: float = Field(default=0.1, gt=0, description="residual scaling inside each block")


class RDNParams(_Params):
    """RDN (Zhang et al.) as configured in TextZoom (3 blocks of 6 dense layers)."""

    num_features: int = Field(default=64, ge=1)
    growth: int = Field(default=32, ge=1)
    num_blocks: int = Field(default=3, ge=1, description="residual dense blocks (RDB1..RDBn)")
    num_layers: int = Field(default=6, ge=1, description="dense layers per block")


class LapSRNParams(_STNParams):
    """LapSRN (Lai et al.) with colour input; only the x2 level is used."""

    num_layers: int = Field(default=10, ge=1, description="conv+LeakyReLU layers per feature branch")
    convt_init: Literal["official", "per_channel"] = Field(
        default="official",
        description="transposed-conv start: 'official' puts the bilinear kernel on every (in, out) channel "
        "pair (each output starts as the upsampled *sum* of the inputs, as TextZoom's code does); "
        "'per_channel' only on the diagonal, so the image branch starts as a bilinear x2 upsampling")
