"""The tzbench home folder (``$TZBENCH_HOME``, default ``~/.cache/tzbench``) and its weights store."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tzbench.weights import sha256_file

__all__ = ["tzbench_home", "weights_dir", "WeightsEntry", "add_weights", "list_weights", "find_weights"]


def tzbench_home() -> Path:
    """``$TZBENCH_HOME`` or ``~/.cache/tzbench``."""
    env = os.environ.get("TZBENCH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tzbench"


def weights_dir(component: str) -> Path:
    """Where a component's weights live: ``<home>/weights/<component>/``."""
    return tzbench_home() / "weights" / component


@dataclass(frozen=True)
class WeightsEntry:
    """A weights file in the home folder."""

    component: str
    path: Path
    sha256: str
    size: int


def add_weights(component: str, source: str | Path, filename: str | None = None) -> WeightsEntry:
    """Copy ``source`` into the home folder (atomically) and record its sha256."""
    src = Path(source)
    if not src.is_file():
        raise FileNotFoundError(f"weights file not found: {src}")
    dest_dir = weights_dir(component)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / (filename or src.name)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.copyfile(src, tmp)
    digest = sha256_file(tmp)
    os.replace(tmp, dest)
    (dest_dir / (dest.name + ".sha256.json")).write_text(
        json.dumps({"file": dest.name, "sha256": digest, "source": str(src.resolve())}, indent=2), encoding="utf-8"
    )
    return WeightsEntry(component, dest, digest, dest.stat().st_size)


def list_weights() -> list[WeightsEntry]:
    """Every weights file present in the home folder."""
    root = tzbench_home() / "weights"
    out: list[WeightsEntry] = []
    if not root.is_dir():
        return out
    for comp in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(comp.iterdir()):
            if f.is_file() and not f.name.endswith((".sha256.json", ".tmp")):
                meta = comp / (f.name + ".sha256.json")
                digest = json.loads(meta.read_text())["sha256"] if meta.is_file() else sha256_file(f)
                out.append(WeightsEntry(comp.name, f, digest, f.stat().st_size))
    return out


def find_weights(component: str, filename: str) -> Path | None:
    """The home folder's copy of ``filename`` for ``component``, if present."""
    path = weights_dir(component) / filename
    return path if path.is_file() else None
