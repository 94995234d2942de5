"""A training run's records in its folder, and the progress its user sees.

``<run>/train.log``
    Plain text, appended (never truncated, also on resume): a header per process start, the
    progress lines, validation results, warnings of tzbench's loggers and how the run ended.
``<run>/metrics.jsonl``
    One JSON object a line, appended: ``{"kind": "train", "step", "loss", "terms", "lr",
    "s_per_step", "time"}`` every ``log_every`` steps (loss and terms are running means over the
    last ``log_every`` steps), ``{"kind": "val", "step", "metrics": {set: {metric: value}}}``
    after each validation, ``{"kind": "resume", "step"}`` when a resumed process starts. A resumed
    run repeats the steps after its checkpoint; :func:`read_metrics` keeps the last record of each.

Progress: a rich bar on a terminal; otherwise (stdout redirected, ``--no-progress``,
``TZBENCH_NO_PROGRESS=1``) one plain line every ``log_every`` steps or every 30 s, whichever
comes first. ``train.log`` receives the same lines in both cases.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from rich.progress import Progress

from tzbench.loggers import LoggerSet

__all__ = ["TRAIN_LOG", "METRICS", "LINE_EVERY_S", "RunningMean", "RunLog", "TrainRecords", "read_metrics",
           "progress_mode", "format_duration", "sample_grid"]

TRAIN_LOG = "train.log"
METRICS = "metrics.jsonl"
#: Longest quiet spell of plain progress output, in seconds.
LINE_EVERY_S = 30.0


class RunningMean:
    """Mean of each named scalar over its last ``window`` values."""

    def __init__(self, window: int) -> None:
        self.window = max(1, int(window))
        self._values: dict[str, deque[float]] = {}

    def push(self, values: Mapping[str, float]) -> None:
        """Add one step's values."""
        for k, v in values.items():
            self._values.setdefault(k, deque(maxlen=self.window)).append(float(v))

    def mean(self, name: str) -> float:
        """The running mean of ``name`` (NaN before its first value)."""
        vals = self._values.get(name)
        return sum(vals) / len(vals) if vals else math.nan

    def count(self, name: str) -> int:
        """How many values the current mean of ``name`` averages."""
        return len(self._values.get(name, ()))

    def names(self) -> list[str]:
        return list(self._values)

    def state(self) -> dict[str, list[float]]:
        """The window's values, for the training state (a resumed run's means equal the uninterrupted run's)."""
        return {k: list(v) for k, v in self._values.items()}

    def load(self, state: Mapping[str, list[float]] | None) -> None:
        """Restore :meth:`state` (the last ``window`` values of each name are kept)."""
        self._values = {k: deque((float(x) for x in v), maxlen=self.window) for k, v in (state or {}).items()}


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    if not math.isfinite(seconds):
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def progress_mode(progress: bool) -> str:
    """``bar`` (rich, on a terminal) or ``lines`` (plain text: redirected output, or asked for)."""
    if progress and os.environ.get("TZBENCH_NO_PROGRESS") != "1" and sys.stdout.isatty():
        return "bar"
    return "lines"


class _LogHandler(logging.Handler):
    """Copies warnings of tzbench's loggers into the run log while the run lasts."""

    def __init__(self, runlog: RunLog) -> None:
        super().__init__(logging.WARNING)
        self.runlog = runlog

    def emit(self, record: logging.LogRecord) -> None:
        self.runlog.write(f"{record.levelname.lower()}: {record.getMessage()}")


