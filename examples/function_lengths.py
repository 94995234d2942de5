"""The longest functions of tzbench's code: ``python examples/function_lengths.py [N] [FOLDER ...]``.

A function's length counts its lines from its first decorator to its last line (docstring and
signature included), as the project's "no function over 80 lines" rule reads it.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def function_lengths(folders: list[Path]) -> Iterator[tuple[int, str, str]]:
    """(lines, "path:line", name) of every function and method under ``folders``."""
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                    yield node.end_lineno - start + 1, f"{path.relative_to(ROOT)}:{node.lineno}", node.name


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv and argv[0].isdigit() else 10
    folders = [Path(a).resolve() for a in argv[1:] if not a.isdigit()] or [ROOT / "tzbench", ROOT / "plugins"]
    files = sum(1 for f in folders for _ in f.rglob("*.py"))
    print(f"{files} Python files under {', '.join(str(f.relative_to(ROOT)) for f in folders)}")
    for lines, where, name in sorted(function_lengths(folders), reverse=True)[:n]:
        print(f"{lines:5d}  {name:32s} {where}")


if __name__ == "__main__":
    main(sys.argv[1:])
