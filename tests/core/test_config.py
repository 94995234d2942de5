"""Configs: YAML, --set overrides, strictness, errors that name the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tzbench.config import ConfigError, TrainConfig, load_config

BASE = {"model": {"name": "srcnn"}}


def test_defaults_and_overrides() -> None:
    cfg = load_config(TrainConfig, BASE, None, ["optim.lr=5e-4", "data.batch_size=8", "model.params.stn=false",
                                                "judges=[ppocr, crnn]"])
    assert cfg.optim.lr == 5e-4 and cfg.data.batch_size == 8
    assert cfg.model.params == {"stn": False}
    assert cfg.judges == ["ppocr", "crnn"]


def test_yaml_then_set(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("model: {name: srcnn}\nsteps: 7\noptim: {lr: 0.01}\n")
    cfg = load_config(TrainConfig, {}, f, ["steps=9"])
    assert cfg.steps == 9 and cfg.optim.lr == 0.01


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        (["optim.lrr=1"], r"optim has no field 'lrr'"),
        (["nosuch=1"], r"config has no field 'nosuch'"),
        (["steps"], r"expected PATH=VALUE"),
        (["steps=-3"], r"steps"),
        (["data.batch_size=big"], r"data.batch_size"),
    ],
)
def test_bad_overrides_name_the_path(sets: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(TrainConfig, BASE, None, sets)


def test_unknown_yaml_field_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("model: {name: srcnn}\noptimizer: {lr: 1}\n")
    with pytest.raises(ConfigError, match=r"c.yaml.optimizer"):
        load_config(TrainConfig, {}, f)


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(TrainConfig, BASE, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(TrainConfig, BASE, bad)


def test_a_key_given_twice_is_refused_not_last_wins(tmp_path: Path) -> None:
    f = tmp_path / "dup.yaml"
    f.write_text("model: {name: srcnn}\nsteps: 7\noptim:\n  lr: 0.01\n  lr: 0.1\n")
    with pytest.raises(ConfigError, match=r"(?s)dup.yaml is not valid YAML.*key 'lr' appears twice.*line 5"):
        load_config(TrainConfig, {}, f)
    f.write_text("model: {name: srcnn}\nsteps: 7\nsteps: 8\n")
    with pytest.raises(ConfigError, match="key 'steps' appears twice"):
        load_config(TrainConfig, {}, f)


def test_checkpoints_are_as_readable_as_the_database(tmp_path: Path) -> None:
    """mkstemp made checkpoints 0600 while the DB beside them is 0644 (umask 022)."""
    import os

    import torch

    from tzbench.runner.checkpoint import save_checkpoint

    old = os.umask(0o022)
    try:
        w = save_checkpoint(tmp_path / "c", {"w": torch.zeros(2)}, {"kind": "model"})
    finally:
        os.umask(old)
    assert w.stat().st_mode & 0o777 == 0o644 and w.with_suffix(".json").stat().st_mode & 0o777 == 0o644


def test_recipes_resolve_per_model_with_their_loss() -> None:
    from tzbench.config import recipe_to_config
    from tzbench.registry import load_registry

    reg = load_registry()
    assert {"paper", "cpu"} <= set(reg.recipes)
    paper = reg.recipe("tsrn", "paper")
    assert (paper["loss"], paper["loss_scale"], paper["grad_clip"], paper["epochs"]) == ("tsrn_loss", 100, 0.25, 500)
    cpu = recipe_to_config(reg.recipe("lapsrn", "cpu"))
    assert cpu["optim"]["schedule"] == "cosine" and cpu["optim"]["ema_decay"] > 0
    assert cpu["loss"] == {"name": "charbonnier", "params": {}}
    with pytest.raises(KeyError, match="unknown recipe"):
        reg.recipe("tsrn", "gpu")
    with pytest.raises(ConfigError, match="unknown recipe key 'lrr'"):
        recipe_to_config({"lrr": 1e-3}, "recipes.mine")


def test_train_recipe_option_builds_and_records_the_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from tzbench.cli import main

    main(["train", "srcnn", "--recipe", "cpu", "--set", "steps=7", "--print-config"])
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["recipe"] == "cpu" and cfg["steps"] == 7  # --set wins over the recipe
    assert cfg["optim"]["schedule"] == "cosine" and cfg["loss"]["name"] == "l2"
    with pytest.raises(SystemExit) as exc:
        main(["train", "srcnn", "--recipe", "gpu", "--print-config"])
    assert exc.value.code == 2 and "unknown recipe" in capsys.readouterr().err


def test_a_run_folder_holds_a_config_that_reruns_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """config.yaml in the run folder, and --print-config's YAML, read back through --config."""
    import yaml

    from tzbench.cli import main
    from tzbench.db.store import Store

    db = f"sqlite:///{tmp_path / 'tz.db'}"
    small = ["--set", "data.params.n_train=40", "--set", "data.params.n_test=8", "--set", "data.batch_size=8",
             "--set", "val_every=2", "--set", "val_max_samples=4", "--set", "selection_judge=psnr",
             "--set", "eval_after=false", "--set", f"out_dir={tmp_path / 'runs'}"]
    main(["train", "srcnn", "--steps", "2", "--db", db, "--no-progress", "--set", "optim.lr=0.002", *small])
    (run,) = Store(db).list_runs(kind="train")
    saved = Path(run.config["run_dir"]) / "config.yaml"
    capsys.readouterr()
    main(["train", "srcnn", "--config", str(saved), "--print-config"])
    again = yaml.safe_load(capsys.readouterr().out)
    assert again == yaml.safe_load(saved.read_text()) and again["optim"]["lr"] == 0.002 and again["steps"] == 2
    assert load_config(TrainConfig, {"model": {"name": "srcnn"}}, saved).model_dump(mode="json") == again
