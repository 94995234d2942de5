"""Training loggers (experiment trackers): the contract and how a run builds the ones it names.

Plugins register loggers with the ``register_loggers`` hook (a :class:`~tzbench.specs.LoggerSpec`
each); ``tzbench train ... --logger NAME`` enables one for a run. The training loop calls every
enabled logger on rank 0 only; a logger that raises is reported once and dropped, so a broken
tracker never ends a long run. This module imports no logger (and not torch): a logger's
target is imported only when a run enables it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tzbench.catalog import Catalog
from tzbench.errors import RunError
from tzbench.specs import LoggerSpec, resolve_target

__all__ = ["TrainLogger", "check_loggers", "build_loggers", "LoggerSet"]

log = logging.getLogger("tzbench.runner")


@runtime_checkable
class TrainLogger(Protocol):
    """What the training loop calls; every value is a plain Python float (no tensors but the grid)."""

    def on_start(self, info: Mapping[str, Any]) -> None:
        """Before the first step: ``run_id``, ``run_dir``, ``model``, ``steps``, ``start_step``
        (> 0 on resume: events after it will be written again), ``config`` (the run's config)."""

    def on_step(self, step: int, scalars: Mapping[str, float]) -> None:
        """Every ``log_every`` steps: ``loss`` (running mean over the last ``log_every`` steps),
        ``loss/<term>`` for each named term of the loss (same window), ``lr``, ``s_per_step``."""

    def on_validation(self, step: int, metrics: Mapping[str, Mapping[str, float]], sample_grid: Any) -> None:
        """After each validation: ``metrics[set][metric]`` (``psnr``, ``ssim``, ``accuracy`` when a
        judge selects, ``n``), and ``sample_grid``, a float tensor ``(3, H, W)`` in ``[0, 1]``
        whose rows are bicubic LR, SR and HR of the first validation pairs (or None)."""

    def on_end(self) -> None:
        """After the last step, also when the run fails or is interrupted: flush and close."""


def _spec(catalog: Catalog, name: str) -> LoggerSpec:
    return catalog.spec("loggers", name)  # an unknown name: one line with a did-you-mean


def _factory(catalog: Catalog, name: str) -> Any:
    spec = _spec(catalog, name)
    try:
        return resolve_target(spec.target)
    except ImportError as exc:
        how = f": {spec.install}" if spec.install else ""
        raise RunError(f"logger {name!r} cannot be loaded ({exc.__cause__ or exc}){how}") from None


def check_loggers(catalog: Catalog, names: Sequence[str]) -> None:
    """Fail now, before a run row exists, on an unknown logger or one whose package is missing."""
    for name in names:
        catalog.validate_params("loggers", name, {})
        _factory(catalog, name)


def build_loggers(catalog: Catalog, names: Sequence[str], run_dir: Path) -> list[tuple[str, TrainLogger]]:
    """``(name, logger)`` for each of ``names``, built for the run folder ``run_dir``."""
    out: list[tuple[str, TrainLogger]] = []
    for name in names:
        params = catalog.validate_params("loggers", name, {}).model_dump()
        made = _factory(catalog, name)(run_dir=run_dir, **params)
        if not isinstance(made, TrainLogger):
            raise RunError(f"logger {name!r}: its target returned {type(made).__name__}, which lacks "
                           "on_start/on_step/on_validation/on_end")
        out.append((name, made))
    return out


class LoggerSet:
    """Calls every logger, dropping (with one warning) any that raises."""

    def __init__(self, loggers: list[tuple[str, TrainLogger]]) -> None:
        self._loggers = list(loggers)

    def __bool__(self) -> bool:
        return bool(self._loggers)

    def call(self, method: str, *args: Any) -> None:
        """``logger.method(*args)`` on each logger still enabled."""
        for name, lg in list(self._loggers):
            try:
                getattr(lg, method)(*args)
            except Exception as exc:  # noqa: BLE001 - a tracker's failure must not end the run
                log.warning("logger %r failed in %s (%s: %s); it is disabled for the rest of the run",
                            name, method, type(exc).__name__, exc)
                self._loggers.remove((name, lg))
