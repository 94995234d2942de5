"""Hyper-parameters of the example components (torch-free, so listing never imports them)."""

from pydantic import BaseModel, ConfigDict, Field


class ESPCNParams(BaseModel):
    """ESPCN at scale 2 on RGB or RGB+mask input."""

    model_config = ConfigDict(extra="forbid")

    # The spec says in_channels=None: the runner then feeds 4 channels exactly when this is true
    # (and sets the dataset's own `mask` param to match). A `channels` param would be ignored.
    mask: bool = Field(default=False, description="take and return RGB + mask (4 channels) instead of RGB")
    features: int = Field(default=64, ge=1)
    scale: int = Field(default=2, ge=1)


class ColumnJudgeParams(BaseModel):
    """The example judge: a seeded, untrained CTC reader (see column_judge.py)."""

    model_config = ConfigDict(extra="forbid")

    weights: str | None = Field(default=None, description="a state dict (.pth) to load; None = the seeded init")
    seed: int = Field(default=0, description="seed of the initial weights (readings are deterministic)")


class BarsParams(BaseModel):
    """The example dataset: generated bar-code-like words (see bars.py)."""

    model_config = ConfigDict(extra="forbid")

    # The runner sets this from the SR model's input channels (4 -> true); every dataset that
    # can add the mask channel needs a param of exactly this name.
    mask: bool = Field(default=False, description="add the binary text mask as a 4th channel")
    n_train: int = Field(default=64, ge=1, description="training pairs")
    n_val: int = Field(default=16, ge=1, description="validation pairs (the runner selects checkpoints on them)")
    n_test: int = Field(default=16, ge=1, description="pairs per test subset (easy, medium, hard)")
    seed: int = Field(default=0, description="the same seed gives the same pairs on every machine")
