"""tzbench's error classes, torch-free, under one base.

Every error a user can fix derives from :class:`TzbenchError`; the CLI turns those into one
line and exit code 2. The classes live here, not in the modules that raise them (they
re-export them), so that catching them, as ``tzbench --help`` and ``tzbench leaderboard``
do, imports neither torch nor the runner.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TzbenchError", "ConfigError", "CatalogError", "ComponentImportError", "StoreError", "RunError",
           "CheckpointError", "WeightsError", "DatasetError"]


class TzbenchError(Exception):
    """A problem the user can fix; the message names the file, key or field and what to do."""


class ConfigError(TzbenchError, ValueError):
    """A configuration problem: names the file, the ``--set`` path or the field."""


class CatalogError(TzbenchError, ValueError):
    """A catalog problem a user can fix: duplicate names, bad params, bad specs."""


class ComponentImportError(TzbenchError, ImportError):
    """A component's ``"module:attr"`` target cannot be imported; names the module and the cause.

    An ImportError still (callers that catch that keep working), and a user error: the plugin
    that ships the component is broken or misses a dependency the user can install.
    """


class StoreError(TzbenchError, RuntimeError):
    """The database cannot be opened or written; names the URL."""


class RunError(TzbenchError, RuntimeError):
    """A run that cannot start or continue; the message says why and what to do."""


class CheckpointError(TzbenchError, RuntimeError):
    """A checkpoint that is missing, incomplete or belongs to another model."""


class WeightsError(TzbenchError, RuntimeError):
    """A weights file that cannot be read or does not fit the model; names file and keys."""


class DatasetError(TzbenchError, RuntimeError):
    """A dataset cannot be read as asked (missing folder, bad sample under the 'error' policy).

    ``bad`` is the :class:`tzbench.data.errors.BadSample` that caused it, when one did.
    """

    def __init__(self, message: str, bad: Any = None) -> None:
        super().__init__(message)
        self.bad = bad
