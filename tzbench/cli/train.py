"""``tzbench train`` and ``tzbench eval``: resolve the run config, then hand it to the runner."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tzbench.catalog import Catalog
from tzbench.cli._common import ConfigOpt, DbOpt, PretrainedOpt, SetOpt, _catalog, _check_dataset, _config_yaml, _pretrained_checkpoint, _print_yaml, _show_run, _store, console, out
from tzbench.config import ConfigError, EvalConfig, TrainConfig, load_config
from tzbench.db.store import Store, resolve_db_url

__all__ = ["eval_", "register", "train"]


class AmpOpt(str, Enum):
    bf16 = "bf16"
    fp16 = "fp16"
    off = "off"


DataOpt = Annotated[Optional[str], typer.Option("--data", help="dataset name (default synth)")]
LrSourceOpt = Annotated[Optional[str], typer.Option(
    "--lr-source", help="LR of the data: the dataset's real/degraded LR, or 'bicubic' (bicubic x2 of HR)")]


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``eval`` to ``app``."""
    app.command()(train)
    app.command("eval")(eval_)


def _option_sets(set_: list[str] | None, lr_source: str | None, *front: str | None) -> list[str]:
    """The ``--set`` items a command's own options stand for: ``front`` ones before the user's
    ``--set`` items (which override them), ``--lr-source`` after them."""
    return [f for f in front if f] + list(set_ or []) + ([f"data.params.lr_source={lr_source}"] if lr_source else [])


def _recipe_base(model: str, recipe: str) -> tuple[dict[str, Any], int | None]:
    """The raw config of ``model`` under registry.yaml's ``recipe`` (its loss included), and the
    recipe's epochs when it counts in epochs (``paper``): steps follow from the train split."""
    from tzbench.config import recipe_to_config
    from tzbench.registry import load_registry

    try:
        entry = load_registry().recipe(model, recipe)
    except KeyError as exc:  # Registry.recipe names the recipes it has
        raise ConfigError(f"--recipe {recipe}: {exc.args[0]}") from None
    base = recipe_to_config(entry, f"registry.yaml recipes.{recipe}")
    base["recipe"] = recipe
    return base, entry.get("epochs")


def train(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="SR model name (tzbench list sr-models)")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    data: DataOpt = None,
    lr_source: LrSourceOpt = None,
    steps: Annotated[Optional[int], typer.Option(help="training steps")] = None,
    recipe: Annotated[Optional[str], typer.Option(
        "--recipe", help="a registry.yaml training recipe: cpu (converges on a CPU) or paper (TextZoom's); "
                         "--set and the options above override it")] = None,
    resume: Annotated[Optional[str], typer.Option(
        help="continue a run: its id, its folder or its last.safetensors (config comes from the checkpoint; "
             "--set may change steps, val/checkpoint cadence, judges, device)")] = None,
    nproc: Annotated[int, typer.Option("--nproc", min=1,
                                       help="data-parallel processes on this machine (starts torchrun)")] = 1,
    amp: Annotated[Optional[AmpOpt], typer.Option("--amp", help="mixed precision: bf16 (CUDA or CPU), "
                                                  "fp16 (CUDA), off")] = None,
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the model (inductor; on the CPU "
                                                             "it needs g++ or clang++); same as --set compile=true")] = False,
    protocol: Annotated[Optional[str], typer.Option(
        help="clean (default: select on val with the registry's judge) or legacy (TextZoom: select on the "
             "test subsets with ASTER)")] = None,
    print_config: Annotated[bool, typer.Option("--print-config", help="print the resolved config and exit")] = False,
    db: DbOpt = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="plain progress lines, no bar")] = False,
    logger: Annotated[Optional[list[str]], typer.Option(
        "--logger", help="a training logger, e.g. tensorboard (repeatable; tzbench list loggers)")] = None,
    log_every: Annotated[int, typer.Option("--log-every", min=1, help="steps per running-mean loss record")] = 100,
) -> None:
    """Train an SR model and record the run (then evaluate its best checkpoint).

    Ctrl-C stops at the end of the current step, writes a checkpoint and marks the run
    interrupted (exit code 130); continue it with --resume RUN_ID.
    """
    from tzbench.runner.distributed import env_world
    from tzbench.runner.train import train as run_train

    main_rank = env_world().is_main
    sets = _option_sets(set_, lr_source, protocol and f"protocol={protocol}",
                        None if steps is None else f"steps={steps}", data and f"data.dataset={data}",
                        "compile=true" if compile_ else None)
    cfg, catalog, store = _train_config(ctx, model, config, sets, recipe, resume, db, main_rank)
    if print_config:
        _print_yaml(cfg)
        return
    if nproc > 1:
        if env_world().enabled:
            raise ConfigError("--nproc starts torchrun itself; do not combine it with a torchrun launch")
        records = [a for name in logger or [] for a in ("--logger", name)] + ["--log-every", str(log_every)]
        raise typer.Exit(_relaunch(ctx, nproc, cfg, resume, store, db, amp, compile_, no_progress, records))
    if main_rank and store is None:
        store = _store(db)
    result = run_train(cfg, store, catalog, resume=resume, progress=not no_progress,
                       amp=amp.value if amp is not None else None, compile=compile_,
                       log_every=log_every, loggers=logger or [])
    if main_rank:
        _report_train(result, store)


