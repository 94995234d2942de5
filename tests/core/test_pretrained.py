"""Pretrained weights shipped in a package: located without importing it, sha256-checked,
loaded with the params they were trained with; every misuse names the problem."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import tzbench
from tzbench.api import get_catalog
from tzbench.hookspecs import hookimpl
from tzbench.pretrained import create_pretrained_sr_model, pick_pretrained, pretrained_path
from tzbench.runner.checkpoint import save_checkpoint
from tzbench.specs import PretrainedWeights, SRModelSpec
from tzbench.weights import WeightsError, sha256_file
from tzbench_baselines.params import VDSRParams


def _ship(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sha: str | None = None) -> tuple[object, torch.nn.Module]:
    """A package `shippedpkg` holding VDSR weights (4 layers, 8 features) and a plugin listing them."""
    pkg = tmp_path / "site" / "shippedpkg"
    (pkg / "weights").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('a package holding weights is never imported')\n")
    params = {"num_layers": 4, "num_features": 8}
    net = tzbench.create_sr_model("vdsr", **params)
    file = save_checkpoint(pkg / "weights" / "vdsr-test", net.state_dict(),
                           {"sr_model": "shipped_vdsr", "params": params, "kind": "model", "step": 7})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    weights = PretrainedWeights(tag="test", resource="shippedpkg:weights/vdsr-test.safetensors",
                                sha256=sha or sha256_file(file))

    class Plugin:
        @hookimpl
        def register_sr_models(self) -> list[SRModelSpec]:
            return [SRModelSpec(name="shipped_vdsr", target="tzbench_baselines.vdsr:VDSR", params=VDSRParams,
                                pretrained=(weights,))]

    return Plugin(), net


def test_shipped_weights_load_with_their_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plugin, trained = _ship(tmp_path, monkeypatch)
    catalog = get_catalog(extra_plugins=[plugin])
    assert pick_pretrained(catalog, "shipped_vdsr").tag == "test"
    net = create_pretrained_sr_model(catalog, "shipped_vdsr")
    for k, v in trained.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k
    assert "shippedpkg" not in sys.modules  # located, not imported
    with pytest.raises(WeightsError, match="num_features=16 \\(weights: 8\\)"):
        create_pretrained_sr_model(catalog, "shipped_vdsr", num_features=16)
    with pytest.raises(WeightsError, match="no pretrained weights tagged 'paper'; it has: test"):
        pick_pretrained(catalog, "shipped_vdsr", "paper")


def test_a_file_that_is_not_the_pinned_one_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plugin, _ = _ship(tmp_path, monkeypatch, sha="0" * 64)
    catalog = get_catalog(extra_plugins=[plugin])
    with pytest.raises(WeightsError, match="differs from the pinned 0000"):
        create_pretrained_sr_model(catalog, "shipped_vdsr")


def test_missing_file_and_model_without_weights_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plugin, _ = _ship(tmp_path, monkeypatch)
    catalog = get_catalog(extra_plugins=[plugin])
    (tmp_path / "site" / "shippedpkg" / "weights" / "vdsr-test.safetensors").unlink()
    with pytest.raises(WeightsError, match="vdsr-test.safetensors' not found"):
        pretrained_path(pick_pretrained(catalog, "shipped_vdsr"))
    # EDSR's file (40.7M params) is over the 20 MB that tzbench ships.
    with pytest.raises(WeightsError, match="edsr has no pretrained weights"):
        tzbench.create_sr_model("edsr", pretrained=True)


def test_resource_must_be_a_relative_path_inside_a_package() -> None:
    with pytest.raises(ValueError, match="not of the form"):
        PretrainedWeights(tag="x", resource="pkg:../../etc/passwd", sha256="0" * 64)
    with pytest.raises(ValueError, match="not of the form"):
        PretrainedWeights(tag="x", resource="no-colon.safetensors", sha256="0" * 64)


def test_cli_pretrained_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from tzbench.cli import main

    for argv in (["eval", "edsr", "--pretrained"],
                 ["eval", "srcnn", "--pretrained", "--checkpoint", str(tmp_path / "x.safetensors")]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "edsr has no pretrained weights" in err and "exclude each other" in err


def test_weights_ship_writes_provenance_and_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tzbench.cli import main
    from tzbench.db.store import Store
    from tzbench.runner.checkpoint import load_sr_checkpoint, read_checkpoint_meta

    db = f"sqlite:///{tmp_path / 'tz.db'}"
    main(["train", "srcnn", "--steps", "2", "--db", db, "--no-progress", "--set", "judges=[ppocr]",
          "--set", "data.params.n_train=40", "--set", "data.params.n_test=8", "--set", "data.batch_size=8",
          "--set", "val_every=2", "--set", "val_max_samples=8", "--set", f"out_dir={tmp_path / 'runs'}"])
    (train_run,) = Store(db).list_runs(kind="train")
    out = tmp_path / "ship" / "srcnn-synth.safetensors"
    main(["weights", "ship", str(train_run.id), "--out", str(out), "--db", db])
    prov = read_checkpoint_meta(out)["provenance"]
    assert prov["run_id"] == train_run.id and prov["steps"] == 2 and prov["benchmark"] == "synth"
    assert set(prov["test_scores"]["accuracy/ppocr"]) >= {"easy", "medium", "hard"}
    assert "psnr" in prov["test_scores"] and len(prov["eval_run_ids"]) == 1
    load_sr_checkpoint(out, tzbench.create_sr_model("srcnn"), "srcnn")  # loads strictly
    before = out.read_bytes()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["weights", "ship", str(train_run.id), "--out", str(out), "--db", db])
    assert exc.value.code == 2 and "exists already" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_eval_builds_the_model_with_the_checkpoints_params(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A checkpoint of a non-default VDSR evaluates without repeating its params (it used to
    fail the strict load, and a behaviour param like TSRN's stn_at_test was silently dropped)."""
    from tzbench.cli import main
    from tzbench.db.store import Store

    db = f"sqlite:///{tmp_path / 'tz.db'}"
    small = ["--set", "data.params.n_train=40", "--set", "data.params.n_test=8", "--set", "data.batch_size=8",
             "--set", "val_every=2", "--set", "val_max_samples=8", "--set", "judges=[ppocr]"]
    main(["train", "vdsr", "--steps", "2", "--db", db, "--no-progress", "--set", "eval_after=false",
          "--set", "model.params.num_layers=2", "--set", f"out_dir={tmp_path / 'runs'}", *small])
    (run,) = Store(db).list_runs(kind="train")
    main(["eval", "vdsr", "--checkpoint", run.checkpoint, "--db", db, "--no-progress", "--max-samples", "4",
          "--set", "judges=[ppocr]", "--set", "data.params.n_test=8"])
    (ev,) = Store(db).list_runs(kind="eval")
    assert ev.status == "finished" and ev.config["model_params_used"]["num_layers"] == 2
