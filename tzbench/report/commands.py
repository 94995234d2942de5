"""CLI commands of the report package: ``tzbench reproduce`` and ``tzbench report``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["add_report_commands"]


def add_report_commands(app: typer.Typer) -> None:
    """Attach ``reproduce`` and ``report`` to the app (their imports stay inside the commands)."""

    @app.command()
    def reproduce(
        ctx: typer.Context,
        experiment: Annotated[str, typer.Argument(help="table4 | table3 | syn-vs-real")],
        benchmark: Annotated[str, typer.Option(help="synth | wild | textzoom")] = "synth",
        budget: Annotated[str, typer.Option(help="smoke | small | paper")] = "smoke",
        judge: Annotated[Optional[list[str]], typer.Option("--judge", help="judges (default: every available one)")] = None,
        only: Annotated[Optional[list[str]], typer.Option("--only", help="run only these models")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan and exit")] = False,
        report_dir: Annotated[Optional[Path], typer.Option("--report", help="also write the report here")] = None,
        db: Annotated[Optional[str], typer.Option("--db")] = None,
        no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
    ) -> None:
        """Run one of the paper's experiments: train + evaluate every model, all recorded."""
        from rich.console import Console

        from tzbench.db.store import Store
        from tzbench.report.reproduce import BUDGETS, plan, run_plan

        out = Console()
        catalog = ctx.obj["catalog_factory"]()
        jobs = plan(experiment, benchmark, budget, catalog, judges=judge, only=only)  # type: ignore[arg-type]
        out.print(f"[bold]{experiment}[/] on {benchmark}, budget {budget}: {BUDGETS[budget].note}")
        for j in jobs:
            steps = j.train.steps if j.train else 0
            out.print(f"  {j.label:<24} train {'-' if j.train is None else f'{steps} steps'} · "
                      f"loss {j.train.loss.name if j.train and j.train.loss else 'default'} · judges {', '.join(j.eval.judges)}"
                      + (f" · note: {'; '.join(j.notes)}" if j.notes else ""))
        if dry_run:
            return
        if budget == "paper":
            raise typer.BadParameter("the paper budget (500 epochs) is documented for GPUs; run it with "
                                     "tzbench train MODEL --set steps=... per model", param_hint="--budget")
        store = Store(db)
        t0 = time.perf_counter()

        def done(job, run_id: int) -> None:  # noqa: ANN001
            out.print(f"  done {job.label}: eval run {run_id} ({time.perf_counter() - t0:.0f} s so far)")

        run_plan(jobs, store, catalog, progress=not no_progress, on_done=done)
        out.print(f"{experiment} finished in {time.perf_counter() - t0:.0f} s")
        if report_dir is not None:
            from tzbench.report.build import build_report

            files = build_report(store, catalog, benchmark, report_dir, experiment, budget)
            for f in files.files:
                out.print(f"wrote {f}")

    @app.command()
    def report(
        ctx: typer.Context,
        out_dir: Annotated[Path, typer.Option("--out", help="output folder")],
        benchmark: Annotated[str, typer.Option(help="benchmark name")] = "synth",
        experiment: Annotated[Optional[str], typer.Option(help="only runs of this reproduce experiment")] = None,
        budget: Annotated[Optional[str], typer.Option(help="only runs of this reproduce budget")] = None,
        protocol: Annotated[str, typer.Option(help="clean or legacy")] = "clean",
        grid_samples: Annotated[int, typer.Option(help="samples in the image grid (0: none)")] = 8,
        db: Annotated[Optional[str], typer.Option("--db")] = None,
    ) -> None:
        """Table 4 (markdown + CSV), Fig. 2 bars and image grids from the recorded runs."""
        from rich.console import Console

        from tzbench.db.store import Store
        from tzbench.report.build import build_report

        catalog = ctx.obj["catalog_factory"]()
        files = build_report(Store(db), catalog, benchmark, out_dir, experiment, budget, protocol, grid_samples)
        for f in files.files:
            Console().print(f"wrote {f}")
