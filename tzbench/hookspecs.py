"""Hook specifications: the extension points of tzbench.

Each hook is implemented by a plugin module registered under the ``tzbench`` entry-point
group (built-in plugins use the same group). Hooks that register components return lists of
spec objects; the core collects them into a :class:`tzbench.catalog.Catalog`, which rejects
duplicate names and resolves targets lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import typer

    from tzbench.specs import DatasetSpec, LoggerSpec, LossSpec, RecognizerSpec, SRModelSpec

PROJECT = "tzbench"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_sr_models() -> list[SRModelSpec]:
    """Return the super-resolution models this plugin provides.

    Each :class:`~tzbench.specs.SRModelSpec` names a ``"module:attr"`` target that, called
    with the validated params as keyword arguments, returns an ``nn.Module`` mapping
    ``(B, C, 16, 64)`` to ``(B, C, 32, 128)`` (scale 2), C = 3 or 4 (RGB + mask).
    """


@hookspec
def register_recognizers() -> list[RecognizerSpec]:
    """Return the text recognizers (judges) this plugin provides.

    The target, called with the validated params, returns an object with
    ``recognize(images) -> list[str]`` for images ``(B, 3, H, W)`` in ``[0, 1]``; it owns its
    preprocessing and exposes the underlying network as ``.net``.
    """


@hookspec
def register_losses() -> list[LossSpec]:
    """Return the training losses this plugin provides.

    The target, called with the validated params, returns an ``nn.Module`` computing
    ``loss(sr, hr) -> scalar tensor`` and exposing its named parts as ``.parts`` (a dict of
    detached scalars from the last call) for logging. A loss that also needs the batch's
    words (a recognizer's cross-entropy) sets ``needs_labels = True`` and is called as
    ``loss(sr, hr, labels=list_of_str)``.
    """


@hookspec
def register_datasets() -> list[DatasetSpec]:
    """Return the paired LR/HR datasets this plugin provides.

    The target, called with the validated params, returns a provider with
    ``subsets(split) -> list[str]`` and ``load(split, subset) -> torch Dataset`` whose items are
    dicts ``{lr, hr, label, index}``: ``lr``/``hr`` uint8 tensors ``(C, H, W)``.
    """


@hookspec
def register_loggers() -> list[LoggerSpec]:
    """Return the training loggers (experiment trackers) this plugin provides.

    The target, called as ``target(run_dir=<the run folder>, **validated params)``, returns a
    :class:`tzbench.loggers.TrainLogger`: ``on_start(info)``, ``on_step(step, scalars)`` every
    ``log_every`` steps (running means), ``on_validation(step, metrics, sample_grid)`` and
    ``on_end()``. Enabled per run with ``tzbench train ... --logger NAME``; the target is imported
    only then, so a logger's package is needed only by the runs that use it.
    """


@hookspec
def register_commands(app: typer.Typer) -> None:
    """Add sub-commands to the ``tzbench`` command-line app."""
