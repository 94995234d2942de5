"""Using a trained model outside the benchmark: super-resolve your own crops, export to ONNX.

* :func:`load_model` builds an SR model from a tzbench checkpoint (its params come from the
  checkpoint), an official ``.pth`` (strict, ``weights_only`` loading) or, for models with
  nothing to learn (bicubic), from nothing.
* :func:`read_crops` turns image files of any size into the model's input: bicubic to the LR
  size 64x16 (Pillow's filter, as the TextZoom loader), plus the official binary mask as a
  4th channel when the model takes one.
* :func:`super_resolve` runs the model batch by batch; :func:`save_outputs` writes PNGs and
  optional side-by-side sheets (LR bicubic-up | SR, with a judge's reading under each).
* :func:`export_onnx` writes an ONNX graph with a dynamic batch axis and checks that
  onnxruntime reproduces the PyTorch output.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from tzbench.catalog import Catalog
from tzbench.data import LR_SIZE, mask_channel, resize_bicubic
from tzbench.runner.checkpoint import checkpoint_paths, load_sr_checkpoint, read_embedded_meta
from tzbench.runner.context import RunError, SRModelInfo, build_sr_model, check_finite

__all__ = [
    "IMAGE_SUFFIXES",
    "LoadedModel",
    "load_model",
    "expand_inputs",
    "read_crops",
    "super_resolve",
    "to_uint8",
    "save_outputs",
    "side_by_side",
    "export_onnx",
    "OnnxReport",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")


@dataclass
class LoadedModel:
    """An SR model in eval mode with where its weights came from."""

    info: SRModelInfo
    checkpoint: str | None
    source: str  # "tzbench" | "official" | "none"

    @property
    def module(self) -> torch.nn.Module:
        """The ``nn.Module``."""
        return self.info.module


def load_model(catalog: Catalog, name: str, checkpoint: str | Path | None, params: dict[str, Any] | None = None) -> LoadedModel:
    """Build SR model ``name`` with the weights of ``checkpoint``.

    A tzbench checkpoint (``.safetensors`` with tzbench metadata; model or training state)
    brings its own params; anything else is read as an official PyTorch file with
    ``weights_only=True`` and loaded strictly into the model built with ``params``.
    """
    if checkpoint is None:
        info = build_sr_model(catalog, name, params or {})
        if info.trainable:
            raise RunError(f"{name} has learned weights: pass --checkpoint (a tzbench .safetensors or an official .pth)")
        return LoadedModel(info, None, "none")
    path = Path(checkpoint)
    weights, sidecar = checkpoint_paths(path)
    # Only a tzbench name (X.safetensors, X.json or the stem X) means a tzbench checkpoint:
    # X.pth is the official file the user named, even when an X.safetensors sits beside it.
    if path.suffix in (".safetensors", ".json") or (path.suffix == "" and weights.is_file()):
        embedded = read_embedded_meta(weights) if weights.is_file() else None
        meta = embedded
        if meta is None and sidecar.is_file():
            import json

            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        if meta is None:
            raise RunError(f"{weights} carries no tzbench metadata (model name, params); not a tzbench checkpoint")
        info = build_sr_model(catalog, name, {**meta.get("params", {}), **(params or {})})
        load_sr_checkpoint(weights, info.module, name)
        return LoadedModel(info, str(weights), "tzbench")
    from tzbench.weights import load_state_dict_file, load_strict, strip_prefix

    info = build_sr_model(catalog, name, params or {})
    load_strict(info.module, strip_prefix(load_state_dict_file(path)), source=str(path))
    return LoadedModel(info, str(path), "official")


def expand_inputs(inputs: list[str | Path]) -> list[Path]:
    """Image files named directly or found (sorted, non-recursive) in named folders."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"input not found: {p}")
    if not files:
        raise FileNotFoundError(f"no images in {', '.join(map(str, inputs))} ({'/'.join(IMAGE_SUFFIXES)})")
    return files


