"""The ``tzbench`` command line: a thin typer layer over the catalog, runner, store and report."""

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

from tzbench.catalog import KINDS, Catalog
from tzbench.config import ConfigError, EvalConfig, TrainConfig, load_config
from tzbench.db.store import Store, resolve_db_url
from tzbench.plugins import get_plugin_manager, plugin_failures, plugin_infos

__all__ = ["build_app", "main"]

console = Console(stderr=True, soft_wrap=True)
out = Console()


class OutFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"


class Metric(str, Enum):
    accuracy = "accuracy"
    psnr = "psnr"
    ssim = "ssim"


class AmpOpt(str, Enum):
    bf16 = "bf16"
    fp16 = "fp16"
    off = "off"


class Board(str, Enum):
    judges = "judges"
    subsets = "subsets"


class Subset(str, Enum):
    easy = "easy"
    medium = "medium"
    hard = "hard"
    all = "all"


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


def _catalog(ctx: typer.Context) -> Catalog:
    return ctx.obj["catalog_factory"]()


def _store(db: str | None) -> Store:
    store = Store(db)
    store.reap_dead_runs()
    return store


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


def _board_cells(row: dict[str, Any]) -> dict[str, Any]:
    """A leaderboard row for the terminal: accuracies as percent (1 decimal), PSNR 2, SSIM 3."""
    out = dict(row)
    for key, value in row.items():
        if not isinstance(value, float):
            continue
        out[key] = f"{value:.2f}" if key == "psnr" else f"{value:.3f}" if key == "ssim" else f"{100 * value:.1f}"
    return out


