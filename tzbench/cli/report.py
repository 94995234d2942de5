"""``tzbench reproduce`` and ``tzbench report``: the paper's experiments, and their report from the
recorded runs (heavy imports stay inside the commands)."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from tzbench.cli._common import default_benchmark

__all__ = ["register", "report", "reproduce"]


def register(app: typer.Typer) -> None:
    """Add ``reproduce`` and ``report`` to ``app``."""
    app.command()(reproduce)
    app.command()(report)


def reproduce(
    ctx: typer.Context,
    experiment: Annotated[str, typer.Argument(help="table4 | table3 | syn-vs-real")],
    benchmark: Annotated[Optional[str], typer.Option(
        help="a registry.yaml benchmark (default: its default_benchmark)")] = None,
    budget: Annotated[str, typer.Option(help="smoke | small | cpu | paper")] = "smoke",
    judge: Annotated[Optional[list[str]], typer.Option("--judge", help="judges (default: every available one)")] = None,
    only: Annotated[Optional[list[str]], typer.Option("--only", help="run only these models")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan and exit")] = False,
    report_dir: Annotated[Optional[Path], typer.Option(
        "--report", help="also add the report to the static HTML site in this folder (open its index.html)")] = None,
    db: Annotated[Optional[str], typer.Option("--db")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="redo every job even if the store has it "
                                        "(default: reuse finished runs, resume interrupted ones)")] = False,
) -> None:
    """Run one of the paper's experiments: train + evaluate every model, all recorded."""
    from rich.console import Console

    from tzbench.db.store import Store
    from tzbench.report.reproduce import PlanInterrupted, load_budgets, plan, run_plan

    out = Console()
    benchmark = benchmark or default_benchmark()
    catalog = ctx.obj["catalog_factory"]()
    jobs = plan(experiment, benchmark, budget, catalog, judges=judge, only=only)  # type: ignore[arg-type]
    budgets = load_budgets()
    out.print(f"[bold]{experiment}[/] on {benchmark}, budget {budget}: {budgets[budget].note}")
    for j in jobs:
        steps = j.train.steps if j.train else 0
        span = f"{steps} steps" if steps else f"{budgets[budget].epochs} epochs"
        out.print(f"  {j.label:<24} train {'-' if j.train is None else span} · "
                  f"loss {j.train.loss.name if j.train and j.train.loss else 'default'} · judges {', '.join(j.eval.judges)}"
                  + (f" · note: {'; '.join(j.notes)}" if j.notes else ""))
    if dry_run:
        return
    if report_dir is not None:
        from tzbench.report.figures import require_plotting
        from tzbench.report.html import check_site_dir

        require_plotting()
        check_site_dir(report_dir)
    epochs_to_steps = None
    n_epochs = budgets[budget].epochs
    if n_epochs is not None:
        import torch

        from tzbench.report.reproduce import steps_for_epochs

        epochs_to_steps = functools.partial(steps_for_epochs, epochs=n_epochs, catalog=catalog)
        if not torch.cuda.is_available():
            out.print(f"[yellow]the {budget} budget ({n_epochs} epochs per model) is meant for a GPU and none is "
                      "visible; it will take days on this CPU (Ctrl-C stops it; the same command resumes)[/]")
    store = Store(db)
    t0 = time.perf_counter()

    def done(job, run_id: int) -> None:  # noqa: ANN001
        out.print(f"  done {job.label}: eval run {run_id} ({time.perf_counter() - t0:.0f} s so far)")

    try:
        run_plan(jobs, store, catalog, epochs_to_steps=epochs_to_steps, progress=not no_progress,
                 on_done=done, reuse=not fresh)
    except PlanInterrupted as exc:
        out.print(f"[yellow]{exc}[/]")
        raise typer.Exit(130) from None
    for j in jobs:
        if j.notes:
            out.print(f"  {j.label}: {'; '.join(j.notes)}")
    out.print(f"{experiment} finished in {time.perf_counter() - t0:.0f} s")
    if report_dir is not None:
        from tzbench.report.html import build_site

        site = build_site(store, catalog, benchmark, report_dir, experiment, budget)
        for f in site.report.files:
            out.print(f"wrote {f}")
        out.print(f"report: {site.index} ({len(site.run_pages)} run pages)")


def report(
    ctx: typer.Context,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="folder for the markdown, CSV and PNG files")] = None,
    html_dir: Annotated[Optional[Path], typer.Option(
        "--html", help="static HTML site folder (leaderboard, tables, figures, run pages; open its index.html)")] = None,
    benchmark: Annotated[Optional[str], typer.Option(
        help="benchmark name (default: registry.yaml default_benchmark)")] = None,
    experiment: Annotated[Optional[str], typer.Option(help="only runs of this reproduce experiment")] = None,
    budget: Annotated[Optional[str], typer.Option(help="only runs of this reproduce budget")] = None,
    protocol: Annotated[str, typer.Option(help="clean or legacy")] = "clean",
    grid_samples: Annotated[int, typer.Option(help="samples in the image grid (0: none)")] = 8,
    db: Annotated[Optional[str], typer.Option("--db")] = None,
) -> None:
    """Table 4 (markdown + CSV), Fig. 2 bars and image grids from the recorded runs (--out), or
    all of it as a static HTML site with the leaderboard and a page per run (--html)."""
    from rich.console import Console

    from tzbench.config import ConfigError
    from tzbench.db.store import Store

    if out_dir is None and html_dir is None:
        raise ConfigError("tzbench report: give --out DIR (markdown, CSV, PNG) and/or --html DIR (static site)")
    benchmark = benchmark or default_benchmark()
    catalog = ctx.obj["catalog_factory"]()
    store = Store(db)
    if out_dir is not None:
        from tzbench.report.build import build_report

        files = build_report(store, catalog, benchmark, out_dir, experiment, budget, protocol, grid_samples)
        for f in files.files:
            Console().print(f"wrote {f}")
    if html_dir is not None:
        from tzbench.report.html import build_site

        site = build_site(store, catalog, benchmark, html_dir, experiment, budget, protocol, grid_samples)
        Console().print(f"wrote {len(site.files)} files; open {site.index}")
