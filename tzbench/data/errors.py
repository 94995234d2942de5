"""Bad-sample records and the errors raised for them.

A bad sample is never silent: every one is either recorded in a dataset's ``bad_samples``
(``on_bad_sample="skip"``) or raised as a :class:`DatasetError` naming the file and the key
(``on_bad_sample="error"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tzbench.errors import DatasetError

__all__ = ["BadKind", "BadSample", "DatasetError", "SampleError", "resolve_policy", "OnBadSample"]

BadKind = Literal["undecodable", "missing_key", "count_mismatch", "empty_label", "ignored_label"]
OnBadSample = Literal["skip", "error"]

# Kinds that a dataset convention marks as "do not use" (ICDAR's '###'): always skipped,
# still counted, never an error.
_NEVER_FATAL: frozenset[str] = frozenset({"ignored_label"})


@dataclass(frozen=True)
class BadSample:
    """One sample that could not be used.

    Attributes:
        key: the key (LMDB) or relative file name (folder) that is bad.
        path: the LMDB directory or label file it comes from.
        reason: a human-readable explanation.
        kind: undecodable, missing_key, count_mismatch, empty_label or ignored_label.
    """

    key: str
    path: str
    reason: str
    kind: BadKind = "undecodable"

    @property
    def fatal(self) -> bool:
        """Whether ``on_bad_sample="error"`` refuses this sample (all but ignored labels)."""
        return self.kind not in _NEVER_FATAL

    def __str__(self) -> str:
        return f"{self.path} [{self.key}]: {self.reason}"


# DatasetError is defined in tzbench.errors (torch-free) and re-exported here.


class SampleError(Exception):
    """Raised by a sample source for one bad sample; the dataset applies the policy."""

    def __init__(self, bad: BadSample) -> None:
        super().__init__(str(bad))
        self.bad = bad


def resolve_policy(on_bad_sample: OnBadSample | None, split: str) -> OnBadSample:
    """The bad-sample policy for ``split``: explicit value, else 'error' for test, 'skip' otherwise.

    Test sets must be complete to be comparable, so they refuse bad samples by default;
    training tolerates (and reports) them.
    """
    if on_bad_sample is not None:
        if on_bad_sample not in ("skip", "error"):
            raise ValueError(f"on_bad_sample must be 'skip', 'error' or None, got {on_bad_sample!r}")
        return on_bad_sample
    return "error" if split == "test" else "skip"
