"""docs/plugins.md runs: its code blocks are a plugin package that installs, passes its tests and
shows up in the CLI, so the guide cannot drift from tzbench.

A block whose first line is ``# file: PATH`` is written to PATH in a fresh folder (the package);
the package is installed with pip into a folder of its own; every other ``python`` block runs as
a script and the package's tests run with pytest, both against the installed package. The
``bash`` block's ``tzbench plugins`` and ``tzbench list`` commands run as written; its training
and evaluation commands run in a slow test, on tiny synth data (``--set`` overrides appended).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "plugins.md"
TINY = ["--set", "data.params.n_train=48", "--set", "data.params.n_test=4", "--set", "data.batch_size=8",
        "--set", "data.eval_batch_size=8", "--set", "val_every=2", "--set", "val_max_samples=8"]
TINY_EVAL = ["--set", "data.params.n_test=4", "--set", "data.eval_batch_size=8"]


def _blocks(lang: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return [m.group(1) for m in re.finditer(rf"^```{lang}\n(.*?)^```$", text, flags=re.M | re.S)]


def _files() -> dict[str, str]:
    files = {}
    for block in _blocks("python") + _blocks("toml"):
        first, _, rest = block.partition("\n")
        if first.startswith("# file: "):
            files[first.removeprefix("# file: ").strip()] = rest
    return files


def _commands() -> list[list[str]]:
    (bash,) = _blocks("bash")
    return [shlex.split(line.split("#", 1)[0]) for line in bash.splitlines() if line.startswith("tzbench ")]


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The package written from the blocks, and the environment in which it is installed."""
    pkg = tmp_path_factory.mktemp("tzbench-mymodel")
    for rel, text in _files().items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text, encoding="utf-8")
    (pkg / "src" / "tzbench_mymodel" / "__init__.py").touch()  # the layout lists it; it is empty
    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "--target", str(site), str(pkg)], check=True, capture_output=True, text=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "TZBENCH_NO_PROGRESS": "1", "COLUMNS": "200"}
    return pkg, env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{shlex.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def test_the_doc_has_the_blocks_this_test_runs() -> None:
    assert set(_files()) == {"pyproject.toml", "src/tzbench_mymodel/params.py", "src/tzbench_mymodel/mymodel.py",
                             "src/tzbench_mymodel/plugin.py", "tests/test_contracts.py"}
    assert [c[:2] for c in _commands()] == [["tzbench", "plugins"], ["tzbench", "list"], ["tzbench", "train"],
                                            ["tzbench", "eval"], ["tzbench", "leaderboard"]]


def test_python_blocks_and_the_package_tests_run(package: tuple[Path, dict[str, str]]) -> None:
    pkg, env = package
    scripts = [b for b in _blocks("python") if not b.startswith("# file: ")]
    assert scripts
    for i, script in enumerate(scripts):
        (pkg / f"block{i}.py").write_text(script, encoding="utf-8")
        out = _run([sys.executable, f"block{i}.py"], pkg, env)
        if "print(" in script:
            assert out.stdout.strip(), f"block {i} printed nothing"
    tests = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], pkg, env)
    assert "1 passed" in tests.stdout


def test_plugins_and_list_commands_show_the_plugin(package: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    _, env = package
    plugins, listed = (_run([sys.executable, "-m", "tzbench", *c[1:]], tmp_path, env) for c in _commands()[:2])
    assert re.search(r"mymodel\s*│\s*tzbench_mymodel\.plugin\s*│\s*tzbench-mymodel\s*│\s*0\.1\.0\s*│\s*ok", plugins.stdout)
    assert re.search(r"mymodel\s*│\s*mymodel\s*│\s*[\d,]+\s*│\s*l2", listed.stdout), listed.stdout


@pytest.mark.slow
def test_train_eval_and_leaderboard_commands_run(package: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    _, env = package
    env = {**env, "TZBENCH_DB": f"sqlite:///{tmp_path / 'tz.db'}"}
    train, evaluate, board = _commands()[2:]
    steps = train.index("--steps")
    _run([sys.executable, "-m", "tzbench", *train[1:steps], "--steps", "2", *train[steps + 2:], *TINY], tmp_path, env)
    _run([sys.executable, "-m", "tzbench", *evaluate[1:], *TINY_EVAL], tmp_path, env)
    out = _run([sys.executable, "-m", "tzbench", *board[1:]], tmp_path, env)
    assert "mymodel" in out.stdout
