"""``tzbench sr`` on a user's own crops (any size, mask channel when needed) and
``tzbench export onnx`` (dynamic batch; onnxruntime reproduces PyTorch within 1e-4)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image, ImageDraw
from runner_helpers import cli
from safetensors.torch import load_file

from tzbench.api import get_catalog
from tzbench.data import LR_SIZE, mask_from_rgb
from tzbench.runner.checkpoint import save_checkpoint
from tzbench.runner.infer import read_crops


def _crops(folder: Path) -> list[Path]:
    """Three word crops of different sizes and aspect ratios."""
    folder.mkdir()
    paths = []
    for i, (w, h, word) in enumerate([(200, 50, "HELLO"), (90, 30, "shop"), (41, 13, "ok")]):
        img = Image.new("RGB", (w, h), (230, 220, 40 * i))
        ImageDraw.Draw(img).text((2, h // 4), word, fill=(10, 10, 60))
        paths.append(folder / f"crop{i}.png")
        img.save(paths[-1])
    return paths


def _checkpoint(folder: Path, name: str, params: dict | None = None) -> Path:
    torch.manual_seed(0)
    model = get_catalog().create("sr-models", name, params or {})
    return save_checkpoint(folder / f"{name}-ckpt", model.state_dict(),
                           {"sr_model": name, "params": params or {}, "kind": "model"})


def test_sr_writes_the_models_output_for_any_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = _crops(tmp_path / "in")
    ckpt = _checkpoint(tmp_path, "srcnn")
    out_dir = tmp_path / "out"
    code, out, err = cli(["sr", str(tmp_path / "in"), "--model", "srcnn", "--checkpoint", str(ckpt), "--out",
                          str(out_dir), "--side-by-side", "--judge", "ppocr"], capsys)
    assert code == 0, err
    model = get_catalog().create("sr-models", "srcnn").eval()
    model.load_state_dict(load_file(ckpt))
    for p in paths:
        with Image.open(p) as img:
            lr = np.asarray(img.convert("RGB").resize(LR_SIZE, Image.BICUBIC), dtype=np.float32) / 255
        with torch.no_grad():
            sr = model(torch.from_numpy(lr).permute(2, 0, 1)[None]).clamp(0, 1)
        want = (sr[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        got = np.asarray(Image.open(out_dir / f"{p.stem}.png"))
        assert got.shape == (32, 128, 3)
        assert np.array_equal(got, want), p.name
        sheet = Image.open(out_dir / f"{p.stem}_compare.png")
        assert sheet.width > 2 * 128 * 2 and sheet.height > 32 * 2
    assert "crop0" in out  # the table of outputs and readings


def test_sr_adds_the_official_mask_for_four_channel_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = _crops(tmp_path / "in")
    x = read_crops(paths, 4)
    assert x.shape == (3, 4, 16, 64)
    for i, p in enumerate(paths):
        with Image.open(p) as img:
            rgb = np.asarray(img.convert("RGB").resize(LR_SIZE, Image.BICUBIC))
        assert np.array_equal((x[i, 3].numpy() * 255).round().astype(np.uint8), mask_from_rgb(rgb))
    ckpt = _checkpoint(tmp_path, "srresnet", {"mask": True})
    code, _, err = cli(["sr", *map(str, paths), "--model", "srresnet", "--checkpoint", str(ckpt),
                        "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "out" / "crop2.png").size == (128, 32)


def test_sr_needs_weights_except_for_bicubic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = _crops(tmp_path / "in")
    code, _, err = cli(["sr", str(paths[0]), "--model", "srcnn", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "--checkpoint" in err
    code, _, err = cli(["sr", str(paths[0]), "--model", "bicubic", "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    assert (tmp_path / "o" / "crop0.png").is_file()


def _check_onnx(path: Path, channels: int, model: torch.nn.Module) -> float:
    graph = onnx.load(str(path))
    assert graph.opset_import[0].version >= 17
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(5, channels, 16, 64, generator=torch.Generator().manual_seed(3))
    if channels == 4:
        x[:, 3] = (x[:, 3] > 0.5).float()
    got = sess.run(None, {"lr": x.numpy()})[0]
    with torch.no_grad():
        want = model.eval()(x).numpy()
    assert got.shape == want.shape == (5, channels, 32, 128)
    return float(np.abs(got - want).max())


def test_export_onnx_srcnn_and_bicubic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _checkpoint(tmp_path, "srcnn")
    code, out, err = cli(["export", "onnx", "--model", "srcnn", "--checkpoint", str(ckpt), "--out",
                          str(tmp_path / "srcnn.onnx")], capsys)
    assert code == 0, err
    assert "onnxruntime matches PyTorch" in out
    model = get_catalog().create("sr-models", "srcnn")
    model.load_state_dict(load_file(ckpt))
    assert _check_onnx(tmp_path / "srcnn.onnx", 3, model) <= 1e-4
    code, _, err = cli(["export", "onnx", "--model", "bicubic", "--out", str(tmp_path / "bicubic.onnx")], capsys)
    assert code == 0, err
    assert _check_onnx(tmp_path / "bicubic.onnx", 3, get_catalog().create("sr-models", "bicubic")) <= 1e-4


@pytest.mark.skipif(importlib.util.find_spec("tzbench_tsrn.plugin") is None,
                    reason="the TSRN plugin is not installed yet")
def test_export_onnx_tsrn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _checkpoint(tmp_path, "tsrn")
    code, _, err = cli(["export", "onnx", "--model", "tsrn", "--checkpoint", str(ckpt), "--out",
                        str(tmp_path / "tsrn.onnx")], capsys)
    assert code == 0, err
    model = get_catalog().create("sr-models", "tsrn")
    model.load_state_dict(load_file(ckpt))
    channels = 4 if getattr(model, "in_channels", 4) == 4 else 3
    assert _check_onnx(tmp_path / "tsrn.onnx", channels, model) <= 1e-4


def test_sr_never_overwrites_inputs_or_earlier_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = _crops(tmp_path / "in")
    before = {p: p.read_bytes() for p in paths}
    code, _, err = cli(["sr", str(tmp_path / "in"), "--model", "bicubic", "--out", str(tmp_path / "in")], capsys)
    assert code == 2 and "crop0.png is one of the input images" in err and "nothing written" in err
    code, _, err = cli(["sr", str(tmp_path / "in"), "--model", "bicubic", "--out", str(tmp_path / "in"),
                        "--overwrite"], capsys)
    assert code == 2 and "one of the input images" in err  # --overwrite never covers the inputs
    assert {p: p.read_bytes() for p in paths} == before and sorted(p.name for p in (tmp_path / "in").iterdir()) == [
        "crop0.png", "crop1.png", "crop2.png"]
    out = tmp_path / "out"
    assert cli(["sr", str(tmp_path / "in"), "--model", "bicubic", "--out", str(out)], capsys)[0] == 0
    (out / "crop1.png").write_bytes(b"mine")
    code, _, err = cli(["sr", str(tmp_path / "in"), "--model", "bicubic", "--out", str(out), "--side-by-side"], capsys)
    assert code == 2 and "crop0.png exists already" in err and "--overwrite" in err
    assert (out / "crop1.png").read_bytes() == b"mine" and not (out / "crop0_compare.png").exists()
    assert cli(["sr", str(tmp_path / "in"), "--model", "bicubic", "--out", str(out), "--overwrite"], capsys)[0] == 0
    assert (out / "crop1.png").read_bytes() != b"mine"


def test_a_pth_is_read_as_named_even_beside_a_safetensors(tmp_path: Path) -> None:
    """`--checkpoint X.pth` once loaded a sibling X.safetensors instead (checkpoint_paths maps the name)."""
    from tzbench.runner.infer import load_model

    torch.manual_seed(1)
    official = get_catalog().create("sr-models", "srcnn", {})
    torch.save(official.state_dict(), tmp_path / "w.pth")
    other = _checkpoint(tmp_path, "srcnn")  # srcnn-ckpt.safetensors: different weights
    other.rename(tmp_path / "w.safetensors")
    loaded = load_model(get_catalog(), "srcnn", tmp_path / "w.pth")
    assert loaded.source == "official"
    for k, v in official.state_dict().items():
        assert torch.equal(loaded.module.state_dict()[k], v), k
    assert load_model(get_catalog(), "srcnn", tmp_path / "w").source == "tzbench"  # a bare stem is ours


def test_an_image_too_large_to_decode_safely_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A 20000 x 20000 'crop' was a DecompressionBombError traceback; the limit is Pillow's, made
    small here so the test does not need a gigapixel file."""
    big = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    code, _, err = cli(["sr", str(big), "--model", "bicubic", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "big.png: the image is too large to read safely" in err and "Traceback" not in err


def test_export_onnx_never_replaces_a_file_without_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine.onnx"
    out.write_bytes(b"the user's file")
    code, _, err = cli(["export", "onnx", "--model", "bicubic", "--out", str(out)], capsys)
    assert code == 2 and "exists already" in err and out.read_bytes() == b"the user's file"
    code, _, err = cli(["export", "onnx", "--model", "bicubic", "--out", str(out), "--overwrite"], capsys)
    assert code == 0, err
    assert out.read_bytes() != b"the user's file"
