"""Hyper-parameters of ESPCN (torch-free, so listing never imports the model)."""

from pydantic import BaseModel, ConfigDict, Field


class ESPCNParams(BaseModel):
    """ESPCN at scale 2 on RGB or RGB+mask input."""

    model_config = ConfigDict(extra="forbid")

    channels: int = Field(default=3, description="3 (RGB) or 4 (RGB + mask)")
    features: int = Field(default=64, ge=1)
    scale: int = Field(default=2, ge=1)
