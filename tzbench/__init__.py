"""tzbench: a plugin-based benchmark platform for scene text image super-resolution."""

from __future__ import annotations

from tzbench.api import (
    create_dataset,
    create_loss,
    create_recognizer,
    create_sr_model,
    get_catalog,
    list_datasets,
    list_losses,
    list_recognizers,
    list_sr_models,
)
from tzbench.hookspecs import hookimpl
from tzbench.specs import (
    DatasetSpec,
    LoggerSpec,
    LossSpec,
    NoParams,
    RecognizerSpec,
    SRModelSpec,
    WeightsFile,
)

__version__ = "0.1.0"

__all__ = [
    "hookimpl",
    "get_catalog",
    "list_sr_models",
    "create_sr_model",
    "list_recognizers",
    "create_recognizer",
    "list_losses",
    "create_loss",
    "list_datasets",
    "create_dataset",
    "DatasetSpec",
    "LoggerSpec",
    "LossSpec",
    "NoParams",
    "RecognizerSpec",
    "SRModelSpec",
    "WeightsFile",
    "__version__",
]
