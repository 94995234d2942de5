"""TSRN's shipped weights (cpu recipe on wild): pinned, loadable, with provenance, and better
than bicubic on wild's val crops in PSNR."""

from __future__ import annotations

import pytest
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


#: Shipped baselines: (model, its training run in the database that made it, the val PSNR margin over
#: bicubic on all 279 wild val pairs it must keep; measured: srcnn +0.41, srresnet +0.53, lapsrn +0.71,
#: rdn +0.97 dB).
SHIPPED_BASELINES = [("srcnn", 4, 0.25), ("srresnet", 8, 0.3), ("lapsrn", 11, 0.4), ("rdn", 1, 0.7)]


@pytest.mark.parametrize(("model", "run_id", "margin"), SHIPPED_BASELINES)
def test_shipped_baseline_weights_have_provenance_and_beat_bicubic_psnr(model: str, run_id: int,
                                                                       margin: float) -> None:
    """A shipped baseline: pinned, under 20 MB, its recipe and scores recorded, above bicubic in PSNR."""
    catalog = get_catalog()
    weights = pick_pretrained(catalog, model)
    path = pretrained_path(weights)  # sha256 checked against the pin
    assert path.stat().st_size < 20 * 2**20
    prov = read_checkpoint_meta(path)["provenance"]
    assert (prov["benchmark"], prov["recipe"], prov["run_id"]) == ("wild", "cpu", run_id)
    assert prov["test_scores"]["psnr"]["all"] > 22.57  # bicubic on wild test
    net = tzbench.create_sr_model(model, pretrained=True).eval()
    provider, _ = build_dataset(catalog, "wild", {}, net.in_channels)
    val = provider.load("val", None)
    batch = fetch(val, torch.arange(len(val)))  # all 279 val pairs (srcnn on the first 64 alone: -0.2 dB)
    with torch.no_grad():
        sr = net(batch["lr"]).clamp(0, 1)
    bicubic = F.interpolate(batch["lr"][:, :3], size=(32, 128), mode="bicubic", align_corners=False).clamp(0, 1)
    ours = float(psnr_per_image(sr[:, :3], batch["hr"][:, :3]).mean())
    base = float(psnr_per_image(bicubic, batch["hr"][:, :3]).mean())
    assert ours > base + margin, (ours, base)
