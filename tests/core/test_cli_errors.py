"""CLI: listing, plugins, and clear errors for bad input (exit code 2, one line naming the problem)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tzbench.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_list_and_plugins(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["list", "sr-models", "--format", "csv"], capsys)
    assert code == 0
    assert "srcnn,baselines,20099," in out.replace('"', "").replace("20,099", "20099")
    code, out, _ = run(["list", "recognizers", "--format", "csv"], capsys)
    assert code == 0 and "ppocr" in out
    code, out, _ = run(["plugins"], capsys)
    assert code == 0 and "baselines" in out


def test_unknown_model_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["train", "srcnnn", "--print-config"], capsys)
    assert code == 2 and "unknown sr model 'srcnnn'" in err and "srcnn" in err


def test_bad_set_path(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["train", "srcnn", "--set", "optim.lrr=1", "--print-config"], capsys)
    assert code == 2 and "optim has no field 'lrr'" in err


def test_bad_model_param_names_field(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["train", "srcnn", "--set", "model.params.nosuch=1", "--print-config"], capsys)
    assert code == 2 and "srcnn.nosuch" in err


def test_print_config_shows_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["train", "srcnn", "--set", "optim.lr=0.0005", "--steps", "3", "--print-config"], capsys)
    assert code == 0 and "  lr: 0.0005\n" in out and "\nsteps: 3\n" in out


def test_unwritable_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["runs", "list", "--db", f"sqlite:///{tmp_path / 'nope' / 'x.db'}"], capsys)
    assert code == 2 and "does not exist" in err


def test_unknown_list_kind(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["list", "widgets"], capsys)
    assert code == 2 and "unknown component kind 'widgets'" in err


def test_eval_trainable_without_checkpoint(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["eval", "srcnn", "--db", db_url], capsys)
    assert code == 2 and "--checkpoint" in err


def test_judge_without_weights_says_where(db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(["eval", "bicubic", "--judge", "crnn", "--db", db_url, "--max-samples", "2"], capsys)
    assert code == 2 and "crnn.pth" in err and "tzbench weights add crnn" in err


def test_runs_show_missing(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["runs", "show", "42", "--db", db_url], capsys)
    assert code == 2 and "no run with id 42" in err


def test_lr_source_option_reaches_the_dataset(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["train", "srcnn", "--lr-source", "bicubic", "--print-config"], capsys)
    assert code == 0 and "lr_source: bicubic" in out
    code, _, err = run(["eval", "bicubic", "--lr-source", "nearest", "--max-samples", "2", "--db", db_url], capsys)
    assert code == 2 and "lr_source" in err


@pytest.mark.parametrize("argv", [["trian", "srcnn"], ["train", "srcnn", "--stepz", "3"], ["eval"]])
def test_usage_errors_are_short_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # typer's vendored click raises its own exception classes; a catch of another click's lets
    # them through as a traceback with exit 1.
    code, out, err = run(argv, capsys)
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    assert "Usage:" in out + err


def test_train_checks_its_eval_judges_before_training(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Without the pre-flight, the missing crnn.pth surfaced only in the eval after training.
    from tzbench.db.store import Store

    code, _, err = run(["train", "srcnn", "--set", "judges=[crnn]", "--steps", "100000", "--db", db_url], capsys)
    assert code == 2 and "crnn.pth" in err
    assert Store(db_url).list_runs() == []


def test_reproduce_report_checks_matplotlib_before_training(db_url: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from tzbench.db.store import Store

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    code, _, err = run(["reproduce", "table4", "--budget", "smoke", "--report", str(tmp_path / "out"),
                        "--db", db_url, "--no-progress"], capsys)
    assert code == 2 and "matplotlib" in err
    assert Store(db_url).list_runs() == []


def test_bad_device_subset_db_and_lmdb_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Each of these printed a traceback: a device torch does not know, a subset the dataset
    lacks, a DB file that is not SQLite, a data.mdb of random bytes."""
    from tzbench.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notsqlite.db").write_text("hello world" * 100)
    (tmp_path / "lmdbx").mkdir()
    (tmp_path / "lmdbx" / "data.mdb").write_bytes(bytes(range(256)) * 16)
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    cases = [
        (["eval", "bicubic", "--set", "device=bogus", "--db", db, "--set", "judges=[ppocr]"], "device 'bogus'"),
        (["eval", "bicubic", "--set", "data.subsets=[hardd]", "--db", db, "--set", "judges=[ppocr]"],
         "data.subsets: dataset 'synth' has no test subset 'hardd' (it has easy, medium, hard)"),
        (["runs", "list", "--db", f"sqlite:///{tmp_path / 'notsqlite.db'}"], "file is not a database"),
        (["data", "inspect", str(tmp_path / "lmdbx")], "lmdbx: not a readable LMDB"),
    ]
    for argv, expected in cases:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and expected in err and "Traceback" not in err, (argv, err)
    from tzbench.db.store import Store

    assert Store(db).list_runs() == []  # the typo recorded no run
    assert (tmp_path / "notsqlite.db").read_text() == "hello world" * 100


