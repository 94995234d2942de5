"""CLI commands of the report package: ``tzbench reproduce`` and ``tzbench report``."""

from __future__ import annotations

import typer

__all__ = ["add_report_commands"]


def add_report_commands(app: typer.Typer) -> None:
    """Attach ``reproduce`` and ``report`` to the app (their imports stay inside the commands)."""
