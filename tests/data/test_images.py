"""Image primitives: the mask and resizing match the official code bit for bit (mask.case0)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tzbench.data import collate, mask_channel, mask_from_rgb
from tzbench.data.images import HR_SIZE, LR_SIZE, gray_l, image_format, resize_bicubic, to_chw
from reference_cases import load_case, load_case_json


@pytest.mark.parametrize("tag,size", [("hr", HR_SIZE), ("lr", LR_SIZE)])
def test_mask_pipeline_matches_reference_exactly(tag: str, size: tuple[int, int]) -> None:
    case, meta = load_case("mask"), load_case_json("mask")
    img = Image.fromarray(case["image_uint8_HxWx3"], "RGB")
    rgb = np.asarray(resize_bicubic(img, size))
    np.testing.assert_array_equal(rgb, case[f"resized_rgb_uint8_{tag}"])
    np.testing.assert_array_equal(gray_l(rgb), case[f"gray_L_uint8_{tag}"])
    assert float(gray_l(rgb).mean()) == meta[f"threshold_{tag}"]
    # uint8 storage + collate's /255 reproduces ToTensor's float tensor exactly (max abs diff 0).
    ours = collate([{"lr": to_chw(rgb, mask=True), "hr": to_chw(rgb, mask=True), "label": "", "index": 0}])["hr"][0]
    ref = torch.from_numpy(case[f"tensor_{tag}"])
    assert ours.dtype == torch.float32 and ours.shape == ref.shape
    assert torch.equal(ours, ref)


def test_mask_channel_torch_equals_pil_rule() -> None:
    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, (5, 32, 128, 3), dtype=np.uint8)
    batch = torch.from_numpy(imgs.transpose(0, 3, 1, 2).copy())
    got = mask_channel(batch)
    assert got.shape == (5, 1, 32, 128) and got.dtype == torch.uint8
    for k in range(5):
        pil_gray = np.asarray(Image.fromarray(imgs[k]).convert("L"))
        np.testing.assert_array_equal(gray_l(imgs[k]), pil_gray)
        np.testing.assert_array_equal(got[k, 0].numpy(), mask_from_rgb(imgs[k]))
    # float input in [0, 1] is accepted
    assert torch.equal(mask_channel(batch.float() / 255), got)


def test_collate_shapes_and_values() -> None:
    items = [{"lr": torch.full((3, 16, 64), 255, dtype=torch.uint8), "hr": torch.zeros(3, 32, 128, dtype=torch.uint8),
              "label": f"w{i}", "index": i} for i in range(3)]
    b = collate(items)
    assert b["lr"].shape == (3, 3, 16, 64) and b["hr"].shape == (3, 3, 32, 128)
    assert b["lr"].max() == 1.0 and b["hr"].max() == 0.0
    assert b["label"] == ["w0", "w1", "w2"] and b["index"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError):
        collate([])


def test_image_format_sniffing() -> None:
    assert image_format(b"\x89PNG\r\n\x1a\nxxxx") == "png"
    assert image_format(b"\xff\xd8\xff\xe0") == "jpg"
    assert image_format(b"nonsense") == "bin"
