"""Hyper-parameters of TSRN and its ablations (imports only pydantic, so listing is cheap)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TSRNParams", "TSRNSRBParams", "TSRNSRBAlignParams"]


class TSRNParams(BaseModel):
    """TSRN constructor arguments; defaults are the official TextZoom configuration.

    ``in_channels`` of the model follow ``mask``: 4 (RGB + binary mask) or 3.
    """

    model_config = ConfigDict(extra="forbid")

    scale_factor: int = Field(default=2, ge=2, description="upscaling factor (a power of two)")
    width: int = Field(default=128, gt=0, description="HR width; the STN samples to width // scale_factor")
    height: int = Field(default=32, gt=0, description="HR height; the STN samples to height // scale_factor")
    stn: bool = Field(default=True, description="TPS-STN alignment module (active in training only)")
    srb_nums: int = Field(default=5, ge=1, description="number of sequential residual blocks")
    mask: bool = Field(default=True, description="4-channel RGB + mask input and output")
    hidden_units: int = Field(default=32, gt=0, description="feature width is 2 * hidden_units")
    stn_at_test: bool = Field(default=False, description="also rectify in eval mode (the official code does not)")
    grid_sample_align_corners: bool = Field(
        default=False, description="TPS grid_sample align_corners: False = torch>=1.3, True = torch<=1.2 'legacy'"
    )


class TSRNSRBParams(TSRNParams):
    """Table 3 ablation "5 x SRB": TSRN without the alignment module."""

    stn: bool = Field(default=False, description="TPS-STN alignment module (active in training only)")


class TSRNSRBAlignParams(TSRNParams):
    """Table 3 ablation "5 x SRB + align": full TSRN architecture, trained with plain L2."""