def _train_config(ctx: typer.Context, model: str, config: Path | None, sets: list[str], recipe: str | None,
                  resume: str | None, db: str | None, main_rank: bool) -> tuple[TrainConfig, Catalog, Store | None]:
    """The validated config of ``tzbench train`` (checkpoint or recipe < ``--config`` < options and
    ``--set``), the catalog, and the store a resume had to open."""
    from tzbench.runner.train import resume_config

    store: Store | None = None
    recipe_epochs: int | None = None
    if resume is not None and recipe is not None:
        raise ConfigError("--resume continues a run with its own recipe; drop --recipe")
    if resume is not None:
        # The resumed run continues with its own config; --set changes what may change.
        store = _store(db) if main_rank else Store(db)
        base: dict[str, Any] = resume_config(resume, store)
        if base.get("model", {}).get("name") != model:
            raise ConfigError(f"--resume {resume} is a run of {base.get('model', {}).get('name')!r}, not of {model!r}")
    else:
        base = {"model": {"name": model}}
        if recipe is not None:
            from_recipe, recipe_epochs = _recipe_base(model, recipe)
            base["model"].update(from_recipe.pop("model", {}))
            base.update(from_recipe)
    cfg = load_config(TrainConfig, base, config, sets)
    if cfg.model.name != model:
        raise ConfigError(f"the config names model {cfg.model.name!r} but the command trains {model!r}")
    catalog = _catalog(ctx)
    catalog.validate_params("sr-models", model, cfg.model.params)
    _check_dataset(catalog, cfg.data.dataset, cfg.data.params)
    if recipe_epochs and not any(s.startswith("steps=") for s in sets):
        from tzbench.report.reproduce import steps_for_epochs

        cfg = cfg.model_copy(update={"steps": steps_for_epochs(cfg, int(recipe_epochs), catalog)})
    return cfg, catalog, store


def _relaunch(ctx: typer.Context, nproc: int, cfg: TrainConfig, resume: str | None, store: Store | None,
              db: str | None, amp: AmpOpt | None, compile_: bool, no_progress: bool, records: list[str]) -> int:
    """Run this training in ``nproc`` torchrun workers; returns torchrun's exit code.

    The workers read the config resolved here, written as YAML (what ``--print-config`` shows)
    and passed as their ``--config``: every option, recipe and ``--set`` reaches them as this
    process resolved it, with none of them rebuilt by hand as worker arguments.
    """
    import tempfile

    from tzbench.runner.distributed import torchrun_command

    plugins = [a for name in ctx.obj.get("disabled", []) for a in ("--disable-plugin", name)]
    args = ["--db", resolve_db_url(db)]
    if resume is not None:
        # Resolved here: the workers other than rank 0 never read the database.
        from tzbench.runner.train import resolve_resume

        args += ["--resume", str(resolve_resume(resume, store or _store(db)).resolve())]
    if amp is not None:
        args += ["--amp", amp.value]
    if compile_:
        args += ["--compile"]
    if no_progress:
        args += ["--no-progress"]
    args += records  # --logger / --log-every live in the run row, not in the config
    with tempfile.TemporaryDirectory(prefix="tzbench-nproc-") as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(_config_yaml(cfg), encoding="utf-8")
        return _run_torchrun(torchrun_command(nproc, [*plugins, "train", cfg.model.name, "--config", str(path), *args]))