class RunLog:
    """``<run>/train.log``, opened for appending; every line is timestamped (UTC) and flushed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: IO[str] | None = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._handler = _LogHandler(self)
        logging.getLogger("tzbench").addHandler(self._handler)

    def write(self, line: str) -> None:
        if self._f is None:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        self._f.write(f"{stamp} {line}\n")
        self._f.flush()

    def close(self) -> None:
        logging.getLogger("tzbench").removeHandler(self._handler)
        if self._f is not None:
            self._f.close()
            self._f = None


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN/inf; a reader sees null
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    return v


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` in step order, the last of each ``(kind, step)`` kept
    (a resumed run writes again the steps after its checkpoint); ``resume`` markers dropped."""
    last: dict[tuple[str, int], dict[str, Any]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if rec.get("kind") == "resume":
            continue
        last[(rec["kind"], int(rec["step"]))] = rec
    return [last[k] for k in sorted(last, key=lambda k: (k[1], k[0] != "train"))]


def sample_grid(lr: Any, sr: Any, hr: Any) -> Any:
    """A ``(3, H, W)`` image in ``[0, 1]``: rows bicubic LR, SR, HR; one column per sample."""
    import torch
    import torch.nn.functional as F
    from torchvision.utils import make_grid

    size = hr.shape[-2:]
    up = F.interpolate(lr[:, :3].float(), size=size, mode="bicubic", align_corners=False)
    rows = torch.cat([up, sr[:, :3].float(), hr[:, :3].float()]).clamp(0, 1).cpu()
    return make_grid(rows, nrow=lr.shape[0], padding=2, pad_value=1.0)


class TrainRecords:
    """Rank 0's log, metrics history, loggers and progress of one training run."""

    def __init__(self, run_dir: Path, label: str, total: int, start_step: int, log_every: int, progress: bool,
                 loggers: LoggerSet | None = None) -> None:
        self.run_dir = run_dir
        self.label, self.total, self.start_step = label, total, start_step
        self.log_every = max(1, int(log_every))
        self.mode = progress_mode(progress)
        self.loggers = loggers or LoggerSet([])
        self.window = RunningMean(self.log_every)
        self.log = RunLog(run_dir / TRAIN_LOG)
        self._metrics = open(run_dir / METRICS, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._t0 = time.perf_counter()
        self._last_line = self._t0
        self._prog: Progress | None = None
        self._task: Any = None
        self.lr = math.nan

    # -- output ---------------------------------------------------------------------------------
    def __enter__(self) -> TrainRecords:
        if self.mode == "bar":
            from tzbench.runner.context import make_progress

            self._prog = make_progress()
            self._prog.__enter__()
            self._task = self._prog.add_task(self.label, total=self.total, completed=self.start_step, info="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._prog is not None:
            self._prog.__exit__(None, None, None)
            self._prog = None

    def say(self, line: str) -> None:
        """A line for the user (above the bar, or plain) and the log."""
        self.log.write(line)
        if self._prog is not None:
            self._prog.console.print(line, markup=False, highlight=False)
        else:
            print(line, flush=True)

    def _history(self, record: dict[str, Any]) -> None:
        self._metrics.write(json.dumps(_json_safe(record), sort_keys=False) + "\n")
        self._metrics.flush()

    # -- the run's events -------------------------------------------------------------------------
    def start(self, info: Mapping[str, Any], header: str, resumed: bool = False) -> None:
        """The header line, a resume marker in the history, and the loggers' ``on_start``."""
        self.say(header)
        if resumed:
            self._history({"kind": "resume", "step": self.start_step, "time": time.time()})
        self.loggers.call("on_start", dict(info))

    def s_per_step(self, step: int) -> float:
        done = step - self.start_step
        return (time.perf_counter() - self._t0) / done if done > 0 else math.nan

    def step(self, step: int, loss: float, terms: Mapping[str, float], lr: float) -> None:
        """After optimizer step ``step`` (1-based): record the loss, maybe report."""
        self.window.push({"loss": loss, **{f"loss/{k}": v for k, v in terms.items()}})
        self.lr = lr
        now = time.perf_counter()
        if self._prog is not None:
            self._prog.update(self._task, completed=step, info=f"loss={self.window.mean('loss'):.4f}")
        if step % self.log_every == 0 or step == self.total:
            scalars = self.scalars(step)
            self._history({"kind": "train", "step": step, "loss": scalars["loss"],
                           "terms": {k[5:]: v for k, v in scalars.items() if k.startswith("loss/")},
                           "lr": lr, "s_per_step": scalars["s_per_step"], "time": time.time()})
            self.loggers.call("on_step", step, scalars)
        if step % self.log_every == 0 or step == self.total or now - self._last_line >= LINE_EVERY_S:
            self._last_line = now
            line = self.progress_line(step)
            if self._prog is None:
                self.say(line)
            else:
                self.log.write(line)

    def scalars(self, step: int) -> dict[str, float]:
        """The running means, the learning rate and the speed, as the loggers receive them."""
        out = {name: self.window.mean(name) for name in self.window.names()}
        out["lr"] = self.lr
        out["s_per_step"] = self.s_per_step(step)
        return out

    def progress_line(self, step: int) -> str:
        sps = self.s_per_step(step)
        pct = 100.0 * step / self.total if self.total else 100.0
        return (f"{self.label} step {step}/{self.total} ({pct:.0f}%) loss {self.window.mean('loss'):.5f} "
                f"lr {self.lr:.3g} {sps:.3f} s/step ETA {format_duration(sps * (self.total - step))}")

    def validation(self, step: int, metrics: Mapping[str, Mapping[str, float]], selection_metric: str,
                   score: float, improved: bool, grid: Any = None, announce: bool = True) -> None:
        """Record one validation: history, loggers, and (``announce``) a line."""
        self._history({"kind": "val", "step": step, "metrics": {k: dict(v) for k, v in metrics.items()},
                       "score": score, "improved": improved, "time": time.time()})
        self.loggers.call("on_validation", step, metrics, grid)
        shown = "  ".join(f"{name}: " + " ".join(f"{m}={v:.4f}" for m, v in vals.items() if m != "n")
                          for name, vals in metrics.items())
        if self._prog is not None:
            self._prog.update(self._task, info=f"loss={self.window.mean('loss'):.4f} val {selection_metric}={score:.4f}")
        if announce:
            self.say(f"{self.label} validation at step {step}: {shown}{'  (best so far)' if improved else ''}")

    def close(self, line: str | None = None) -> None:
        """The closing line, the loggers' ``on_end``, files closed."""
        self.__exit__()
        if line:
            self.log.write(line)
        self.loggers.call("on_end")
        self._metrics.close()
        self.log.close()
