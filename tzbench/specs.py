"""Spec types returned by plugin hooks.

A spec is frozen metadata about one component. It never imports the component: ``target`` is
a lazy ``"module:attr"`` reference, resolved only when the component is created, so listing
components stays cheap and a broken model file cannot break ``tzbench list``.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tzbench.errors import ComponentImportError

__all__ = [
    "NoParams",
    "ComponentSpec",
    "SRModelSpec",
    "RecognizerSpec",
    "WeightsFile",
    "PretrainedWeights",
    "LossSpec",
    "DatasetSpec",
    "LoggerSpec",
    "resolve_target",
]

_SLUG = re.compile(r"^[a-z][a-z0-9_]*(-[a-z0-9_]+)*$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class NoParams(BaseModel):
    """Params model of a component without hyper-parameters."""

    model_config = ConfigDict(extra="forbid")


class ComponentSpec(BaseModel):
    """Fields shared by every component spec."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str = Field(description="lowercase slug, unique within its kind")
    target: str = Field(description="'module:attr' of the class or factory, imported lazily")
    params: type[BaseModel] = Field(default=NoParams, description="pydantic model of the hyper-parameters")
    summary: str = ""
    paper: str = ""

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(f"component name {v!r} is not a lowercase slug (a-z, 0-9, _ and -)")
        return v

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        if not _TARGET.match(v):
            raise ValueError(f"target {v!r} is not of the form 'module:attr'")
        return v

    @field_validator("params")
    @classmethod
    def _params(cls, v: type[BaseModel]) -> type[BaseModel]:
        if v.model_config.get("extra") != "forbid":
            raise ValueError(f"params model {v.__name__} must set extra='forbid'")
        return v


class PretrainedWeights(BaseModel):
    """Weights shipped inside a plugin package (timm's ``pretrained=True`` convention).

    The file is a tzbench checkpoint (safetensors whose header carries the run's metadata:
    model params, recipe, dataset, step, run id, commit, val scores), found through its package
    without importing it and checked against ``sha256`` before use.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tag: str = Field(description="which weights, e.g. 'wild-cpu' (dataset and recipe)")
    resource: str = Field(description="'package:relative/path.safetensors' inside an installed package")
    sha256: str
    summary: str = Field(default="", description="provenance and measured scores, one line")

    @field_validator("resource")
    @classmethod
    def _resource(cls, v: str) -> str:
        package, _, rel = v.partition(":")
        if not package or not rel or rel.startswith("/") or ".." in rel.split("/"):
            raise ValueError(f"resource {v!r} is not of the form 'package:relative/path'")
        return v


class SRModelSpec(ComponentSpec):
    """A super-resolution model: nn.Module mapping (B,C,16,64) -> (B,C,32,128) at scale 2."""

    default_loss: str | None = Field(
        default=None, description="the loss it trains with unless the run names one; None: registry.yaml default_loss")
    default_loss_params: dict[str, Any] = Field(default_factory=dict)
    scale: int = 2
    in_channels: Literal[3, 4] | None = Field(
        default=3, description="3 (RGB) or 4 (RGB+mask); None when it follows the 'mask' param"
    )
    trainable: bool = True
    pretrained: tuple[PretrainedWeights, ...] = Field(
        default=(), description="shipped weights; the first is what pretrained=True loads")


class WeightsFile(BaseModel):
    """A weights file a recognizer needs, as a user would place it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    filename: str
    sha256: str | None = None
    source: str = ""


class RecognizerSpec(ComponentSpec):
    """A text recognizer (judge): owns its preprocessing, returns strings."""

    charset: str = ""
    weights: tuple[WeightsFile, ...] = ()
    needs_weights: bool = True


class LossSpec(ComponentSpec):
    """A training loss: nn.Module ``(sr, hr) -> scalar`` exposing named parts.

    A loss that reads a weights file the user must supply (a perceptual network) names it in
    ``weights_file`` (under ``$TZBENCH_HOME/weights/``) and the params that make it work
    without the file in ``params_without_weights``: ``tzbench reproduce`` then trains with those
    and says so in the run's notes instead of failing or silently training another loss.
    """

    weights_file: str | None = Field(default=None, description="file name under $TZBENCH_HOME/weights/")
    params_without_weights: dict[str, Any] = Field(default_factory=dict)


class DatasetSpec(ComponentSpec):
    """A paired LR/HR dataset provider."""

    splits: tuple[str, ...] = ("train", "test")
    subsets: tuple[str, ...] = ("easy", "medium", "hard")


class LoggerSpec(ComponentSpec):
    """A training logger (TensorBoard, ...): ``target(run_dir=Path, **params) -> TrainLogger``.

    A logger that needs a package tzbench does not install names the command that installs it
    in ``install``; the runner puts it in the one-line error when the target cannot be imported.
    """

    install: str = Field(default="", description="how to install what the logger needs, e.g. pip install 'tzbench[x]'")


def resolve_target(target: str) -> Any:
    """Import ``"module:attr"`` (attr may be dotted) and return the object."""
    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        # One line: the CLI prints the message as its single `error:` line.
        cause = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise ComponentImportError(f"cannot import module {module_name!r} for target {target!r}: {cause}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ComponentImportError(f"target {target!r}: module {module_name} has no attribute {attr!r}") from exc
    return obj