def _report_train(result: Any, store: Store | None) -> None:
    """Rank 0's summary of a finished (or interrupted: exit 130) training run."""
    out.print(f"run {result.run_id} {result.status} at step {result.step}: best checkpoint {result.best_checkpoint}")
    if result.best_step is not None and result.best_score is not None:
        out.print(f"selected step {result.best_step} (val score {result.best_score:.4f}; ties go to the higher PSNR)")
    if result.message:
        console.print(f"[yellow]{result.message}[/]")
    if result.eval_run_id is not None:
        assert store is not None
        _show_run(store, result.eval_run_id)
    if result.status == "interrupted":
        raise typer.Exit(130)


def _run_torchrun(cmd: list[str]) -> int:
    """Run torchrun in the foreground; returns its exit code.

    Ctrl-C reaches torchrun and its workers from the terminal (same process group), and the
    workers checkpoint before exiting, so this process must not kill them: it ignores SIGINT
    while waiting and passes SIGTERM on.
    """
    import signal
    import subprocess

    console.print(f"[dim]{' '.join(cmd)}[/]")
    proc = subprocess.Popen(cmd)
    prev_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    prev_term = signal.signal(signal.SIGTERM, lambda signum, frame: proc.send_signal(signal.SIGTERM))
    try:
        return proc.wait()
    finally:
        signal.signal(signal.SIGINT, prev_int)
        signal.signal(signal.SIGTERM, prev_term)


def eval_(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="SR model name")],
    checkpoint: Annotated[Optional[Path], typer.Option(help="tzbench checkpoint (.safetensors)")] = None,
    pretrained: PretrainedOpt = False,
    judge: Annotated[Optional[list[str]], typer.Option(
        "--judge", help="judge (repeatable; default: registry.yaml default_judges)")] = None,
    data: DataOpt = None,
    lr_source: LrSourceOpt = None,
    protocol: Annotated[Optional[str], typer.Option(help="clean (default) or legacy")] = None,
    max_samples: Annotated[Optional[int], typer.Option(help="limit each subset (not comparable)")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    print_config: Annotated[bool, typer.Option("--print-config")] = False,
    db: DbOpt = None,
    no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
) -> None:
    """Evaluate an SR model with the judges on the test subsets and record the run."""
    from tzbench.runner.evaluate import evaluate

    sets = _option_sets(set_, lr_source, "judges=[" + ",".join(judge) + "]" if judge else None,
                        None if max_samples is None else f"max_samples={max_samples}",
                        protocol and f"protocol={protocol}", data and f"data.dataset={data}")
    catalog = _catalog(ctx)
    checkpoint = _pretrained_checkpoint(catalog, model, pretrained, checkpoint)
    base: dict[str, Any] = {"model": {"name": model}, "checkpoint": str(checkpoint) if checkpoint else None}
    if pretrained:
        from tzbench.pretrained import pick_pretrained

        base["tags"] = {"pretrained": pick_pretrained(catalog, model).tag}
    cfg = load_config(EvalConfig, base, config, sets)
    catalog.validate_params("sr-models", model, cfg.model.params)
    for j in cfg.judges:
        catalog.entry("recognizers", j)
    _check_dataset(catalog, cfg.data.dataset, cfg.data.params)
    if print_config:
        _print_yaml(cfg)
        return
    store = _store(db)
    outcome = evaluate(cfg, store, catalog, progress=not no_progress)
    _show_run(store, outcome.run_id)
