"""TSRN's shipped weights (cpu recipe on wild): pinned, loadable, with provenance, and better
than bicubic on wild's val crops in PSNR."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import tzbench
from tzbench.api import get_catalog
from tzbench.metrics import psnr_per_image
from tzbench.pretrained import pick_pretrained, pretrained_path
from tzbench.runner.checkpoint import read_checkpoint_meta
from tzbench.runner.context import build_dataset, fetch


def test_shipped_tsrn_weights_have_provenance_and_beat_bicubic_psnr() -> None:
    catalog = get_catalog()
    weights = pick_pretrained(catalog, "tsrn")
    assert weights.tag == "wild-cpu"
    path = pretrained_path(weights)  # sha256 checked against the pin
    assert path.stat().st_size < 20 * 2**20
    prov = read_checkpoint_meta(path)["provenance"]
    assert (prov["benchmark"], prov["recipe"]) == ("wild", "cpu") and prov["git_commit"]
    assert set(prov["test_scores"]["accuracy/ppocr"]) >= {"easy", "medium", "hard"}

    net = tzbench.create_sr_model("tsrn", pretrained=True).eval()
    assert net.stn_at_test  # trained and scored with its STN on at test (cpu recipe)
    provider, _ = build_dataset(catalog, "wild", {}, 4)
    batch = fetch(provider.load("val", None), torch.arange(64))
    with torch.no_grad():
        sr = net(batch["lr"]).clamp(0, 1)
    bicubic = F.interpolate(batch["lr"][:, :3], size=(32, 128), mode="bicubic", align_corners=False).clamp(0, 1)
    ours = float(psnr_per_image(sr, batch["hr"]).mean())
    base = float(psnr_per_image(bicubic, batch["hr"][:, :3]).mean())
    assert ours > base + 0.5, (ours, base)


def test_the_text_prior_weights_are_a_second_tag_with_their_recipe() -> None:
    catalog = get_catalog()
    weights = pick_pretrained(catalog, "tsrn", "wild-cpu-text")
    prov = read_checkpoint_meta(pretrained_path(weights))["provenance"]
    assert (prov["benchmark"], prov["recipe"], prov["steps"]) == ("wild", "cpu_text", 5000)
    assert prov["test_scores"]["accuracy/ppocr"]["all"] > prov["test_scores"]["accuracy/ppocr"]["hard"] > 0
    net = tzbench.create_sr_model("tsrn", pretrained="wild-cpu-text")
    assert net.stn_at_test and sum(p.numel() for p in net.parameters()) > 0


def test_shipped_srcnn_weights_have_provenance_and_beat_bicubic_psnr() -> None:
    """The first shipped baseline: pinned, its recipe and scores recorded, above bicubic in PSNR."""
    catalog = get_catalog()
    weights = pick_pretrained(catalog, "srcnn")
    prov = read_checkpoint_meta(pretrained_path(weights))["provenance"]
    assert (prov["benchmark"], prov["recipe"], prov["run_id"]) == ("wild", "cpu", 4)
    assert prov["test_scores"]["psnr"]["all"] > 22.57  # bicubic on wild test
    net = tzbench.create_sr_model("srcnn", pretrained=True).eval()
    provider, _ = build_dataset(catalog, "wild", {}, 3)
    val = provider.load("val", None)
    batch = fetch(val, torch.arange(len(val)))  # all 279 val pairs: measured +0.41 dB (first 64 alone: -0.2)
    with torch.no_grad():
        sr = net(batch["lr"]).clamp(0, 1)
    bicubic = F.interpolate(batch["lr"], size=(32, 128), mode="bicubic", align_corners=False).clamp(0, 1)
    ours = float(psnr_per_image(sr, batch["hr"]).mean())
    base = float(psnr_per_image(bicubic, batch["hr"]).mean())
    assert ours > base + 0.25, (ours, base)
