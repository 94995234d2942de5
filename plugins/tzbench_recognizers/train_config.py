"""What ``tzbench train-recognizer`` is asked to do (validated config) and what it leaves behind."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["JudgeRef", "RecognizerTrainConfig", "RecognizerTrainOutcome"]


class JudgeRef(BaseModel):
    """The judge to train: its registry name and its (validated) params."""

    model_config = ConfigDict(extra="forbid")

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class RecognizerTrainConfig(BaseModel):
    """Everything ``train-recognizer`` needs. Defaults: the CPU recipe of docs/judges.md."""

    model_config = ConfigDict(extra="forbid")

    judge: JudgeRef
    data: list[str] = Field(default_factory=lambda: ["synth", "wild"], description="datasets whose train splits are mixed")
    data_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="params per dataset name, e.g. {synth: {n_train: 20000}}"
    )
    steps: int = Field(default=3000, ge=0, description="optimizer steps (the schedule's length)")
    max_minutes: float | None = Field(
        default=None, gt=0, description="wall-clock budget of the training loop; the schedule follows "
        "whichever of steps or time is further along, and training stops when either runs out"
    )
    batch_size: int = Field(default=64, ge=1)
    eval_batch_size: int = Field(default=128, ge=1)
    lr: float = Field(default=1e-3, gt=0, description="peak Adam learning rate")
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(default=0.0, ge=0)
    warmup: float = Field(default=0.03, ge=0, lt=1, description="share of the run with a linear warm-up")
    schedule: Literal["cosine", "constant"] = "cosine"
    grad_clip: float | None = Field(default=5.0, gt=0)
    augment: bool = Field(default=True, description="light geometric/photometric jitter of the training images")
    lr_fraction: float = Field(
        default=0.0, ge=0, le=1, description="share of each batch fed as bicubic-upsampled LR instead of HR"
    )
    precision: Literal["fp32", "bf16"] = Field(
        default="fp32", description="bf16: autocast the forward pass (faster on CPUs with AVX512-BF16)"
    )
    init: Literal["default", "kaiming"] = Field(
        default="kaiming", description="initialisation when training from scratch: the network's constructor "
        "values, or Kaiming-normal (fan-out, ReLU) convolutions with zero bias (faster start for CRNN's "
        "conv layers without BN); ignored when the judge params load weights"
    )
    distill: str | None = Field(
        default=None, description="teacher judge whose per-frame CTC posteriors also supervise a CTC student "
        "(e.g. ppocr, which needs no weights); None: labels only"
    )
    distill_weight: float = Field(default=1.0, ge=0, description="weight of the frame distillation term")
    aux_weight: float = Field(
        default=1.0, ge=0, description="CRNN deep supervision: weight of a linear read-out of the CNN features "
        "(trained alongside, never saved; 0 disables)"
    )
    bn_batches: int = Field(default=4, ge=0, description="training batches used to recompute BN statistics before "
                            "each validation and checkpoint (0: keep the running averages)")
    val_every: int = Field(default=200, ge=1)
    log_every: int = Field(default=100, ge=1, description="steps per running-mean loss record and progress line")
    val_max_samples: int = Field(default=512, ge=1)
    test_subsets: list[str] = Field(default_factory=lambda: ["easy", "medium", "hard"])
    test_max_samples: int | None = Field(default=None, ge=1, description="limit each test set (quick checks)")
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads (default: torch's)")
    seed: int = 0
    device: str = "auto"
    out_dir: str = "runs"

    @field_validator("data")
    @classmethod
    def _data(cls, v: list[str]) -> list[str]:
        names = [n.strip() for n in v if n.strip()]
        if not names:
            raise ValueError("data must name at least one dataset")
        if len(set(names)) != len(names):
            raise ValueError(f"data names a dataset twice: {names}")
        return names


@dataclass
class RecognizerTrainOutcome:
    """Where a recognizer training run left its results."""

    run_id: int
    run_dir: Path
    best_checkpoint: Path | None
    last_checkpoint: Path
    best_val: float | None
    steps: int
    seconds: float
    status: str
    test: dict[str, dict[str, float]] = field(default_factory=dict)
