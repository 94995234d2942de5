"""``tzbench leaderboard`` and ``tzbench runs``: the recorded runs ranked, listed, shown and deleted."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import typer

from tzbench.cli._common import DbOpt, OutFormat, _emit, _show_run, _store, console, default_benchmark, out

__all__ = ["leaderboard", "register", "runs_delete", "runs_list", "runs_show"]


class Metric(str, Enum):
    accuracy = "accuracy"
    psnr = "psnr"
    ssim = "ssim"


class Board(str, Enum):
    judges = "judges"
    subsets = "subsets"


class Subset(str, Enum):
    easy = "easy"
    medium = "medium"
    hard = "hard"
    all = "all"


def register(app: typer.Typer) -> None:
    """Add ``leaderboard`` and the ``runs`` group (list, show, delete) to ``app``."""
    app.command()(leaderboard)
    runs_app = typer.Typer(help="Inspect and manage recorded runs.", no_args_is_help=True)
    runs_app.command("list")(runs_list)
    runs_app.command("show")(runs_show)
    runs_app.command("delete")(runs_delete)
    app.add_typer(runs_app, name="runs")


def leaderboard(
    subset: Annotated[Subset, typer.Option(help="subset ranked by")] = Subset.all,
    # "judge" is the project's word for a recognizer that reads SR output; --recognizer is its old name.
    judge: Annotated[Optional[str], typer.Option(
        "--judge", "--recognizer",
        help="judge whose accuracy ranks the models (default: registry.yaml selection_judge; "
             "--recognizer: the same option's old name)")] = None,
    metric: Annotated[Metric, typer.Option(help="ranking metric")] = Metric.accuracy,
    benchmark: Annotated[Optional[str], typer.Option(
        help="benchmark name (default: registry.yaml default_benchmark)")] = None,
    protocol: Annotated[str, typer.Option(help="clean or legacy (never mixed)")] = "clean",
    view: Annotated[Board, typer.Option(
        help="judges: one accuracy column per judge on --subset; subsets: --judge's accuracy per subset")
    ] = Board.judges,
    include_incomparable: Annotated[bool, typer.Option("--include-incomparable")] = False,
    format: Annotated[OutFormat, typer.Option("--format")] = OutFormat.table,
    db: DbOpt = None,
) -> None:
    """Best comparable eval run per model; every column comes from that same run."""
    store = _store(db)
    benchmark = benchmark or default_benchmark()
    if judge is None:
        from tzbench.registry import load_registry

        judge = load_registry().selection_judge
    rows = store.leaderboard(benchmark, subset.value, judge, metric.value, protocol, include_incomparable)
    from tzbench.report.board import board_table

    table, cols = board_table(rows, view.value, subset.value, judge)
    if not table and format is OutFormat.table:
        console.print(f"no finished comparable eval runs for benchmark {benchmark!r} ({protocol} protocol) in {store.url}")
    if format is OutFormat.table:  # readable at 80 columns: accuracy in percent, fewer digits
        table = [_board_cells(row) for row in table]
    for row in table:  # exports name what was read, not only the table title
        row.update(benchmark=benchmark, protocol=protocol, subset=subset.value)
    _emit(table, cols, format,
          title=f"{benchmark} · {protocol} · accuracy, psnr, ssim on {subset.value} · ranked by {metric.value}"
                f"{'' if metric is not Metric.accuracy else f' ({judge})'}")


def _board_cells(row: dict[str, Any]) -> dict[str, Any]:
    """A leaderboard row for the terminal: accuracies as percent (1 decimal), PSNR 2, SSIM 3."""
    out = dict(row)
    for key, value in row.items():
        if not isinstance(value, float):
            continue
        out[key] = f"{value:.2f}" if key == "psnr" else f"{value:.3f}" if key == "ssim" else f"{100 * value:.1f}"
    return out


def runs_list(
    kind: Annotated[Optional[str], typer.Option(help="train or eval")] = None,
    model: Annotated[Optional[str], typer.Option(help="SR model")] = None,
    limit: int = 50,
    format: Annotated[OutFormat, typer.Option("--format")] = OutFormat.table,
    db: DbOpt = None,
) -> None:
    """Recent runs (a run whose process died shows as failed)."""
    store = _store(db)
    rows = [
        {"id": r.id, "kind": r.kind, "status": r.status, "model": r.sr_model, "benchmark": r.benchmark,
         "protocol": r.protocol, "comparable": r.comparable, "started": r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
         "checkpoint": r.checkpoint}
        for r in store.list_runs(kind, model, limit)
    ]
    _emit(rows, ["id", "kind", "status", "model", "benchmark", "protocol", "comparable", "started", "checkpoint"],
          format, title="runs")


def runs_show(run_id: int, db: DbOpt = None) -> None:
    """One run's provenance and final results."""
    _show_run(_store(db), run_id, full=True)


def runs_delete(run_id: int, yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
                db: DbOpt = None) -> None:
    """Delete a run and its results."""
    store = _store(db)
    store.get_run(run_id)
    if not yes and not typer.confirm(f"delete run {run_id} and its results?"):
        raise typer.Exit(1)
    store.delete_run(run_id)
    out.print(f"deleted run {run_id}")
