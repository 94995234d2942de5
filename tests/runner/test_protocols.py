"""Protocols: ``legacy`` stores TextZoom's per-batch PSNR/SSIM of the unclipped SR output and
selects on the test subsets; ``clean`` stores per-image metrics of the clipped output and
selects on val with the registry's judge. Every run records its protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from runner_helpers import SMALL, cli
from safetensors.torch import load_file

from tzbench.api import get_catalog
from tzbench.db.store import Store
from tzbench.metrics import psnr_legacy_batch, psnr_per_image, ssim_legacy_batch, ssim_per_image
from tzbench.registry import load_registry
from tzbench.runner.checkpoint import save_checkpoint

N_TEST, BATCH = 8, 5  # batches of 5 and 3: per-batch averaging differs from per-image


def _srcnn_checkpoint(folder: Path) -> Path:
    """An untrained SRCNN (seeded): its outputs leave [0, 1], so clipping matters."""
    torch.manual_seed(0)
    model = get_catalog().create("sr-models", "srcnn")
    return save_checkpoint(folder / "srcnn", model.state_dict(), {"sr_model": "srcnn", "params": {}, "kind": "model"})


def _expected(protocol: str, ckpt: Path) -> dict[tuple[str, str], float]:
    catalog = get_catalog()
    model = catalog.create("sr-models", "srcnn").eval()
    model.load_state_dict(load_file(ckpt))
    overshoot = False
    provider = catalog.create("datasets", "synth", {"n_train": 48, "n_test": N_TEST})
    out: dict[tuple[str, str], float] = {}
    for subset in ("easy", "medium", "hard"):
        ds = provider.load("test", subset)
        psnr: list[float] = []
        ssim: list[float] = []
        for start in range(0, N_TEST, BATCH):
            items = [ds[i] for i in range(start, min(N_TEST, start + BATCH))]
            lr = torch.stack([x["lr"] for x in items]).float() / 255
            hr = torch.stack([x["hr"] for x in items]).float() / 255
            with torch.no_grad():
                sr = model(lr).float()
            overshoot |= bool((sr < 0).any() or (sr > 1).any())
            if protocol == "legacy":
                psnr.append(psnr_legacy_batch(sr, hr))
                ssim.append(ssim_legacy_batch(sr, hr))
            else:
                psnr += psnr_per_image(sr, hr, clamp=True).tolist()
                ssim += ssim_per_image(sr, hr, clamp=True).tolist()
        if protocol == "legacy":  # TextZoom: mean of the batch values, 6 decimals
            out[(subset, "psnr")] = round(sum(psnr) / len(psnr), 6)
            out[(subset, "ssim")] = round(sum(ssim) / len(ssim), 6)
        else:
            out[(subset, "psnr")] = sum(psnr) / len(psnr)
            out[(subset, "ssim")] = sum(ssim) / len(ssim)
    assert overshoot
    return out


@pytest.mark.parametrize("protocol", ["legacy", "clean"])
def test_eval_stores_the_protocols_psnr_ssim(protocol: str, tmp_path: Path, db_url: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _srcnn_checkpoint(tmp_path)
    code, _, err = cli(["eval", "srcnn", "--checkpoint", str(ckpt), "--protocol", protocol, "--db", db_url, "--no-progress",
                        "--set", f"data.params.n_test={N_TEST}", "--set", "data.params.n_train=48",
                        "--set", f"data.eval_batch_size={BATCH}"], capsys)
    assert code == 0, err
    store = Store(db_url)
    (run,) = store.list_runs("eval")
    assert run.protocol == protocol and run.config["protocol"] == protocol
    got = {(r.subset, r.metric): r.value for r in store.results(run.id) if r.recognizer == "-"}
    want = _expected(protocol, ckpt)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    # Unclipped per-batch vs clipped per-image: the two protocols really measure different things.
    other = _expected("clean" if protocol == "legacy" else "legacy", ckpt)
    assert any(abs(other[k] - want[k]) > 1e-4 for k in want)


def test_legacy_training_selects_on_test_subsets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    base = ["train", "srcnn", "--steps", "2", *SMALL, "--set", "val_every=2", "--set", "val_max_samples=4",
            "--set", f"out_dir={tmp_path}", "--db", db, "--no-progress", "--protocol", "legacy"]
    # TextZoom's selection judge is ASTER; without its weights the run says what to do.
    code, _, err = cli(base, capsys)
    assert code == 2 and "aster" in err and "weights" in err
    code, _, err = cli([*base, "--set", "selection_judge=ppocr"], capsys)
    assert code == 0, err
    store = Store(db)
    train_run = store.list_runs("train")[0]
    eval_run = store.list_runs("eval")[0]
    assert (train_run.protocol, eval_run.protocol, eval_run.parent_id) == ("legacy", "legacy", train_run.id)
    assert train_run.config["selection"]["sets"] == ["easy", "medium", "hard"]
    val = {(r.subset, r.recognizer, r.metric) for r in store.results(train_run.id, step=2)}
    assert {("easy", "ppocr", "accuracy"), ("hard", "-", "psnr")} <= val
    assert not any(s == "val" for s, _, _ in val)


def test_clean_training_selects_on_val_with_the_registry_judge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    code, _, err = cli(["train", "srcnn", "--steps", "2", *SMALL, "--set", "val_every=2", "--set", "eval_after=false",
                        "--set", f"out_dir={tmp_path}", "--db", db, "--no-progress"], capsys)
    assert code == 0, err
    run = Store(db).list_runs("train")[0]
    judge = load_registry().selection_judge
    assert run.protocol == "clean" and run.config["selection"] == {
        "protocol": "clean", "metric": "accuracy", "sets": ["val"], "judge": judge, "recognizer": judge,
        "aggregate": "single set"}
    assert {(r.subset, r.recognizer, r.metric) for r in Store(db).results(run.id, step=2)} >= {
        ("val", judge, "accuracy"), ("val", "-", "psnr"), ("train", "-", "loss")}


@pytest.mark.parametrize("protocol", ["legacy", "clean"])
def test_selection_validation_gives_the_protocols_psnr_ssim(protocol: str, tmp_path: Path) -> None:
    """Validation accumulates through MetricAccumulator as eval does: on the test subsets
    (legacy selection) it must give the reference numbers that eval is held to above."""
    from tzbench.runner.distributed import DistContext
    from tzbench.runner.selection import Selection, validate

    ckpt = _srcnn_checkpoint(tmp_path)
    catalog = get_catalog()
    model = catalog.create("sr-models", "srcnn")
    model.load_state_dict(load_file(ckpt))
    provider = catalog.create("datasets", "synth", {"n_train": 48, "n_test": N_TEST})
    sets = {s: provider.load("test", s) for s in ("easy", "medium", "hard")}
    v = validate(model, Selection(protocol, None, sets, limit=N_TEST), torch.device("cpu"), BATCH, DistContext())
    want = _expected(protocol, ckpt)
    for (subset, metric), value in want.items():
        got = v[subset][metric]
        assert (got == value) if protocol == "legacy" else got == pytest.approx(value, rel=1e-6), (subset, metric)
        assert v[subset]["n"] == N_TEST and "accuracy" not in v[subset]
