"""The CLI stays thin: every command is a module-level function of tzbench/cli/ or of a plugin's
cli module, and none of their functions is over 80 lines (the closures of one 438-line
``build_app`` were what this replaced)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI_FILES = sorted([*(ROOT / "tzbench" / "cli").glob("*.py"), *(ROOT / "plugins").glob("*/cli.py")])


def _functions(path: Path) -> list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [(node, node.end_lineno - min([node.lineno, *(d.lineno for d in node.decorator_list)]) + 1)  # type: ignore[operator]
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_cli_modules_exist() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in CLI_FILES}
    assert {"tzbench/cli/__init__.py", "tzbench/cli/train.py", "tzbench/cli/runs.py", "tzbench/cli/weights.py",
            "plugins/tzbench_recognizers/cli.py", "plugins/tzbench_textzoom/cli.py"} <= names


def test_no_cli_function_over_80_lines() -> None:
    long = [f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)"
            for p in CLI_FILES for node, n in _functions(p) if n > 80]
    assert long == []


def test_commands_are_module_level_functions() -> None:
    """A command registered from inside another function is a closure again."""
    nested = []
    for p in CLI_FILES:
        for outer, _ in _functions(p):
            for node in ast.walk(outer):
                if node is not outer and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                        isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "command"
                        for d in node.decorator_list):
                    nested.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert nested == []
