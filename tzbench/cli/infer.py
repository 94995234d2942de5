"""``tzbench sr`` and ``tzbench export onnx``: a model applied to a user's own crops, or exported."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tzbench.cli._common import OutFormat, PretrainedOpt, _catalog, _emit, _pretrained_checkpoint, out

__all__ = ["export_onnx_", "register", "sr_"]


def register(app: typer.Typer) -> None:
    """Add ``sr`` and the ``export`` group (onnx) to ``app``."""
    app.command("sr")(sr_)
    export_app = typer.Typer(help="Export trained SR models to other runtimes.", no_args_is_help=True)
    export_app.command("onnx")(export_onnx_)
    app.add_typer(export_app, name="export")


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
    judge: Annotated[Optional[str], typer.Option("--judge", help="judge that reads LR-up and SR")] = None,
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