def read_crops(paths: list[Path], in_channels: int) -> torch.Tensor:
    """Float ``(N, C, 16, 64)`` inputs in [0, 1] from crops of any size.

    Each crop is converted to RGB and resized to 64x16 with Pillow's bicubic filter; with
    ``in_channels == 4`` the official mask (gray > mean -> 0, else 255) of the resized crop is
    appended, exactly as the dataset loader builds it.
    """
    arrays = []
    for p in paths:
        try:
            with Image.open(p) as img:
                rgb = resize_bicubic(img.convert("RGB"), LR_SIZE)
        except Image.DecompressionBombError as exc:  # e.g. 20000 x 20000: not a word crop
            raise RunError(f"{p}: the image is too large to read safely ({exc})") from None
        except OSError as exc:
            raise RunError(f"cannot read image {p}: {exc}") from exc
        arrays.append(np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1))
    u8 = torch.from_numpy(np.stack(arrays))
    if in_channels == 4:
        u8 = torch.cat([u8, mask_channel(u8)], dim=1)
    elif in_channels != 3:
        raise RunError(f"models with {in_channels} input channels are not supported here")
    return u8.float().div_(255)


@torch.inference_mode()
def super_resolve(model: torch.nn.Module, lr: torch.Tensor, device: torch.device, batch_size: int = 64) -> torch.Tensor:
    """SR outputs ``(N, C, 32, 128)`` on the CPU, clipped to [0, 1]."""
    model.eval().to(device)
    outs = [check_finite(model(lr[i:i + batch_size].to(device)).float(), f"the batch at input {i}").clamp_(0, 1).cpu()
            for i in range(0, lr.shape[0], batch_size)]
    return torch.cat(outs)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(N, C>=3, H, W)`` floats in [0, 1] -> ``(N, H, W, 3)`` uint8 (RGB only)."""
    x = images[:, :3].clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def _unique_name(out_dir: Path, stem: str, suffix: str, used: set[str]) -> Path:
    name, k = f"{stem}{suffix}", 1
    while name in used:
        name, k = f"{stem}-{k}{suffix}", k + 1
    used.add(name)
    return out_dir / name


def side_by_side(lr_up: np.ndarray, sr: np.ndarray, lr_text: str | None, sr_text: str | None, zoom: int = 3) -> Image.Image:
    """One sheet: LR bicubic-up | SR (each ``zoom`` x, nearest), the judge's reading below each."""
    h, w = sr.shape[:2]
    W, H = w * zoom, h * zoom
    band = 16 if (lr_text is not None or sr_text is not None) else 0
    sheet = Image.new("RGB", (2 * W + 6, H + band + 14), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for k, (img, title, text) in enumerate(((lr_up, "LR (bicubic)", lr_text), (sr, "SR", sr_text))):
        x = k * (W + 6)
        draw.text((x + 2, 1), title, fill=(200, 200, 200), font=font)
        sheet.paste(Image.fromarray(img).resize((W, H), Image.NEAREST), (x, 14))
        if text is not None:
            draw.text((x + 2, 14 + H + 2), text[:60] or "(empty)", fill=(255, 230, 0), font=font)
    return sheet


def plan_outputs(paths: list[Path], out_dir: Path, sheets: bool = False,
                 overwrite: bool = False) -> list[tuple[Path, Path | None]]:
    """``(image, sheet)`` output paths per input, checked before anything is written.

    An output never replaces an input image (``--out`` being the input folder), whatever
    ``overwrite`` says; an existing file is replaced only with ``overwrite``. Raises
    :class:`~tzbench.runner.context.RunError` naming the first clash.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise RunError(f"--out {out_dir} is a file, not a folder (nothing written)")
    used: set[str] = set()
    plan = [(_unique_name(out_dir, p.stem, ".png", used),
             _unique_name(out_dir, p.stem, "_compare.png", used) if sheets else None) for p in paths]
    inputs = {p.resolve() for p in paths}
    for target in (t for pair in plan for t in pair if t is not None):
        if target.resolve() in inputs:
            raise RunError(f"{target} is one of the input images: choose another --out (nothing written)")
        if target.exists() and not overwrite:
            raise RunError(f"{target} exists already: choose another --out or pass --overwrite (nothing written)")
    return plan


def save_outputs(
    paths: list[Path],
    lr: torch.Tensor,
    sr: torch.Tensor,
    out_dir: Path,
    judge: Any | None = None,
    sheets: bool = False,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Write ``<stem>.png`` (the SR image) and, with ``sheets``, ``<stem>_compare.png``.

    Nothing is written when an output would replace an input or (without ``overwrite``) an
    existing file (:func:`plan_outputs`). Returns one record per input: input, output, sheet
    and the judge's readings of the bicubic-upsampled LR and of the SR image (when a judge is given).
    """
    plan = plan_outputs(paths, out_dir, sheets, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    lr_up = F.interpolate(lr[:, :3], size=sr.shape[-2:], mode="bicubic", align_corners=False).clamp_(0, 1)
    sr_text = lr_text = None
    if judge is not None:
        sr_text = judge.recognize(sr[:, :3])
        lr_text = judge.recognize(lr_up)
    sr_u8, up_u8 = to_uint8(sr), to_uint8(lr_up)
    records = []
    for i, (p, (out, sheet_path)) in enumerate(zip(paths, plan)):
        Image.fromarray(sr_u8[i]).save(out)
        rec: dict[str, Any] = {"input": str(p), "output": str(out)}
        if judge is not None:
            rec["lr_text"], rec["sr_text"] = lr_text[i], sr_text[i]  # type: ignore[index]
        if sheet_path is not None:
            side_by_side(up_u8[i], sr_u8[i], rec.get("lr_text"), rec.get("sr_text")).save(sheet_path)
            rec["sheet"] = str(sheet_path)
        records.append(rec)
    return records


@dataclass
class OnnxReport:
    """What :func:`export_onnx` wrote and how closely onnxruntime reproduces PyTorch."""

    path: Path
    opset: int
    in_channels: int
    max_abs_diff: float
    checked_batch: int


def export_onnx(model: torch.nn.Module, in_channels: int, out: str | Path, opset: int = 17,
                check_batch: int = 3, atol: float = 1e-4, overwrite: bool = False) -> OnnxReport:
    """Export ``model`` (eval mode) to ONNX with a dynamic batch axis and verify it.

    Input ``lr`` is ``(batch, C, 16, 64)``, output ``sr`` ``(batch, C, 32, 128)``. The graph is
    traced with batch 2 and checked with onnxruntime at batch ``check_batch`` on seeded random
    input: a difference above ``atol`` raises RunError (the file is kept for inspection). An
    existing ``out`` is replaced only with ``overwrite``.
    """
    if opset < 17:
        raise RunError(f"opset {opset} is too old: tzbench exports with opset 17 or newer")
    out = Path(out)
    if out.exists() and (out.is_dir() or not overwrite):
        raise RunError(f"--out {out} exists already: choose another file or pass --overwrite (nothing written)")
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    w, h = LR_SIZE
    example = torch.rand(2, in_channels, h, w, generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is the one that needs no extra package (onnxscript).
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buf, opset_version=opset, input_names=["lr"], output_names=["sr"],
                          dynamic_axes={"lr": {0: "batch"}, "sr": {0: "batch"}}, dynamo=False)
    out.write_bytes(buf.getvalue())
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = torch.rand(check_batch, in_channels, h, w, generator=torch.Generator().manual_seed(1))
    if in_channels == 4:
        x[:, 3:] = (x[:, 3:] > 0.5).float()  # a mask channel is binary
    got = sess.run(None, {"lr": x.numpy()})[0]
    with torch.inference_mode():
        want = model(x).float().numpy()
    if got.shape != want.shape:
        raise RunError(f"{out}: onnxruntime output shape {got.shape} differs from PyTorch's {want.shape}")
    diff = float(np.abs(got - want).max())
    if not diff <= atol:
        raise RunError(f"{out}: onnxruntime differs from PyTorch by {diff:.3g} (> {atol})")
    return OnnxReport(out, opset, in_channels, diff, check_batch)
