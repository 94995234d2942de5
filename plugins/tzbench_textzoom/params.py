"""Parameters of the built-in datasets (pydantic only: cheap to import for ``tzbench list``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["DataParams", "TextZoomParams", "SynthParams", "WildParams"]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}


class DataParams(BaseModel):
    """Parameters shared by every built-in dataset."""

    model_config = ConfigDict(extra="forbid")

    mask: bool = Field(False, description="add the official binary mask as a 4th channel (TSRN uses it)")
    max_samples: int | None = Field(
        None, ge=1, description="keep only the first N samples of each split/subset (before skipping bad ones)"
    )
    on_bad_sample: Literal["skip", "error"] | None = Field(
        None, description="skip (and count) or refuse bad samples; None = error for test, skip for train/val"
    )
    seed: int = Field(0, description="seed of the validation carve and of generated data")
    val_fraction: float = Field(0.05, ge=0.0, lt=1.0, description="share of train carved out as the val split")
    cache: bool | str = Field(
        True,
        description="keep decoded samples in memory as uint8 tensors; a path also stores them on disk "
        "there ($TZBENCH_DATA_CACHE is the default folder when true)",
    )
    threads: int | None = Field(None, ge=1, description="decode threads for the first pass (default min(8, CPUs))")

    @field_validator("cache", mode="before")
    @classmethod
    def _cache_bool(cls, v: object) -> object:
        # Command-line overrides arrive as strings; 'true'/'false' mean the flag, not a folder.
        if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
            return v.strip().lower() in _TRUE
        return v


class TextZoomParams(DataParams):
    """The official TextZoom LMDBs (train1 + train2, test/easy|medium|hard)."""

    root: str | None = Field(None, description="folder holding train1/, train2/ and test/; default $TZBENCH_TEXTZOOM")
    lr_source: Literal["real", "bicubic"] = Field(
        "real", description="'real': the stored LR; 'bicubic': bicubic x2 of the HR (the paper's synthetic-LR comparison)"
    )


class _LrSourceParam(BaseModel):
    lr_source: Literal["degraded", "bicubic"] = Field(
        "degraded",
        description="'degraded': LR by the camera-like degradation; 'bicubic': bicubic x2 of the HR "
        "(the paper's synthetic-LR training data of section 5.4)",
    )


class SynthParams(DataParams, _LrSourceParam):
    """Generated word images (the embedded default; works offline)."""

    n_train: int = Field(2000, ge=1, description="generated training pairs (val is carved from them)")
    n_test: int = Field(300, ge=1, description="generated pairs per test subset (easy, medium, hard)")
    fonts: list[str] | None = Field(
        None, description="font files or name globs (e.g. 'DejaVuSans*'); None = every font found"
    )


class WildParams(DataParams, _LrSourceParam):
    """Real word crops (folders with labels.tsv, or LMDBs) with camera-like made LR."""

    root: str | list[str] | None = Field(
        None,
        description="crop folder(s) (labels.tsv), LMDB(s) or parents of those; a string may list several "
        "separated by os.pathsep; default $TZBENCH_WILD, else ../shared/data/wild-train of a source checkout",
    )
    test_fraction: float = Field(0.1, gt=0.0, lt=1.0, description="share of crops held out as the test split")
    split_seed: int = Field(0, description="seed of the train/val/test assignment (kept apart from `seed`)")
