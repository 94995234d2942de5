"""The paper's Table 4 layout, computed from eval runs in the store."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from tzbench.db.models import FINAL_STEP, NO_RECOGNIZER, Result, Run
from tzbench.db.store import Store
from tzbench.registry import load_registry

__all__ = ["ReportRow", "collect_rows", "table_cells", "format_cell", "is_delta", "reference_baseline", "to_markdown",
           "to_csv", "SUBSETS"]

SUBSETS = ("easy", "medium", "hard")


@dataclass
class ReportRow:
    """One model (or labelled variant) with every number from one eval run."""

    label: str
    model: str
    run_id: int
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)  # judge -> subset -> acc
    psnr: dict[str, float] = field(default_factory=dict)
    ssim: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None
    comparable: bool = False
    notes: str = ""

    def average(self, judge: str) -> float:
        """Accuracy over all subsets weighted by sample count (the stored 'all' row)."""
        return self.accuracy.get(judge, {}).get("all", math.nan)


def collect_rows(
    store: Store,
    benchmark: str,
    experiment: str | None = None,
    budget: str | None = None,
    protocol: str = "clean",
) -> list[ReportRow]:
    """The latest finished eval run per label (a label is the model, or the reproduce tag).

    With ``experiment``/``budget`` only runs made by ``tzbench reproduce`` with those tags count;
    without them, the latest comparable eval run per model.
    """
    with store.session() as s:
        runs = list(s.scalars(
            select(Run).where(Run.kind == "eval", Run.status == "finished", Run.benchmark == benchmark,
                              Run.protocol == protocol).order_by(Run.id)
        ))
        latest: dict[str, Run] = {}
        for run in runs:
            tags: dict[str, Any] = (run.config or {}).get("tags") or {}
            if experiment is not None and tags.get("experiment") != experiment:
                continue
            if budget is not None and tags.get("budget") != budget:
                continue
            if experiment is None and not run.comparable:
                continue
            latest[tags.get("label") or run.sr_model] = run  # later runs win
        rows: list[ReportRow] = []
        for label, run in latest.items():
            row = ReportRow(label, run.sr_model, run.id, checkpoint=run.checkpoint, comparable=run.comparable)
            parent_note = s.get(Run, run.parent_id).message if run.parent_id else None
            # A shipped-weights eval has no training run in this store: name the weights instead, so
            # the row says where its numbers come from (their provenance is in the file).
            tag = ((run.config or {}).get("tags") or {}).get("pretrained")
            shipped = f"shipped weights {run.sr_model}:{tag} (`--pretrained`)" if tag else None
            row.notes = "; ".join(x for x in (parent_note, shipped) if x)
            for r in s.scalars(select(Result).where(Result.run_id == run.id, Result.step == FINAL_STEP)):
                if r.metric == "accuracy":
                    row.accuracy.setdefault(r.recognizer, {})[r.subset] = r.value
                elif r.metric == "psnr" and r.recognizer == NO_RECOGNIZER:
                    row.psnr[r.subset] = r.value
                elif r.metric == "ssim" and r.recognizer == NO_RECOGNIZER:
                    row.ssim[r.subset] = r.value
            rows.append(row)
    return rows


def _judges(rows: list[ReportRow]) -> list[str]:
    return sorted({j for r in rows for j in r.accuracy})


#: What a Δ column's header holds between the judge and the baseline ("ppocr Δ vs bicubic").
_DELTA = " Δ vs "


def reference_baseline() -> str:
    """registry.yaml's ``reference_baseline``: the row that Δ columns and reference lines measure against."""
    return load_registry().reference_baseline


def is_delta(header: str) -> bool:
    """Whether a :func:`table_cells` column is a signed difference to the baseline."""
    return _DELTA in header


def table_cells(rows: list[ReportRow], baseline: str | None = None) -> tuple[list[str], list[list[Any]]]:
    """Table 4's header and raw values (accuracy and Δ in %, NaN where a number is missing), one line per row;
    the markdown, CSV and HTML reports all print this. ``baseline``: default :func:`reference_baseline`."""
    baseline = baseline or reference_baseline()
    judges = _judges(rows)
    base = next((r for r in rows if r.model == baseline), None)
    header = ["model"]
    for j in judges:
        header += [f"{j} {s}" for s in (*SUBSETS, "avg")]
        if base is not None:
            header.append(f"{j}{_DELTA}{baseline}")
    header += ["PSNR easy", "PSNR medium", "PSNR hard", "PSNR avg", "SSIM easy", "SSIM medium", "SSIM hard",
               "SSIM avg", "run"]
    body: list[list[Any]] = []
    for r in rows:
        line: list[Any] = [r.label]
        for j in judges:
            acc = r.accuracy.get(j, {})
            line += [acc.get(s, math.nan) * 100 for s in SUBSETS] + [r.average(j) * 100]
            if base is not None:
                line.append((r.average(j) - base.average(j)) * 100)
        line += [r.psnr.get(s, math.nan) for s in (*SUBSETS, "all")]
        line += [r.ssim.get(s, math.nan) for s in (*SUBSETS, "all")]
        line.append(r.run_id)
        body.append(line)
    return header, body


def format_cell(v: Any, signed: bool = False) -> str:
    """A value of :func:`table_cells` as the reports print it ("–" for a missing number)."""
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:+.2f}" if signed else f"{v:.2f}" if abs(v) >= 1 or v == 0 else f"{v:.4f}"
    return str(v)


def to_markdown(rows: list[ReportRow], title: str = "") -> str:
    """Table 4 as markdown: accuracy in %, Δ in points, PSNR in dB, SSIM in [0,1]."""
    header, body = table_cells(rows)
    out = [f"### {title}", ""] if title else []
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for line in body:
        out.append("| " + " | ".join(format_cell(v, signed=is_delta(h)) for h, v in zip(header, line)) + " |")
    notes = [f"- {r.label}: {r.notes}" for r in rows if r.notes]
    if notes:
        out += ["", "Notes:", *notes]
    return "\n".join(out) + "\n"


def to_csv(rows: list[ReportRow]) -> str:
    """Table 4 as CSV with full precision."""
    header, body = table_cells(rows)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(body)
    return buf.getvalue()
