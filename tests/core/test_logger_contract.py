"""The ``register_loggers`` hook: every registered logger keeps the TrainLogger contract, and the
catalog treats loggers like every other component (duplicates, did-you-mean, missing packages)."""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

import tzbench
from tzbench import hookimpl
from tzbench.api import get_catalog
from tzbench.catalog import Catalog, CatalogError
from tzbench.cli import main
from tzbench.config import DataConfig, TrainConfig
from tzbench.db.store import Store
from tzbench.errors import RunError
from tzbench.loggers import TrainLogger, build_loggers
from tzbench.plugins import get_plugin_manager
from tzbench.runner.records import sample_grid
from tzbench.runner.train import train
from tzbench.specs import LoggerSpec

_CATALOG = tzbench.get_catalog()
NAMES = _CATALOG.names("loggers")


def test_tensorboard_is_registered() -> None:
    assert "tensorboard" in NAMES
    assert _CATALOG.entry("loggers", "tensorboard").plugin == "loggers"


def test_listing_loggers_imports_none() -> None:
    # A spec's target is imported only when a run enables the logger (a fresh interpreter: this
    # one may have run the tensorboard test).
    code = ("import sys, tzbench; c = tzbench.get_catalog(); c.spec('loggers', 'tensorboard'); "
            "print(any(m.startswith(('tensorboard', 'tzbench_loggers.tensorboard')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("name", NAMES)
def test_logger_contract(name: str, tmp_path: Path) -> None:
    [(got, lg)] = build_loggers(_CATALOG, [name], tmp_path)
    assert got == name and isinstance(lg, TrainLogger)
    lg.on_start({"run_id": 1, "run_dir": str(tmp_path), "model": "srcnn", "steps": 2, "start_step": 0,
                 "config": {}})
    lg.on_step(1, {"loss": 0.5, "loss/mse": 0.5, "lr": 1e-3, "s_per_step": 0.1})
    grid = sample_grid(torch.rand(2, 3, 16, 64), torch.rand(2, 3, 32, 128), torch.rand(2, 3, 32, 128))
    assert grid.shape[0] == 3 and 0.0 <= float(grid.min()) and float(grid.max()) <= 1.0
    lg.on_validation(2, {"val": {"n": 2.0, "psnr": 20.0, "ssim": 0.5}}, grid)
    lg.on_validation(2, {"val": {"n": 2.0, "psnr": 20.0, "ssim": 0.5}}, None)  # no grid is allowed
    lg.on_end()
    assert any(p.is_file() for p in tmp_path.rglob("*")), f"logger {name!r} wrote nothing under the run folder"


def _plugin(name: str, spec_name: str, target: str = "test_logger_contract:Failing",
            install: str = "") -> types.ModuleType:
    mod = types.ModuleType(name)

    @hookimpl
    def register_loggers() -> list[LoggerSpec]:
        return [LoggerSpec(name=spec_name, target=target, install=install)]

    mod.register_loggers = register_loggers  # type: ignore[attr-defined]
    return mod


def test_duplicate_logger_names_name_both_plugins() -> None:
    pm = get_plugin_manager(use_entry_points=False, extra_plugins=[_plugin("plug_a", "dup"), _plugin("plug_b", "dup")])
    with pytest.raises(CatalogError, match="duplicate logger name 'dup'.*plug_a.*plug_b"):
        Catalog(pm)


def _cfg(tmp_path: Path) -> TrainConfig:
    return TrainConfig(model={"name": "srcnn"}, data=DataConfig(params={"n_train": 40, "n_test": 8}, batch_size=8,
                                                                eval_batch_size=8),
                       steps=2, val_every=2, val_max_samples=4, selection_judge="psnr", eval_after=False,
                       out_dir=str(tmp_path / "runs"))


def test_unknown_logger_is_one_line_with_did_you_mean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    with pytest.raises(SystemExit) as exc:
        main(["train", "srcnn", "--steps", "2", "--db", db, "--logger", "tensorbord"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown logger 'tensorbord'. Did you mean 'tensorboard'?" in err
    assert Store(db).list_runs() == []  # refused before the run row


def test_missing_package_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    # As without `pip install tensorboard`: the package cannot be imported.
    for mod in [m for m in sys.modules if m == "tzbench_loggers.tensorboard" or m.startswith("torch.utils.tensorboard")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    with pytest.raises(SystemExit) as exc:
        main(["train", "srcnn", "--steps", "2", "--db", db, "--logger", "tensorboard"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "logger 'tensorboard' cannot be loaded" in err and "pip install 'tzbench[tensorboard]'" in err
    assert Store(db).list_runs() == []


class Failing:
    """A logger whose on_step raises: the run must finish without it, saying so."""

    calls: ClassVar[list[str]] = []

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def on_start(self, info: Mapping[str, Any]) -> None:
        Failing.calls.append("start")

    def on_step(self, step: int, scalars: Mapping[str, float]) -> None:
        Failing.calls.append("step")
        raise ValueError("tracker server unreachable")

    def on_validation(self, step: int, metrics: Mapping[str, Mapping[str, float]], sample_grid: Any) -> None:
        Failing.calls.append("validation")

    def on_end(self) -> None:
        Failing.calls.append("end")


def test_a_failing_logger_is_dropped_not_fatal(tmp_path: Path) -> None:
    Failing.calls.clear()
    store = Store(f"sqlite:///{tmp_path / 'tz.db'}")
    out = train(_cfg(tmp_path), store, get_catalog(extra_plugins=[_plugin("plug_f", "failing")]), progress=False,
                log_every=1, loggers=["failing"])
    assert out.status == "finished" and out.step == 2
    assert Failing.calls == ["start", "step"]  # dropped after its first failure
    log = (out.run_dir / "train.log").read_text()
    assert "logger 'failing' failed in on_step (ValueError: tracker server unreachable)" in log


def test_a_missing_third_party_package_uses_its_install_hint(tmp_path: Path) -> None:
    catalog = get_catalog(extra_plugins=[_plugin("plug_m", "absent", "tzbench_no_such_package.mod:Logger",
                                                 "pip install tzbench-absent")])
    store = Store(f"sqlite:///{tmp_path / 'tz.db'}")
    with pytest.raises(RunError, match=r"logger 'absent' cannot be loaded .*: pip install tzbench-absent"):
        train(_cfg(tmp_path), store, catalog, progress=False, loggers=["absent"])
    assert store.list_runs() == []