def _print_yaml(cfg: Any) -> None:
    """The resolved config as YAML: the format ``--config`` reads back."""
    import yaml

    sys.stdout.write(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def build_app(pm=None) -> typer.Typer:  # noqa: ANN001 - pluggy.PluginManager
    """The typer app; plugins' ``register_commands`` hooks add their sub-commands."""
    app = typer.Typer(add_completion=False, no_args_is_help=True,
                      help="tzbench: scene text image super-resolution benchmark (TextZoom protocol).")
    state: dict[str, Any] = {"pm": pm}

    @app.callback()
    def root(
        ctx: typer.Context,
        disable_plugin: Annotated[Optional[list[str]], typer.Option("--disable-plugin", help="skip a plugin (repeatable)")] = None,
    ) -> None:
        """Global options."""
        def factory() -> Catalog:
            if state["pm"] is None or disable_plugin:
                state["pm"] = get_plugin_manager(disable=disable_plugin or ())
            for f in plugin_failures(state["pm"]):
                console.print(f"[yellow]warning:[/] plugin {f.name!r} ({f.module}) failed to load and was skipped: {f.error}")
            return Catalog(state["pm"])

        ctx.obj = {"catalog_factory": factory, "disabled": list(disable_plugin or [])}

    # ---------------------------------------------------------------- train / eval
    @app.command()
    def train(
        ctx: typer.Context,
        model: Annotated[str, typer.Argument(help="SR model name (tzbench list sr-models)")],
        config: ConfigOpt = None,
        set_: SetOpt = None,
        data: Annotated[Optional[str], typer.Option("--data", help="dataset name (default synth)")] = None,
        lr_source: Annotated[Optional[str], typer.Option(
            "--lr-source", help="LR of the data: the dataset's real/degraded LR, or 'bicubic' (bicubic x2 of HR)")] = None,
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
        compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the model (CUDA only)")] = False,
        protocol: Annotated[Optional[str], typer.Option(
            help="clean (default: select on val with the registry's judge) or legacy (TextZoom: select on the "
                 "test subsets with ASTER)")] = None,
        print_config: Annotated[bool, typer.Option("--print-config", help="print the resolved config and exit")] = False,
        db: DbOpt = None,
        no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
    ) -> None:
        """Train an SR model and record the run (then evaluate its best checkpoint).

        Ctrl-C stops at the end of the current step, writes a checkpoint and marks the run
        interrupted (exit code 130); continue it with --resume RUN_ID.
        """
        from tzbench.runner.distributed import env_world, torchrun_command
        from tzbench.runner.train import resume_config
        from tzbench.runner.train import train as run_train

        main_rank = env_world().is_main
        sets = list(set_ or [])
        if data:
            sets.insert(0, f"data.dataset={data}")
        if lr_source:
            sets.append(f"data.params.lr_source={lr_source}")
        if steps is not None:
            sets.insert(0, f"steps={steps}")
        if protocol:
            sets.insert(0, f"protocol={protocol}")
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
        if recipe_epochs and not any(s.startswith("steps=") for s in sets):
            from tzbench.report.reproduce import steps_for_epochs

            cfg = cfg.model_copy(update={"steps": steps_for_epochs(cfg, int(recipe_epochs), catalog)})
        if print_config:
            _print_yaml(cfg)
            return
        if nproc > 1:
            if env_world().enabled:
                raise ConfigError("--nproc starts torchrun itself; do not combine it with a torchrun launch")
            args = [a for name in ctx.obj.get("disabled", []) for a in ("--disable-plugin", name)]
            args += ["train", model]
            if config is not None:
                args += ["--config", str(config)]
            for item in set_ or []:
                args += ["--set", item]
            if data:
                args += ["--data", data]
            if steps is not None:
                args += ["--steps", str(steps)]
            if recipe is not None:
                args += ["--recipe", recipe]
            if protocol:
                args += ["--protocol", protocol]
            if resume is not None:
                # Resolved here: the workers other than rank 0 never read the database.
                from tzbench.runner.train import resolve_resume

                args += ["--resume", str(resolve_resume(resume, store or _store(db)).resolve())]
            if amp is not None:
                args += ["--amp", amp.value]
            if compile_:
                args += ["--compile"]
            args += ["--db", resolve_db_url(db)]
            if no_progress:
                args += ["--no-progress"]
            raise typer.Exit(_run_torchrun(torchrun_command(nproc, args)))
        if main_rank and store is None:
            store = _store(db)
        result = run_train(cfg, store, catalog, resume=resume, progress=not no_progress,
                           amp=amp.value if amp is not None else None, compile=compile_)
        if not main_rank:
            return
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

    @app.command("eval")
    def eval_(
        ctx: typer.Context,
        model: Annotated[str, typer.Argument(help="SR model name")],
        checkpoint: Annotated[Optional[Path], typer.Option(help="tzbench checkpoint (.safetensors)")] = None,
        pretrained: PretrainedOpt = False,
        judge: Annotated[Optional[list[str]], typer.Option(
            "--judge", help="recognizer (repeatable; default: registry.yaml default_judges)")] = None,
        data: Annotated[Optional[str], typer.Option("--data", help="dataset name (default synth)")] = None,
        lr_source: Annotated[Optional[str], typer.Option(
            "--lr-source", help="LR of the data: the dataset's real/degraded LR, or 'bicubic' (bicubic x2 of HR)")] = None,
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

        sets = list(set_ or [])
        if data:
            sets.insert(0, f"data.dataset={data}")
        if lr_source:
            sets.append(f"data.params.lr_source={lr_source}")
        if protocol:
            sets.insert(0, f"protocol={protocol}")
        if max_samples is not None:
            sets.insert(0, f"max_samples={max_samples}")
        if judge:
            sets.insert(0, "judges=[" + ",".join(judge) + "]")
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
        if print_config:
            _print_yaml(cfg)
            return
        store = _store(db)
        outcome = evaluate(cfg, store, catalog, progress=not no_progress)
        _show_run(store, outcome.run_id)

    # ---------------------------------------------------------------- leaderboard
    @app.command()
    def leaderboard(
        subset: Annotated[Subset, typer.Option(help="subset ranked by")] = Subset.all,
        recognizer: Annotated[Optional[str], typer.Option(
            help="judge whose accuracy ranks the models (default: registry.yaml selection_judge)")] = None,
        metric: Annotated[Metric, typer.Option(help="ranking metric")] = Metric.accuracy,
        benchmark: Annotated[str, typer.Option(help="benchmark name")] = "synth",
        protocol: Annotated[str, typer.Option(help="clean or legacy (never mixed)")] = "clean",
        view: Annotated[Board, typer.Option(
            help="judges: one accuracy column per judge on --subset; subsets: --recognizer's accuracy per subset")
        ] = Board.judges,
        include_incomparable: Annotated[bool, typer.Option("--include-incomparable")] = False,
        format: Annotated[OutFormat, typer.Option("--format")] = OutFormat.table,
        db: DbOpt = None,
    ) -> None:
        """Best comparable eval run per model; every column comes from that same run."""
        store = _store(db)
        if recognizer is None:
            from tzbench.registry import load_registry

            recognizer = load_registry().selection_judge
        rows = store.leaderboard(benchmark, subset.value, recognizer, metric.value, protocol, include_incomparable)
        from tzbench.report.board import board_table

        table, cols = board_table(rows, view.value, subset.value, recognizer)
        if not table and format is OutFormat.table:
            console.print(f"no finished comparable eval runs for benchmark {benchmark!r} ({protocol} protocol) in {store.url}")
        if format is OutFormat.table:  # readable at 80 columns: accuracy in percent, fewer digits
            table = [_board_cells(row) for row in table]
        for row in table:  # exports name what was read, not only the table title
            row.update(benchmark=benchmark, protocol=protocol, subset=subset.value)
        _emit(table, cols, format,
              title=f"{benchmark} · {protocol} · accuracy on {subset.value} · ranked by {metric.value}"
                    f"{'' if metric is not Metric.accuracy else f' ({recognizer})'}")

    # ---------------------------------------------------------------- list / plugins
    @app.command("list")
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
                row["default_loss"] = e.spec.default_loss
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

    @app.command()
    def plugins(ctx: typer.Context) -> None:
        """Installed plugins, and any that failed to load."""
        _catalog(ctx)
        pm = get_plugin_manager()
        rows = [{"name": p.name, "module": p.module, "distribution": p.dist, "version": p.version, "status": "ok"}
                for p in plugin_infos(pm)]
        rows += [{"name": f.name, "module": f.module, "status": f"failed: {f.error}"} for f in plugin_failures(pm)]
        _emit(rows, ["name", "module", "distribution", "version", "status"], OutFormat.table, title="plugins")

    # ---------------------------------------------------------------- runs
    runs_app = typer.Typer(help="Inspect and manage recorded runs.", no_args_is_help=True)
    app.add_typer(runs_app, name="runs")

    @runs_app.command("list")
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

    @runs_app.command("show")
    def runs_show(run_id: int, db: DbOpt = None) -> None:
        """One run's provenance and final results."""
        _show_run(_store(db), run_id, full=True)

    @runs_app.command("delete")
    def runs_delete(run_id: int, yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
                    db: DbOpt = None) -> None:
        """Delete a run and its results."""
        store = _store(db)
        store.get_run(run_id)
        if not yes and not typer.confirm(f"delete run {run_id} and its results?"):
            raise typer.Exit(1)
        store.delete_run(run_id)
        out.print(f"deleted run {run_id}")

    # ---------------------------------------------------------------- sr / export
    @app.command("sr")
    def sr_(
        ctx: typer.Context,
        inputs: Annotated[list[Path], typer.Argument(help="image files or folders of crops (any size)")],
        model: Annotated[str, typer.Option("--model", help="SR model name")],
        out_dir: Annotated[Path, typer.Option("--out", help="output folder")],
        checkpoint: Annotated[Optional[Path], typer.Option(
            help="tzbench .safetensors checkpoint or official .pth (bicubic needs none)")] = None,
        pretrained: PretrainedOpt = False,
        side_by_side: Annotated[bool, typer.Option("--side-by-side",
                                                   help="also write <name>_compare.png: LR bicubic-up | SR")] = False,
        judge: Annotated[Optional[str], typer.Option("--judge", help="recognizer that reads LR-up and SR")] = None,
        batch_size: Annotated[int, typer.Option(min=1)] = 64,
        device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
        format: Annotated[OutFormat, typer.Option("--format", help="how to list the outputs")] = OutFormat.table,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="replace existing outputs (never an input)")] = False,
    ) -> None:
        """Super-resolve your own text crops: each is resized to the model's 64x16 input (bicubic),
        super-resolved, and written as a PNG to --out."""
        from tzbench.runner.context import build_judges, pick_device
        from tzbench.runner.infer import expand_inputs, load_model, plan_outputs, read_crops, save_outputs, super_resolve

        catalog = _catalog(ctx)
        paths = expand_inputs(list(inputs))
        plan_outputs(paths, out_dir, side_by_side, overwrite)  # refuse before any model work
        dev = pick_device(device)
        loaded = load_model(catalog, model, _pretrained_checkpoint(catalog, model, pretrained, checkpoint))
        rec = build_judges(catalog, [judge], dev)[0].recognizer if judge else None
        lr = read_crops(paths, loaded.info.in_channels)
        sr = super_resolve(loaded.module, lr, dev, batch_size)
        records = save_outputs(paths, lr, sr, out_dir, judge=rec, sheets=side_by_side, overwrite=overwrite)
        cols = ["input", "output"] + (["lr_text", "sr_text"] if judge else []) + (["sheet"] if side_by_side else [])
        shown = [{**r, **{k: Path(r[k]).name for k in ("input", "output", "sheet") if k in r}} for r in records]
        _emit(shown, cols, format, title=f"{model} -> {out_dir}")

    export_app = typer.Typer(help="Export trained SR models to other runtimes.", no_args_is_help=True)
    app.add_typer(export_app, name="export")

    @export_app.command("onnx")
    def export_onnx_(
        ctx: typer.Context,
        model: Annotated[str, typer.Option("--model", help="SR model name")],
        out_file: Annotated[Path, typer.Option("--out", help="the .onnx file to write")],
        checkpoint: Annotated[Optional[Path], typer.Option(
            help="tzbench .safetensors checkpoint or official .pth (bicubic needs none)")] = None,
        opset: Annotated[int, typer.Option(min=17, help="ONNX opset (17 or newer)")] = 17,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing --out file")] = False,
    ) -> None:
        """Write an ONNX graph (input lr: batch x C x 16 x 64, dynamic batch) and check it with onnxruntime."""
        from tzbench.runner.infer import export_onnx, load_model

        loaded = load_model(_catalog(ctx), model, checkpoint)
        report = export_onnx(loaded.module, loaded.info.in_channels, out_file, opset=opset, overwrite=overwrite)
        out.print(f"wrote {report.path} (opset {report.opset}, input lr: batch x {report.in_channels} x 16 x 64); "
                  f"onnxruntime matches PyTorch: max |diff| {report.max_abs_diff:.2e} at batch {report.checked_batch}")

    # ---------------------------------------------------------------- weights
    weights_app = typer.Typer(help="Official recognizer weights in the tzbench home folder.", no_args_is_help=True)
    app.add_typer(weights_app, name="weights")

    @weights_app.command("add")
    def weights_add(
        ctx: typer.Context,
        component: Annotated[str, typer.Argument(help="the judge the file is for (tzbench list recognizers)")],
        path: Path,
        replace: Annotated[bool, typer.Option("--replace", help="replace a file already there")] = False,
    ) -> None:
        """Copy a judge's weights file into $TZBENCH_HOME/weights/JUDGE/ and record its sha256.

        The file must load into that judge (strict keys and shapes) before anything is copied,
        and an existing file is replaced only with --replace."""
        from tzbench.home import add_weights, find_weights
        from tzbench.weights import is_safetensors_file

        catalog = _catalog(ctx)
        spec = catalog.spec("recognizers", component)  # unknown names: did-you-mean, exit 2
        names = [w.filename for w in spec.weights]
        if not names:
            raise ConfigError(f"judge {component!r} reads no weights file from the tzbench home folder")
        if not path.is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
        # A trained (safetensors) file takes the trained slot, so it never masquerades as the
        # released file and a released one added later is preferred over it.
        trained = [n for n in names if n.endswith(".safetensors")]
        filename = trained[0] if is_safetensors_file(path) and trained else names[0]
        existing = find_weights(component, filename)
        if existing is not None and not replace:
            raise ConfigError(f"{existing} exists already: pass --replace to replace it (nothing copied)")
        # Loading refuses pickles with code, foreign checkpoints and any key/shape mismatch; a
        # tzbench checkpoint is built with the params it records (e.g. a smaller vitstr).
        params: dict[str, Any] = {"weights": str(path), "device": "cpu"}
        if is_safetensors_file(path):
            from tzbench.runner.checkpoint import read_embedded_meta

            recorded = (read_embedded_meta(path) or {}).get("params")
            params = {**(recorded if isinstance(recorded, dict) else {}), **params}
        catalog.create("recognizers", component, params)
        entry = add_weights(component, path, filename)
        out.print(f"added {entry.path} (sha256 {entry.sha256})")

    @weights_app.command("list")
    def weights_list() -> None:
        """Weights files present in the home folder."""
        from tzbench.home import list_weights, tzbench_home

        rows = [{"component": w.component, "file": str(w.path), "sha256": w.sha256, "bytes": w.size} for w in list_weights()]
        if not rows:
            console.print(f"no weights in {tzbench_home() / 'weights'}")
        _emit(rows, ["component", "file", "sha256", "bytes"], OutFormat.table, title="weights")

    @weights_app.command("ship")
    def weights_ship(
        run_id: Annotated[int, typer.Argument(help="a finished training run")],
        out_file: Annotated[Path, typer.Option("--out", help="the .safetensors file to write (next to a .json)")],
        half: Annotated[bool, typer.Option("--half", help="store floats as float16 (half the size)")] = False,
        db: DbOpt = None,
    ) -> None:
        """Write a training run's best checkpoint (``train`` or ``train-recognizer``) as weights to
        ship in a plugin, with its provenance (dataset, recipe, steps, run id, commit, test scores)."""
        from tzbench.pretrained import export_pretrained

        path, sha, prov = export_pretrained(_store(db), run_id, out_file, half=half)
        out.print(f"wrote {path} (sha256 {sha}); run {prov['run_id']}, {prov['benchmark']}, recipe {prov['recipe']}, "
                  f"step {prov['steps']}, evals {prov['eval_run_ids']}")

    from tzbench.report.commands import add_report_commands

    add_report_commands(app)
    if pm is not None:
        pm.hook.register_commands(app=app)
    return app


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
    for c in ("subset", "recognizer", "metric", "value", "n"):
        table.add_column(c)
    for r in store.results(run_id):
        table.add_row(r.subset, r.recognizer, r.metric, f"{r.value:.4f}", str(r.n_samples))
    out.print(table)


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
        console.print(f"[red]error:[/] {exc}")
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
