"""tzbench: a plugin-based benchmark platform for scene text image super-resolution."""

from __future__ import annotations

from tzbench.hookspecs import hookimpl
from tzbench.specs import (
    DatasetSpec,
    LossSpec,
    NoParams,
    RecognizerSpec,
    SRModelSpec,
    WeightsFile,
)

__version__ = "0.1.0"

__all__ = [
    "hookimpl",
    "DatasetSpec",
    "LossSpec",
    "NoParams",
    "RecognizerSpec",
    "SRModelSpec",
    "WeightsFile",
    "__version__",
]
