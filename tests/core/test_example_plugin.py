"""A third-party plugin installed with pip appears, trains, is evaluated with its own judge and
dataset, reaches the leaderboard, and passes its own contract tests (tzbench.testing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tzbench-example-plugin"

# Tiny synth data so the whole round trip takes seconds.
SMALL = ["--set", "data.params.n_train=48", "--set", "data.params.n_test=8", "--set", "data.batch_size=8",
         "--set", "data.eval_batch_size=8", "--set", "val_every=2", "--set", "val_max_samples=8"]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "--target", str(target), str(EXAMPLE)],
        check=True, capture_output=True, text=True,
    )
    return target


def _tz(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "TZBENCH_NO_PROGRESS": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "tzbench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_pip_installed_plugin_is_listed_trained_and_ranked(plugin_site: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    listed = _tz(["list", "sr-models", "--format", "json"], plugin_site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["espcn"]["plugin"] == "example"
    plugins = _tz(["plugins"], plugin_site, tmp_path)
    assert "tzbench-example-plugin" in plugins.stdout

    trained = _tz(["train", "espcn", "--steps", "2", "--db", db, *SMALL], plugin_site, tmp_path)
    assert trained.returncode == 0, trained.stderr + trained.stdout
    board = _tz(["leaderboard", "--db", db, "--format", "json", "--include-incomparable"], plugin_site, tmp_path)
    assert board.returncode == 0, board.stderr
    ranked = json.loads(board.stdout)
    assert [r["model"] for r in ranked] == ["espcn"]
    assert 0.0 <= ranked[0]["ppocr"] <= 1.0 and ranked[0]["psnr"] > 5  # one column per judge, on --subset all

    # The eval step of docs/plugins.md: the trained checkpoint, read by the plugin's judge on its dataset.
    (best,) = sorted(tmp_path.glob("runs/*-espcn/best.safetensors"))
    evaluated = _tz(["eval", "espcn", "--checkpoint", str(best), "--data", "bars", "--judge", "column_judge",
                     "--set", "data.params.n_test=4", "--db", db], plugin_site, tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr + evaluated.stdout
    rows = [line.split("│") for line in evaluated.stdout.splitlines() if "column_judge" in line and "accuracy" in line]
    assert [r[1].strip() for r in rows] == ["easy", "medium", "hard", "all"]
    assert all(r[-2].strip() == ("12" if r[1].strip() == "all" else "4") for r in rows)  # n per subset


@pytest.mark.parametrize("name", ["example", "tzbench-example-plugin", "TZBench_Example_Plugin"])
def test_disable_plugin_takes_the_entry_point_or_distribution_name(plugin_site: Path, tmp_path: Path,
                                                                   name: str) -> None:
    listed = _tz(["--disable-plugin", name, "list", "datasets", "--format", "json"], plugin_site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = {r["name"] for r in json.loads(listed.stdout)}
    assert "bars" not in names and "synth" in names


def test_the_plugins_own_contract_tests_pass(plugin_site: Path) -> None:
    """examples/tzbench-example-plugin/tests call the four tzbench.testing checks."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_site), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=EXAMPLE,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 passed" in done.stdout
