"""The optimisation of one judge: steps under a step and time budget, periodic validation, and
selection of the best checkpoint (highest validation accuracy).

The loop owns no setup: :func:`tzbench_recognizers.trainer.train_recognizer` builds the judge,
data, objective and optimizer and hands them over as a :class:`TrainingLoop`.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from tzbench.data import collate
from tzbench_recognizers.augment import augment_batch, bicubic_up
from tzbench_recognizers.bn import recalibrate_bn
from tzbench_recognizers.checkpoints import JudgeCheckpointWriter
from tzbench_recognizers.common import TrainableRecognizer
from tzbench_recognizers.evaluation import read_accuracy
from tzbench_recognizers.objective import StepObjective
from tzbench_recognizers.run_record import RecognizerRunRecord
from tzbench_recognizers.schedule import schedule_factor, shuffled_batches
from tzbench_recognizers.train_config import RecognizerTrainConfig

if TYPE_CHECKING:
    from tzbench.runner.records import TrainRecords

__all__ = ["LoopState", "TrainingLoop", "calibration_batches"]


def calibration_batches(train_ds: Dataset, cfg: RecognizerTrainConfig,
                        device: torch.device) -> list[tuple[Tensor, list[str]]]:
    """``cfg.bn_batches`` fixed random training batches (HR, on ``device``) for precise BN."""
    calib: list[tuple[Tensor, list[str]]] = []
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    n = len(train_ds)
    for _ in range(cfg.bn_batches):
        idx = torch.randint(0, n, (min(cfg.batch_size, n),), generator=gen).tolist()
        cb = collate([train_ds[i] for i in idx])
        calib.append((cb["hr"][:, :3].to(device), list(cb["label"])))
    return calib


@dataclass
class LoopState:
    """Where the loop is, and how it ended (``status`` finished/interrupted/failed, ``message``)."""

    step: int = 0
    best_val: float | None = None
    loss_avg: float | None = None
    status: str = "finished"
    message: str | None = None
    seconds: float = 0.0


@dataclass
class TrainingLoop:
    """Everything one judge's optimisation needs; :meth:`run` trains, :meth:`validate` selects."""

    cfg: RecognizerTrainConfig
    rec: TrainableRecognizer
    objective: StepObjective
    opt: torch.optim.Optimizer
    trainable: list[nn.Parameter]
    train_ds: Dataset
    val_ds: Dataset
    calib: list[tuple[Tensor, list[str]]]
    device: torch.device
    record: RecognizerRunRecord
    checkpoints: JudgeCheckpointWriter
    records: TrainRecords
    say: Callable[[str], None]
    state: LoopState = field(default_factory=LoopState)
    t0: float = 0.0

    def run(self) -> LoopState:
        """Train until the steps or the time budget run out, SIGTERM/Ctrl-C, or a non-finite loss.

        Interruptions and a non-finite loss end the loop with that status; any other exception
        marks the run failed in the store, closes the records and propagates.
        """
        interrupted = {"flag": False}
        try:
            prev_handler: Any = signal.signal(signal.SIGTERM, lambda *_: interrupted.__setitem__("flag", True))
        except ValueError:  # not the main thread
            prev_handler = None
        st = self.state
        self.t0 = time.perf_counter()
        self.rec.net.train()
        try:
            with self.records:
                self._steps(interrupted)
        except KeyboardInterrupt:
            st.status, st.message = "interrupted", f"interrupted at step {st.step}"
        except FloatingPointError as exc:
            st.status, st.message = "failed", str(exc)
        except BaseException as exc:
            self.record.crashed(exc)
            self.records.close(f"run {self.record.run_id} failed: {type(exc).__name__}: {exc}")
            raise
        finally:
            if prev_handler is not None:
                signal.signal(signal.SIGTERM, prev_handler)
        st.seconds = time.perf_counter() - self.t0
        return st

    def _steps(self, interrupted: dict[str, bool]) -> None:
        cfg, st = self.cfg, self.state
        gen = torch.Generator().manual_seed(cfg.seed)
        batches = shuffled_batches(len(self.train_ds), cfg.batch_size, cfg.seed)
        budget = cfg.max_minutes * 60 if cfg.max_minutes else None
        while st.step < cfg.steps:
            elapsed = time.perf_counter() - self.t0
            if budget is not None and elapsed >= budget:
                st.message = f"stopped by the {cfg.max_minutes:g}-minute budget at step {st.step}"
                break
            if interrupted["flag"]:
                raise KeyboardInterrupt
            frac = max(st.step / max(1, cfg.steps), elapsed / budget if budget else 0.0)
            for group in self.opt.param_groups:
                group["lr"] = cfg.lr * schedule_factor(frac, cfg.warmup, cfg.schedule)
            images, labels = self._batch(batches, gen)
            self._step(images, labels)
            if st.step % cfg.val_every == 0 or st.step == cfg.steps:
                self.validate()
                self.rec.net.train()

    def _batch(self, batches: Iterator[list[int]], gen: torch.Generator) -> tuple[Tensor, list[str]]:
        """The next training batch: HR (a ``lr_fraction`` share bicubic LR), on the device, jittered."""
        cfg = self.cfg
        batch = collate([self.train_ds[i] for i in next(batches)])
        images = batch["hr"][:, :3]
        if cfg.lr_fraction > 0:
            use_lr = torch.rand(images.shape[0], generator=gen) < cfg.lr_fraction
            if bool(use_lr.any()):
                up = bicubic_up(batch["lr"][:, :3], tuple(images.shape[-2:]))
                images = torch.where(use_lr[:, None, None, None], up, images)
        images = images.to(self.device)
        if cfg.augment:
            images = augment_batch(images, gen)
        return images, list(batch["label"])

    def _step(self, images: Tensor, labels: list[str]) -> None:
        cfg, st = self.cfg, self.state
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            loss = self.objective(images, labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {st.step}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.trainable, cfg.grad_clip)
        self.opt.step()
        st.step += 1
        self.records.step(st.step, float(loss.item()), {}, float(self.opt.param_groups[0]["lr"]))
        # The DB's train loss: the mean over the last log_every steps, as for SR runs.
        st.loss_avg = self.records.window.mean("loss")

    def validate(self) -> None:
        """Precise BN, then validation accuracy: recorded, and the checkpoint ``best`` when it improves."""
        cfg, st = self.cfg, self.state
        recalibrate_bn(self.rec, self.calib)
        rep = read_accuracy(self.rec, self.val_ds, cfg.eval_batch_size, "hr", keep_examples=4)
        self.record.validation(st.step, rep.accuracy, rep.n, st.loss_avg, cfg.batch_size)
        improved = st.best_val is None or rep.accuracy > st.best_val
        if improved:
            st.best_val = rep.accuracy
            self.checkpoints.save("best", self.rec.net, st.step, {"val_accuracy": rep.accuracy})
        loss = st.loss_avg if st.loss_avg is not None else float("nan")
        line = (f"step {st.step} t={time.perf_counter() - self.t0:.0f}s loss={loss:.3f} "
                f"val acc={rep.accuracy:.4f} ({rep.correct}/{rep.n}){' *' if improved else ''} e.g. {rep.examples}")
        self.records.validation(st.step, {"val": {"accuracy": rep.accuracy, "n": float(rep.n)}}, "accuracy",
                                rep.accuracy, improved, announce=False)
        self.say(line)
