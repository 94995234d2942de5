"""Registers the built-in training loggers; their modules are imported only when a run enables them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tzbench.hookspecs import hookimpl
from tzbench.specs import LoggerSpec

__all__ = ["TensorBoardParams", "register_loggers"]


class TensorBoardParams(BaseModel):
    """Params of the ``tensorboard`` logger."""

    model_config = ConfigDict(extra="forbid")

    subdir: str = Field(default="tb", description="event files go to <run folder>/<subdir>/")
    flush_secs: int = Field(default=30, ge=1, description="how often the writer flushes to disk")


@hookimpl
def register_loggers() -> list[LoggerSpec]:
    return [LoggerSpec(
        name="tensorboard", target="tzbench_loggers.tensorboard:TensorBoardLogger", params=TensorBoardParams,
        summary="TensorBoard event files in <run>/tb/: losses, learning rate, validation metrics, a sample grid",
        install="pip install 'tzbench[tensorboard]'",
    )]
