"""The ``tzbench train-recognizer`` command (added through the ``register_commands`` hook)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

__all__ = ["add_commands"]


def add_commands(app: typer.Typer) -> None:
    """Add ``train-recognizer`` to ``app``."""
    app.command("train-recognizer")(train_recognizer_cmd)


def train_recognizer_cmd(
    ctx: typer.Context,
    judge: Annotated[str, typer.Argument(help="judge to train: crnn, moran, aster, vitstr (tzbench list recognizers)")],
    data: Annotated[str, typer.Option("--data", help="comma-separated datasets whose train splits are mixed")] = "synth,wild",
    steps: Annotated[Optional[int], typer.Option(help="optimizer steps (default 3000)")] = None,
    minutes: Annotated[Optional[float], typer.Option(help="wall-clock budget of the training loop")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="peak Adam learning rate")] = None,
    init: Annotated[Optional[Path], typer.Option("--init", help="start from these judge weights (official or tzbench)")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML config file")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="override a config field: PATH=VALUE (repeatable)")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out-dir", help="where run folders go (default runs)")] = None,
    print_config: Annotated[bool, typer.Option("--print-config", help="print the resolved config and exit")] = False,
    db: Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL (default $TZBENCH_DB or sqlite:///tzbench.db)")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="plain progress lines, no bar")] = False,
    log: Annotated[Optional[Path], typer.Option(
        "--log", help="also append the validation/test lines to this file (the run folder has train.log)")] = None,
) -> None:
    """Train a judge (text recognizer) here, record the run and score it on HR and bicubic LR.

    The best checkpoint (by validation accuracy) is a tzbench checkpoint that every judge
    accepts as ``weights=``; e.g. evaluate with it via ``--set`` on a judge or copy it with
    ``tzbench weights add``.
    """
    from rich.console import Console

    from tzbench.config import load_config
    from tzbench.db.store import Store
    from tzbench_recognizers.training import RecognizerTrainConfig, train_recognizer

    out = Console()
    sets = list(set_ or [])
    base: dict[str, Any] = {"judge": {"name": judge, "params": {}},
                            "data": [d.strip() for d in data.split(",") if d.strip()]}
    for key, value in (("steps", steps), ("max_minutes", minutes), ("batch_size", batch_size), ("lr", lr),
                       ("out_dir", str(out_dir) if out_dir else None)):
        if value is not None:
            base[key] = value
    if init is not None:
        base["judge"]["params"]["weights"] = str(init)
    cfg = load_config(RecognizerTrainConfig, base, config, sets)
    catalog = ctx.obj["catalog_factory"]()
    catalog.validate_params("recognizers", cfg.judge.name, cfg.judge.params)
    for d in cfg.data:
        catalog.validate_params("datasets", d, cfg.data_params.get(d, {}))
    if print_config:
        out.print_json(cfg.model_dump_json())
        return
    store = Store(db)
    store.reap_dead_runs()

    def say(line: str) -> None:  # the run prints its lines and keeps them in <run>/train.log
        if log is not None:
            with open(log, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    result = train_recognizer(cfg, store, catalog, progress=not no_progress, log=say)
    out.print(f"run {result.run_id} {result.status}: {result.steps} steps in {result.seconds / 60:.1f} min, "
              f"best val accuracy {result.best_val if result.best_val is not None else float('nan'):.4f}")
    out.print(f"best checkpoint: {result.best_checkpoint}")
    for dname, scores in result.test.items():
        out.print(f"  {dname} test: " + "  ".join(f"{k}={v:.4f}" for k, v in scores.items()))
