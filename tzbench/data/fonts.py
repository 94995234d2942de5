"""Font discovery for the synthetic generator.

Fonts are looked up under ``$TZBENCH_FONTS`` (``os.pathsep``-separated folders) and the
system font folders. DejaVu is always installed on the machines tzbench targets; more
families come from Debian packages (fonts-liberation2, fonts-freefont-ttf, fonts-noto-core).
Only when no TrueType/OpenType font exists does the generator fall back to Pillow's built-in
bitmap font, with a warning, because that font makes a much easier and less varied dataset.

The set of installed fonts is part of the synthetic data's identity: the same seed renders
the same images only with the same fonts (and the same Pillow/FreeType).
"""

from __future__ import annotations

import fnmatch
import os
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

__all__ = ["FONT_DIRS", "find_fonts", "select_fonts"]

FONT_DIRS: tuple[str, ...] = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "C:/Windows/Fonts",
)

# Fonts that cannot render plain Latin words (symbols, maths, emoji, icon fonts).
_EXCLUDE = ("*math*", "*symbol*", "*emoji*", "*dingbat*", "*awesome*", "*icons*", "*braille*",
            "*noto*cjk*", "*wingding*")


def _search_dirs() -> list[Path]:
    env = os.environ.get("TZBENCH_FONTS", "")
    dirs = [Path(p) for p in env.split(os.pathsep) if p]
    dirs += [Path(p) for p in FONT_DIRS]
    home = Path.home() / ".fonts"
    dirs.append(home)
    return dirs


@lru_cache(maxsize=8)
def _scan(dirs: tuple[Path, ...]) -> tuple[str, ...]:
    found: set[str] = set()
    for d in dirs:
        if not d.is_dir():
            continue
        for p in d.rglob("*"):
            if p.suffix.lower() in (".ttf", ".otf") and p.is_file():
                name = p.name.lower()
                if not any(fnmatch.fnmatch(name, pat) for pat in _EXCLUDE):
                    found.add(str(p))
    # Sorted: the font list order is part of the generator's determinism.
    return tuple(sorted(found))


def find_fonts() -> list[str]:
    """All usable TrueType/OpenType files found, sorted by path."""
    return list(_scan(tuple(_search_dirs())))


def select_fonts(spec: Sequence[str] | None) -> list[str]:
    """Resolve the ``fonts`` parameter to a sorted list of font files.

    ``None`` means every font found. Otherwise each entry is a font file path or a
    case-insensitive glob on file names (``"DejaVuSans*"``, ``"*Serif*"``). Returns an empty
    list when nothing is found (the caller then falls back to Pillow's default font, with a
    warning).

    Raises:
        FileNotFoundError: when an explicit pattern matches nothing.
    """
    available = find_fonts()
    if spec is None:
        if not available:
            warnings.warn(
                "no TrueType/OpenType font found (searched $TZBENCH_FONTS and "
                f"{', '.join(FONT_DIRS)}); falling back to Pillow's default font, which makes "
                "synthetic data less varied. Install fonts-dejavu-core.",
                RuntimeWarning,
                stacklevel=2,
            )
        return available
    chosen: set[str] = set()
    for entry in spec:
        if Path(entry).is_file():
            chosen.add(str(Path(entry)))
            continue
        pat = entry.lower()
        hits = [f for f in available if fnmatch.fnmatch(Path(f).name.lower(), pat)
                or fnmatch.fnmatch(Path(f).stem.lower(), pat)]
        if not hits:
            raise FileNotFoundError(
                f"font {entry!r} matches no file; available: "
                + ", ".join(sorted(Path(f).name for f in available)[:40])
            )
        chosen.update(hits)
    return sorted(chosen)
