"""The ``tzbench data`` commands (added through the ``register_commands`` hook): convert, inspect
and generate TextZoom-format LMDBs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

__all__ = ["add_commands"]


def add_commands(app: typer.Typer) -> None:
    """Add the ``data`` group (make-lmdb, export, inspect, synth) to ``app``."""
    data = typer.Typer(help="Convert, inspect and generate TextZoom-format data.", no_args_is_help=True)
    data.command("make-lmdb")(make_lmdb_cmd)
    data.command("export")(export_cmd)
    data.command("inspect")(inspect_cmd)
    data.command("synth")(synth_cmd)
    app.add_typer(data, name="data")


def make_lmdb_cmd(
    images_dir: Path = typer.Argument(..., help="folder the image paths in LABELS are relative to"),
    labels: Path = typer.Argument(..., help="labels.tsv: '<image path>\\t<label>' per line"),
    out: Path = typer.Argument(..., help="LMDB folder to create"),
    lr_dir: Optional[Path] = typer.Option(None, "--lr-dir", help="folder of LR images with the same relative names"),
    lr_from: str = typer.Option("medium", "--lr-from", help="without --lr-dir: bicubic, easy, medium or hard"),
    seed: int = typer.Option(0, help="seed of the made LR"),
) -> None:
    """Write a TextZoom LMDB from images + labels (image bytes stored unchanged)."""
    from tzbench.data.convert import make_lmdb

    n = make_lmdb(images_dir, labels, out, lr_dir=lr_dir, lr_from=lr_from, seed=seed)
    typer.echo(f"wrote {n} samples to {out}")


def export_cmd(
    lmdb: Path = typer.Argument(..., help="LMDB folder"),
    out_dir: Path = typer.Argument(..., help="output folder (hr/, lr/, labels.tsv)"),
) -> None:
    """Export an LMDB to image files + labels.tsv (raw bytes, byte-identical)."""
    from tzbench.data.convert import export_lmdb

    report = export_lmdb(lmdb, out_dir)
    typer.echo(f"exported {report.count} samples to {out_dir}")
    for b in report.bad_samples:
        typer.echo(f"BAD {b}", err=True)
    if report.bad_samples:
        raise typer.Exit(1)


def inspect_cmd(
    path: Path = typer.Argument(..., help="LMDB folder, or a folder holding LMDBs (e.g. a TextZoom root)"),
    sheet: Optional[Path] = typer.Option(None, "--sheet", help="write a contact sheet PNG"),
    n: int = typer.Option(64, "--n", help="pairs on the contact sheet"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Decode every sample and report; exits 1 when there are bad samples."""
    import json

    from tzbench.data.convert import inspect_lmdb
    from tzbench.data.textzoom_lmdb import is_lmdb_dir

    targets = [path] if is_lmdb_dir(path) else sorted(p.parent for p in path.rglob("data.mdb"))
    if not targets:
        typer.echo(f"no LMDB (data.mdb) found under {path}", err=True)
        raise typer.Exit(2)
    bad = 0
    for k, target in enumerate(targets):
        out_sheet = sheet
        if sheet is not None and len(targets) > 1:
            out_sheet = sheet.with_name(f"{sheet.stem}-{k}{sheet.suffix or '.png'}")
        report = inspect_lmdb(target, sheet=out_sheet, n=n)
        typer.echo(json.dumps(report.to_dict(), indent=1) if as_json else report.summary())
        bad += len(report.bad_samples)
    if bad:
        raise typer.Exit(1)


def synth_cmd(
    out: Path = typer.Argument(..., help="LMDB folder to create"),
    n: int = typer.Option(1000, "--n", help="number of pairs"),
    subset: str = typer.Option("hard", "--subset", help="easy, medium, hard or mixed"),
    seed: int = typer.Option(0, help="generator seed"),
    font: Optional[List[str]] = typer.Option(None, "--font", help="font file or name glob (repeatable)"),
) -> None:
    """Write a synthetic TextZoom-format LMDB at one difficulty level."""
    from tzbench.data.convert import write_synth_lmdb

    if subset not in ("easy", "medium", "hard", "mixed"):
        raise typer.BadParameter("subset must be easy, medium, hard or mixed")
    count = write_synth_lmdb(out, n, subset=subset, seed=seed, fonts=font or None)
    typer.echo(f"wrote {count} synthetic {subset} pairs to {out}")
