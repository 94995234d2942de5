"""The Python API: ``list_*`` / ``create_*`` pairs over every plugin's components (timm style).

Each call builds its own plugin manager and catalog (cheap: no model code is imported until
a component is created), so there is no global registry to go stale.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tzbench.catalog import Catalog
from tzbench.plugins import get_plugin_manager

__all__ = [
    "get_catalog",
    "list_sr_models",
    "create_sr_model",
    "list_recognizers",
    "create_recognizer",
    "list_losses",
    "create_loss",
    "list_datasets",
    "create_dataset",
]


def get_catalog(disable: Iterable[str] = (), extra_plugins: Iterable[object] = ()) -> Catalog:
    """A fresh catalog of every installed plugin's components."""
    return Catalog(get_plugin_manager(disable=disable, extra_plugins=extra_plugins))


def list_sr_models() -> list[str]:
    """Names of the installed super-resolution models."""
    return get_catalog().names("sr-models")


def create_sr_model(name: str, pretrained: bool | str = False, **params: Any) -> Any:
    """Build SR model ``name`` (an ``nn.Module``); params are validated first.

    ``pretrained=True`` loads the weights the model's plugin ships (the first listed;
    a string picks them by tag, e.g. ``"wild-cpu"``), with the params they were trained with;
    ``tzbench list sr-models`` shows which models have them. Like timm, the model is returned in
    train mode: call ``.eval()`` before inference.
    """
    catalog = get_catalog()
    if pretrained:
        from tzbench.pretrained import create_pretrained_sr_model

        return create_pretrained_sr_model(catalog, name, pretrained, **params)
    return catalog.create("sr-models", name, params)


def list_recognizers() -> list[str]:
    """Names of the installed recognizers (judges)."""
    return get_catalog().names("recognizers")


def create_recognizer(name: str, **params: Any) -> Any:
    """Build recognizer ``name``; params are validated first."""
    return get_catalog().create("recognizers", name, params)


def list_losses() -> list[str]:
    """Names of the installed losses."""
    return get_catalog().names("losses")


def create_loss(name: str, **params: Any) -> Any:
    """Build loss ``name`` (an ``nn.Module``); params are validated first."""
    return get_catalog().create("losses", name, params)


def list_datasets() -> list[str]:
    """Names of the installed datasets."""
    return get_catalog().names("datasets")


def create_dataset(name: str, **params: Any) -> Any:
    """Build dataset provider ``name``; params are validated first."""
    return get_catalog().create("datasets", name, params)
