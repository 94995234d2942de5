"""The core never imports a plugin and no plugin imports another (DESIGN.md's layering).

Every import statement is read from the source, including the lazy ones inside functions, so a
layer shared by two plugins has to live in the core (``tzbench.layers``) to pass.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").is_file())


def _imports(path: Path) -> set[str]:
    """Top-level package names a module imports (absolute imports only)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _offenders(files: list[Path], allowed: str | None) -> list[str]:
    bad = []
    for f in files:
        for pkg in sorted(_imports(f) & set(PLUGINS)):
            if pkg != allowed:
                bad.append(f"{f.relative_to(ROOT)} imports {pkg}")
    return bad


def test_the_core_imports_no_plugin() -> None:
    assert len(PLUGINS) >= 5
    assert _offenders(sorted((ROOT / "tzbench").rglob("*.py")), None) == []


@pytest.mark.parametrize("plugin", PLUGINS)
def test_a_plugin_imports_no_other_plugin(plugin: str) -> None:
    assert _offenders(sorted((ROOT / "plugins" / plugin).rglob("*.py")), plugin) == []


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from tzbench_tsrn.tsrn import TSRN\n    import tzbench_losses.l1 as l1\n")
    assert _imports(f) == {"tzbench_tsrn", "tzbench_losses"}
