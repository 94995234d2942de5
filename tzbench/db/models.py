"""ORM models: one row per run, one row per (run, subset, recognizer, metric, step) result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["Base", "Run", "Result", "NO_RECOGNIZER", "FINAL_STEP"]

NO_RECOGNIZER = "-"  # recognizer column of judge-free metrics (PSNR, SSIM)
FINAL_STEP = -1  # step column of final (not in-training) results


class Base(DeclarativeBase):
    """Declarative base of tzbench's tables."""


class Run(Base):
    """A train or eval run with its provenance."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # train | eval | train-recognizer
    status: Mapped[str] = mapped_column(String(16), index=True)  # running|finished|failed|interrupted
    sr_model: Mapped[str] = mapped_column(String(128), index=True)
    provider: Mapped[str] = mapped_column(String(256), default="")
    benchmark: Mapped[str] = mapped_column(String(64), index=True)
    benchmark_version: Mapped[str] = mapped_column(String(32), default="")
    protocol: Mapped[str] = mapped_column(String(16), default="clean", index=True)
    comparable: Mapped[bool] = mapped_column(default=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    checkpoint: Mapped[str | None] = mapped_column(Text, nullable=True)
    checkpoint_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), nullable=True)
    n_params: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    device: Mapped[str] = mapped_column(String(64), default="")
    git_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tzbench_version: Mapped[str] = mapped_column(String(32), default="")
    torch_version: Mapped[str] = mapped_column(String(64), default="")
    host: Mapped[str] = mapped_column(String(128), default="")
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bad_samples: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    results: Mapped[list[Result]] = relationship(back_populates="run", cascade="all, delete-orphan", passive_deletes=True)


class Result(Base):
    """One metric value of a run."""

    __tablename__ = "results"
    __table_args__ = (UniqueConstraint("run_id", "subset", "recognizer", "metric", "step", name="uq_result"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    subset: Mapped[str] = mapped_column(String(32))
    recognizer: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(32))
    value: Mapped[float] = mapped_column(Float)
    step: Mapped[int] = mapped_column(Integer, default=FINAL_STEP)
    n_samples: Mapped[int] = mapped_column(Integer, default=0)

    run: Mapped[Run] = relationship(back_populates="results")
