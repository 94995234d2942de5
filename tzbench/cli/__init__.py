"""The ``tzbench`` command line: a thin typer layer over the catalog, runner, store and report.

One module per command group (``train``: train/eval, ``runs``, ``components``: list/plugins,
``weights``, ``infer``: sr/export, ``report``: leaderboard/reproduce/report); each command is a
module-level function its module's ``register`` adds to the app. Plugins add theirs through the
``register_commands`` hook. Heavy imports (torch, models) stay inside the commands, so that
``tzbench --help`` and ``tzbench leaderboard`` never import torch.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from tzbench.catalog import Catalog
from tzbench.cli import components, infer, report, runs, train, weights
from tzbench.cli._common import console
from tzbench.plugins import get_plugin_manager, plugin_failures

__all__ = ["build_app", "main"]

DisableOpt = Annotated[Optional[list[str]], typer.Option(
    "--disable-plugin", help="skip a plugin: its name or its distribution's (repeatable)")]


class _Root:
    """The app's callback, holding the plugin manager the app was built with (a
    ``--disable-plugin`` option builds a new one without those plugins)."""

    def __init__(self, pm: Any) -> None:
        self.pm = pm

    def callback(self, ctx: typer.Context, disable_plugin: DisableOpt = None) -> None:
        """Global options."""
        def plugin_manager() -> Any:
            if self.pm is None or disable_plugin:
                self.pm = get_plugin_manager(disable=disable_plugin or ())
            for f in plugin_failures(self.pm):
                console.print(f"[yellow]warning:[/] plugin {f.name!r} ({f.module}) failed to load and was skipped: {f.error}")
            return self.pm

        ctx.obj = {"catalog_factory": lambda: Catalog(plugin_manager()), "plugin_manager": plugin_manager,
                   "disabled": list(disable_plugin or [])}


def build_app(pm=None) -> typer.Typer:  # noqa: ANN001 - pluggy.PluginManager
    """The typer app; plugins' ``register_commands`` hooks add their sub-commands."""
    app = typer.Typer(add_completion=False, no_args_is_help=True,
                      help="tzbench: scene text image super-resolution benchmark (TextZoom protocol).")
    app.callback()(_Root(pm).callback)
    for group in (train, runs, components, infer, weights, report):  # the order `tzbench --help` lists them in
        group.register(app)
    if pm is not None:
        pm.hook.register_commands(app=app)
    return app


def _early_disabled(argv: list[str]) -> list[str]:
    names = []
    for i, a in enumerate(argv):
        if a == "--disable-plugin" and i + 1 < len(argv):
            names.append(argv[i + 1])
        elif a.startswith("--disable-plugin="):
            names.append(a.split("=", 1)[1])
    return names


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one clear line and exit code 2.

    The error classes come from the torch-free :mod:`tzbench.errors`, so commands that need no
    model (``--help``, ``leaderboard``, ``runs``) never import torch.
    """
    from tzbench.errors import TzbenchError

    args = sys.argv[1:] if argv is None else argv
    pm = get_plugin_manager(disable=_early_disabled(args))
    app = build_app(pm)
    user_errors = (TzbenchError, FileNotFoundError)
    try:
        rc = app(args, prog_name="tzbench", standalone_mode=False)
    except user_errors as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")  # a message may hold [brackets]
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        raise SystemExit(130) from None
    except SystemExit:
        raise
    except Exception as exc:  # typer's usage errors
        # typer 0.29 vendors click: its parser raises typer._click's exceptions, not those of a
        # separately installed click (pyproject pins typer to the range this is tested with).
        from typer._click import exceptions as click_exceptions

        if isinstance(exc, click_exceptions.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        if isinstance(exc, typer.Abort):  # a declined confirmation; typer 0.29 defines it outside _click
            raise SystemExit(1) from None
        raise
    if isinstance(rc, int) and rc:
        raise SystemExit(rc)


if __name__ == "__main__":
    main()
