"""One word for the user-facing concept: a text recognizer that reads SR output for a score is a *judge*
in every option, config field and doc; "recognizer" survives only as the plugin API's word
(``register_recognizers``, the ``recognizers`` catalog kind), as the DB column that keeps its name,
and as the working alias ``leaderboard --recognizer`` (docs/judges.md, "One word")."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer

from tzbench.cli import build_app, main
from tzbench.config import EvalConfig, TrainConfig
from tzbench.db.store import ResultRow, Store
from tzbench.plugins import get_plugin_manager

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def _seed(db_url: str) -> None:
    s = Store(db_url)
    for model, ppocr, ppocrv2 in (("tsrn", 0.60, 0.20), ("bicubic", 0.50, 0.30)):
        rid = s.start_run(kind="eval", sr_model=model, benchmark="synth", comparable=True)
        s.add_results(rid, [ResultRow("all", "ppocr", "accuracy", ppocr, n_samples=10),
                            ResultRow("all", "ppocrv2", "accuracy", ppocrv2, n_samples=10)])
        s.finish_run(rid, "finished")


def _board(db_url: str, capsys: pytest.CaptureFixture[str], *opts: str) -> list[str]:
    main(["leaderboard", "--db", db_url, "--format", "json", *opts])
    return [r["model"] for r in json.loads(capsys.readouterr().out)]


def test_leaderboard_judge_and_its_old_name_rank_alike(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(db_url)
    assert _board(db_url, capsys) == ["tsrn", "bicubic"]  # registry.yaml selection_judge: ppocr
    assert _board(db_url, capsys, "--judge", "ppocrv2") == ["bicubic", "tsrn"]
    assert _board(db_url, capsys, "--recognizer", "ppocrv2") == ["bicubic", "tsrn"]  # the alias still works


def _options(group: typer.Typer) -> list[tuple[str, list[str]]]:
    import typer.main

    command = typer.main.get_command(group)
    found: list[tuple[str, list[str]]] = []

    def walk(cmd: object, path: str) -> None:
        for sub_name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {sub_name}")
        for param in getattr(cmd, "params", []):
            if getattr(param, "opts", None) and param.opts[0].startswith("--"):
                found.append((f"{path} {param.opts[0]}", list(param.opts)))

    walk(command, "tzbench")
    return found


def test_no_cli_option_is_named_recognizer() -> None:
    options = _options(build_app(get_plugin_manager()))
    assert len(options) > 50  # the walk reached the sub-commands and the plugins' commands
    assert [name for name, opts in options if "recognizer" in opts[0]] == []  # the command train-recognizer may
    aliases = {name: opts for name, opts in options if any("recognizer" in o for o in opts)}
    assert aliases == {"tzbench leaderboard --judge": ["--judge", "--recognizer"]}


def test_config_fields_say_judge() -> None:
    for model in (TrainConfig, EvalConfig):
        assert "judges" in model.model_fields
        assert [f for f in model.model_fields if "recognizer" in f] == []


#: Words a user would type for the concept; a doc line may name them only to call them an alias.
_OTHER_WORD = re.compile(r"--recognizers?\b|\b(selection|default|legacy_selection)_recognizers?\b")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_use_one_word(doc: Path) -> None:
    bad = [f"{doc.name}:{i}: {line.strip()}" for i, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
           if _OTHER_WORD.search(line) and "alias" not in line]
    assert bad == []


def test_the_doc_check_catches_the_other_word(tmp_path: Path) -> None:
    assert _OTHER_WORD.search("rank with `tzbench leaderboard --recognizer aster`")
    assert _OTHER_WORD.search("set selection_recognizer in registry.yaml")
    assert not _OTHER_WORD.search("`register_recognizers`, `tzbench list recognizers`, `--judge aster`")
