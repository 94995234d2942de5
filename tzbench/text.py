"""Label filtering exactly as TextZoom does it.

TextZoom compares strings only after filtering them to a vocabulary. The rules decide which
predictions count as correct, so they are reproduced to the character (parity case
``strfilt.case0.json``):

* ``str_filt(s, voc)`` keeps only the characters of the vocabulary ``voc``; for ``'lower'``
  it lower-cases *first* (so the Kelvin sign becomes ``k`` and ``İ`` becomes ``i`` plus a
  combining dot that is then dropped). The other vocabularies never change case.
* ``normalize_text(s)`` (the metrics helper) keeps ASCII letters and digits, *then*
  lower-cases, so non-ASCII letters are dropped before they could fold to ASCII.

Dataset labels use ``voc='all'``; test accuracy compares ``str_filt(pred, 'lower')`` with
``str_filt(label, 'lower')``.
"""

from __future__ import annotations

import string
from typing import Literal

__all__ = ["VOCABULARIES", "Voc", "str_filt", "normalize_text"]

Voc = Literal["digit", "lower", "upper", "all"]

VOCABULARIES: dict[str, str] = {
    "digit": string.digits,
    "lower": string.digits + string.ascii_lowercase,
    "upper": string.digits + string.ascii_letters,
    "all": string.digits + string.ascii_letters + string.punctuation,
}

_SETS: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in VOCABULARIES.items()}
_ALNUM = frozenset(string.digits + string.ascii_letters)


def str_filt(s: str, voc: Voc | str) -> str:
    """Filter ``s`` to the TextZoom vocabulary ``voc`` (digit, lower, upper or all).

    ``'lower'`` lower-cases before filtering; the other vocabularies keep the case.

    Raises:
        ValueError: for an unknown vocabulary name.
    """
    try:
        allowed = _SETS[voc]
    except KeyError:
        raise ValueError(f"unknown vocabulary {voc!r}; expected one of {sorted(_SETS)}") from None
    if voc == "lower":
        s = s.lower()
    return "".join(c for c in s if c in allowed)


def normalize_text(s: str) -> str:
    """Keep ASCII letters and digits, then lower-case (TextZoom's metrics normalisation)."""
    return "".join(c for c in s if c in _ALNUM).lower()
