"""``tzbench report``: tables, bar plot and image grids, all read back from the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from tzbench.catalog import Catalog
from tzbench.config import ConfigError
from tzbench.db.store import Store
from tzbench.registry import load_registry
from tzbench.report.figures import accuracy_bars, image_grid
from tzbench.report.tables import ReportRow, collect_rows, to_csv, to_markdown

__all__ = ["ReportFiles", "build_report"]


@dataclass
class ReportFiles:
    """What ``build_report`` wrote."""

    rows: list[ReportRow]
    files: list[Path] = field(default_factory=list)
    #: What the tables and figures show: benchmark, experiment or leaderboard, budget, protocol.
    title: str = ""


def _grid(rows: list[ReportRow], store: Store, catalog: Catalog, benchmark: str, subset: str, n: int,
          out: Path, dataset_params: dict[str, Any]) -> Path | None:
    from tzbench.data import collate
    from tzbench.runner.checkpoint import load_sr_checkpoint
    from tzbench.runner.context import build_dataset, build_judges, build_sr_model, pick_device

    device = pick_device("auto")
    judges_names = sorted({j for r in rows for j in r.accuracy})
    judges = build_judges(catalog, judges_names, device) if judges_names else []
    dataset = store.get_run(rows[0].run_id).config.get("data", {}).get("dataset", benchmark)
    columns: list[tuple[str, torch.Tensor]] = []
    readings: dict[str, dict[str, list[str]]] = {}
    labels: list[str] = []
    hr_rgb = lr_rgb = None
    for r in rows:
        info = build_sr_model(catalog, r.model, store.get_run(r.run_id).config.get("model", {}).get("params", {}))
        if r.checkpoint:
            load_sr_checkpoint(r.checkpoint, info.module, r.model)
        provider, _ = build_dataset(catalog, dataset, dataset_params, info.in_channels)
        ds = provider.load("test", subset)
        batch = collate([ds[i] for i in range(min(n, len(ds)))])
        if hr_rgb is None:
            labels = list(batch["label"])
            hr_rgb = batch["hr"][:, :3]
            lr_rgb = F.interpolate(batch["lr"][:, :3], size=hr_rgb.shape[-2:], mode="bicubic",
                                   align_corners=False).clamp(0, 1)
        with torch.no_grad():
            sr = info.module.eval().to(device)(batch["lr"].to(device)).float().clamp(0, 1)[:, :3].cpu()
        columns.append((r.label, sr))
        readings[r.label] = {j.name: j.recognizer.recognize(sr) for j in judges}
    if hr_rgb is None or lr_rgb is None:
        return None
    readings["HR"] = {j.name: j.recognizer.recognize(hr_rgb) for j in judges}
    # A row that shows exactly the bicubic upsampling of the LR (the bicubic baseline) is that column already;
    # judged by the pixels, so the core needs no model's name for it.
    if any(sr.shape == lr_rgb.shape and torch.allclose(sr, lr_rgb, atol=1 / 255) for _, sr in columns):
        cols = [*columns, ("HR", hr_rgb)]
    else:
        readings["LR (bicubic up)"] = {j.name: j.recognizer.recognize(lr_rgb) for j in judges}
        cols = [("LR (bicubic up)", lr_rgb), *columns, ("HR", hr_rgb)]
    return image_grid(cols, readings, labels, out)


def build_report(
    store: Store,
    catalog: Catalog,
    benchmark: str,
    out_dir: Path,
    experiment: str | None = None,
    budget: str | None = None,
    protocol: str = "clean",
    grid_samples: int = 8,
    grid_subsets: tuple[str, ...] = ("hard",),
    dataset_params: dict[str, Any] | None = None,
) -> ReportFiles:
    """Write <experiment>.md/.csv (table4.* without one), fig2_<judge>.png and grid_<subset>.png."""
    rows = collect_rows(store, benchmark, experiment, budget, protocol)
    if not rows:
        what = f"experiment {experiment!r} budget {budget!r}" if experiment else "comparable eval runs"
        raise ConfigError(f"no finished {what} for benchmark {benchmark!r} in {store.url}")
    # The paper's row order: this experiment's models as registry.yaml lists them (Table 4 for a
    # plain leaderboard), then those of the other experiments; anything else (third-party
    # models) after them, alphabetically.
    experiments = load_registry().experiments
    paper = [*experiments.get(experiment or "table4", []), *(m for rows in experiments.values() for m in rows)]
    order = {m: i for i, m in enumerate(dict.fromkeys(paper))}
    rows.sort(key=lambda r: (order.get(r.model, len(order)), r.model, r.label))
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"{benchmark} · {experiment or 'leaderboard'}{' · ' + budget if budget else ''} · {protocol} protocol"
    result = ReportFiles(rows, title=title)
    stem = experiment or "table4"  # every experiment uses Table 4's layout; files carry its name
    md = out_dir / f"{stem}.md"
    md.write_text(to_markdown(rows, title), encoding="utf-8")
    csv_path = out_dir / f"{stem}.csv"
    csv_path.write_text(to_csv(rows), encoding="utf-8")
    result.files += [md, csv_path]
    for judge in sorted({j for r in rows for j in r.accuracy}):
        result.files.append(accuracy_bars(rows, judge, out_dir / f"fig2_{judge}.png", title=f"{title} — {judge}"))
    if grid_samples > 0:
        params = dataset_params
        if params is None:
            params = store.get_run(rows[0].run_id).config.get("data", {}).get("params", {})
        for subset in grid_subsets:
            path = _grid(rows, store, catalog, benchmark, subset, grid_samples, out_dir / f"grid_{subset}.png",
                         dict(params))
            if path is not None:
                result.files.append(path)
    return result
