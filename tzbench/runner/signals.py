"""Stop requests of a training run: Ctrl-C and SIGTERM become a flag checked between steps."""

from __future__ import annotations

import signal
import time
from typing import Any

__all__ = ["StopRequests"]


class StopRequests:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so the checkpoint written on
    the way out is consistent (never taken half-way through an optimizer step). A second
    Ctrl-C (seconds later) raises KeyboardInterrupt at once."""

    #: A repeated SIGINT within this many seconds is the same Ctrl-C (torchrun forwards the
    #: terminal's SIGINT to workers that already received it), not a request to force-quit.
    FORCE_AFTER_S = 2.0

    def __init__(self) -> None:
        self.flag = False
        self.signal: str | None = None
        self._first = 0.0
        self._prev: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:  # noqa: ARG002 - signal API
        now = time.monotonic()
        if self.flag and signum == signal.SIGINT and now - self._first > self.FORCE_AFTER_S:
            raise KeyboardInterrupt
        if not self.flag:
            self.flag, self._first = True, now
            self.signal = signal.Signals(signum).name

    def __enter__(self) -> StopRequests:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._prev[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread: the caller handles interrupts
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, prev in self._prev.items():
            signal.signal(sig, prev)