def test_help_and_leaderboard_import_no_torch(tmp_path: Path) -> None:
    """`tzbench --help` took 2.2 s here, most of it importing torch for error classes (0.56 s now)."""
    import subprocess
    import sys

    code = ("import sys\nfrom tzbench.cli import main\n"
            "for argv in (['--help'], ['leaderboard', '--db', sys.argv[1]], ['runs', 'list', '--db', sys.argv[1]]):\n"
            "    try:\n        main(argv)\n    except SystemExit as exc:\n        assert not exc.code, (argv, exc.code)\n"
            "print('torch' in sys.modules)\n")
    res = subprocess.run([sys.executable, "-c", code, f"sqlite:///{tmp_path / 'tz.db'}"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "False"


def test_every_user_error_shares_one_torch_free_base() -> None:
    from tzbench import errors
    from tzbench.catalog import CatalogError, UnknownComponentError
    from tzbench.config import ConfigError
    from tzbench.data import DatasetError
    from tzbench.db.store import StoreError
    from tzbench.runner.checkpoint import CheckpointError
    from tzbench.runner.context import RunError
    from tzbench.weights import WeightsError

    for cls in (CatalogError, UnknownComponentError, ConfigError, DatasetError, StoreError, CheckpointError, RunError,
                WeightsError):
        assert issubclass(cls, errors.TzbenchError), cls
    assert CatalogError is errors.CatalogError and RunError is errors.RunError  # re-exported, not copied


def _cli_with(monkeypatch: pytest.MonkeyPatch, *plugins: object) -> None:
    """Make ``main`` load ``plugins`` in-process besides the installed ones."""
    import tzbench.cli
    from tzbench.plugins import get_plugin_manager

    monkeypatch.setattr(tzbench.cli, "get_plugin_manager",
                        lambda disable=(): get_plugin_manager(disable=disable, extra_plugins=list(plugins)))


def _sr_plugin(name: str, model: str, target: str = "torch.nn:Identity") -> object:
    import types

    from pydantic import BaseModel, ConfigDict

    from tzbench import SRModelSpec, hookimpl

    class NoParams(BaseModel):
        model_config = ConfigDict(extra="forbid")

    mod = types.ModuleType(name)

    @hookimpl
    def register_sr_models() -> list[SRModelSpec]:
        return [SRModelSpec(name=model, target=target, params=NoParams, trainable=False)]

    mod.register_sr_models = register_sr_models  # type: ignore[attr-defined]
    return mod


def test_component_whose_module_fails_to_import_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # The ImportError of the model's module used to escape main() as a traceback with exit 1.
    _cli_with(monkeypatch, _sr_plugin("brokenmodel", "brokenmodel", "tzbench_no_such_module_xyz.net:Net"))
    code, _, err = run(["export", "onnx", "--model", "brokenmodel", "--out", str(tmp_path / "m.onnx")], capsys)
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "tzbench_no_such_module_xyz" in err and "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists()
    # Listing still works, the broken model's row says why.
    code, out, _ = run(["list", "sr-models", "--format", "csv"], capsys)
    assert code == 0 and "brokenmodel" in out and "tzbench_no_such_module_xyz" in out


def test_plugins_lists_clashing_plugins_and_marks_the_clash(capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Building the catalog refuses the duplicate name; `tzbench plugins` is where a user looks
    # for the cause, so it lists every plugin and names the clash instead of failing.
    _cli_with(monkeypatch, _sr_plugin("plug_a", "dup"), _sr_plugin("plug_b", "dup"))
    code, out, err = run(["plugins", "--format", "csv"], capsys)
    assert code == 0, err
    rows = {line.split(",")[0]: line for line in out.splitlines()[1:]}
    assert {"baselines", "tsrn", "recognizers", "plug_a", "plug_b"} <= set(rows)
    assert "clash: sr model 'dup' also in plug_b" in rows["plug_a"]
    assert "clash: sr model 'dup' also in plug_a" in rows["plug_b"]
    assert rows["baselines"].endswith(",ok")
    code, _, err = run(["list", "sr-models"], capsys)
    assert code == 2 and "duplicate sr model name 'dup'" in err


def test_plugins_shows_disabled_plugins_as_disabled(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["--disable-plugin", "baselines", "plugins", "--format", "csv"], capsys)
    assert code == 0, err
    rows = {line.split(",")[0]: line for line in out.splitlines()[1:]}
    assert rows["baselines"].endswith(",disabled") and "tzbench_baselines.plugin" in rows["baselines"]
    assert rows["tsrn"].endswith(",ok")


def test_disable_plugin_takes_the_distribution_name(capsys: pytest.CaptureFixture[str]) -> None:
    # The built-in plugins are five entry points of the one `tzbench` distribution.
    code, out, err = run(["--disable-plugin", "TZBench", "plugins", "--format", "csv"], capsys)
    assert code == 0, err
    rows = {line.split(",")[0]: line for line in out.splitlines()[1:]}
    assert {"textzoom", "tsrn", "baselines", "recognizers", "losses"} <= set(rows)
    assert all(row.endswith(",disabled") for row in rows.values()), rows
    code, out, _ = run(["--disable-plugin", "tzbench", "list", "sr-models", "--format", "csv"], capsys)
    assert code == 0 and "srcnn" not in out


@pytest.mark.parametrize(("argv", "message"), [
    (["eval", "bicubic", "--data", "wild", "--set", "data.params.bogus=1"], "invalid params for dataset 'wild'"),
    (["eval", "bicubic", "--data", "nosuch"], "unknown dataset 'nosuch'"),
    (["train", "srcnn", "--set", "data.params.bogus=1"], "synth.bogus: Extra inputs are not permitted"),
    (["train", "srcnn", "--data", "nosuch"], "unknown dataset 'nosuch'"),
])
def test_a_dataset_typo_leaves_no_database_behind(argv: list[str], message: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TZBENCH_DB", raising=False)  # the default store: ./tzbench.db
    code, _, err = run([*argv, "--no-progress"], capsys)
    assert code == 2 and message in err
    assert list(tmp_path.iterdir()) == []
