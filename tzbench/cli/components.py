"""``tzbench list`` and ``tzbench plugins``: what the installed plugins provide."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tzbench.catalog import KINDS, find_clashes
from tzbench.cli._common import OutFormat, _catalog, _emit
from tzbench.plugins import plugin_disabled, plugin_failures, plugin_infos
from tzbench.registry import load_registry

__all__ = ["list_", "plugins", "register"]


def register(app: typer.Typer) -> None:
    """Add ``list`` and ``plugins`` to ``app``."""
    app.command("list")(list_)
    app.command()(plugins)


def list_(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="|".join(KINDS))],
    format: Annotated[OutFormat, typer.Option("--format")] = OutFormat.table,
    params: Annotated[bool, typer.Option("--params/--no-params", help="count parameters (builds each model)")] = True,
) -> None:
    """List the components of one kind with their provider."""
    catalog = _catalog(ctx)
    rows = []
    for e in catalog.entries(kind):
        row: dict[str, Any] = {"name": e.spec.name, "plugin": e.plugin, "summary": e.spec.summary, "paper": e.spec.paper}
        if kind == "sr-models":
            row["default_loss"] = e.spec.default_loss or load_registry().default_loss
            row["trainable"] = e.spec.trainable
            row["pretrained"] = ", ".join(w.tag for w in e.spec.pretrained) or "-"
            if params:
                try:
                    m = catalog.create(kind, e.spec.name)
                    row["params"] = f"{sum(p.numel() for p in m.parameters()):,}"
                except Exception as exc:  # noqa: BLE001 - a broken model is reported in its row
                    row["params"] = f"error: {exc}"
        rows.append(row)
    cols = ["name", "plugin", "params", "default_loss", "pretrained", "paper", "summary"] if kind == "sr-models" else [
        "name", "plugin", "paper", "summary"]
    _emit(rows, cols, format, title=kind)


def plugins(
    ctx: typer.Context,
    format: Annotated[OutFormat, typer.Option("--format")] = OutFormat.table,
) -> None:
    """Installed plugins: loaded, failed to load, disabled, or clashing with another plugin's names."""
    pm = ctx.obj["plugin_manager"]()
    clashes: dict[str, list[str]] = {}
    for clash in find_clashes(pm):
        for plugin in clash.plugins:
            clashes.setdefault(plugin, []).append(clash.describe(plugin))
    rows = [{"name": p.name, "module": p.module, "distribution": p.dist, "version": p.version,
             "status": "clash: " + "; ".join(clashes[p.name]) if p.name in clashes else "ok"}
            for p in plugin_infos(pm)]
    rows += [{"name": f.name, "module": f.module, "status": f"failed: {f.error}"} for f in plugin_failures(pm)]
    rows += [{"name": p.name, "module": p.module, "distribution": p.dist, "version": p.version, "status": "disabled"}
             for p in plugin_disabled(pm)]
    _emit(rows, ["name", "module", "distribution", "version", "status"], format, title="plugins")
