"""What the command modules share: the consoles, option types, output formats and small helpers."""

from __future__ import annotations

import csv
import io
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from tzbench.catalog import Catalog
from tzbench.config import ConfigError
from tzbench.db.store import Store

console = Console(stderr=True, soft_wrap=True)
out = Console()


class OutFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"


DbOpt = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL (default $TZBENCH_DB or sqlite:///tzbench.db)")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="override a config field: PATH=VALUE (repeatable)")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="YAML config file")]
PretrainedOpt = Annotated[bool, typer.Option(
    "--pretrained", help="use the weights the model's plugin ships (tzbench list sr-models shows them)")]


def _pretrained_checkpoint(catalog: Catalog, model: str, pretrained: bool, checkpoint: Path | None) -> Path | None:
    """``--checkpoint``, or with ``--pretrained`` the model's shipped weights file (sha256 checked)."""
    if not pretrained:
        return checkpoint
    if checkpoint is not None:
        raise ConfigError("--pretrained and --checkpoint exclude each other: pass one of them")
    from tzbench.pretrained import pick_pretrained, pretrained_path

    return pretrained_path(pick_pretrained(catalog, model))


def default_benchmark() -> str:
    """registry.yaml's ``default_benchmark``: what ``--benchmark`` means when it is not given."""
    from tzbench.registry import load_registry

    return load_registry().default_benchmark


def _catalog(ctx: typer.Context) -> Catalog:
    return ctx.obj["catalog_factory"]()


def _check_dataset(catalog: Catalog, dataset: str, params: dict[str, Any]) -> None:
    """The dataset's name and params, checked before the store is opened: a typo there leaves no
    database file behind (the subsets need the data itself; the runner checks them before the run row)."""
    catalog.validate_params("datasets", dataset, params)


def _store(db: str | None) -> Store:
    store = Store(db)
    store.reap_dead_runs()
    return store


def _emit(rows: list[dict[str, Any]], columns: list[str], fmt: OutFormat, title: str = "") -> None:
    if fmt is OutFormat.json:
        out.print_json(json.dumps(rows, default=str))
    elif fmt is OutFormat.csv:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        sys.stdout.write(buf.getvalue())
    elif fmt is OutFormat.markdown:
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in rows]
        sys.stdout.write("\n".join(lines) + "\n")
    else:
        table = Table(title=title or None)
        for c in columns:
            table.add_column(c)
        for r in rows:
            table.add_row(*(_fmt(r.get(c)) for c in columns))
        out.print(table)


def _config_yaml(cfg: Any) -> str:
    """A resolved config as YAML: the format ``--config`` reads back."""
    import yaml

    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def _print_yaml(cfg: Any) -> None:
    """The resolved config as YAML on stdout (``--print-config``)."""
    sys.stdout.write(_config_yaml(cfg))


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _show_run(store: Store, run_id: int, full: bool = False) -> None:
    run = store.get_run(run_id)
    out.print(f"[bold]run {run.id}[/] {run.kind} {run.sr_model} · {run.status} · benchmark {run.benchmark} "
              f"v{run.benchmark_version or '-'} · {run.protocol} · comparable={run.comparable}")
    if run.message:
        out.print(f"  note: {run.message}")
    if full:
        for k in ("provider", "checkpoint", "checkpoint_sha256", "parent_id", "n_params", "seed", "device",
                  "git_commit", "tzbench_version", "torch_version", "bad_samples", "started_at", "finished_at"):
            out.print(f"  {k}: {getattr(run, k)}")
        out.print_json(json.dumps(run.config, default=str))
    table = Table(title=f"run {run.id} results")
    for c in ("subset", "judge", "metric", "value", "n"):  # the results.recognizer column: a judge's name
        table.add_column(c)
    for r in store.results(run_id):
        table.add_row(r.subset, r.recognizer, r.metric, f"{r.value:.4f}", str(r.n_samples))
    out.print(table)
