"""The HTML report: a static site built from the store with the report's own tables and figures.

Every page is a plain file with its CSS and its small table sorter inline, every link and image
is relative and inside the site folder, so the site opens from disk (``file://``) or any static
host with no server and no network. Layout of a site folder::

    index.html                 the leaderboard of each benchmark/protocol reported, and the pages
    site.json                  what the folder holds (each build adds its page, keeps the others)
    <slug>/index.html          one report: Table 4 layout, Fig. 2 bars, image grids
    <slug>/<experiment>.md|csv, fig2_<judge>.png, grid_<subset>.png   (build_report's files)
    runs/<id>.html             one run: provenance, final results, config as YAML

All text from the store (model names, labels, notes, configs) is HTML-escaped.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tzbench.catalog import Catalog
from tzbench.config import ConfigError
from tzbench.db.models import Run
from tzbench.db.store import Store
from tzbench.errors import StoreError
from tzbench.report.board import board_table
from tzbench.report.build import ReportFiles, build_report
from tzbench.report.tables import SUBSETS, format_cell, is_delta, reference_baseline, table_cells

__all__ = ["SITE_MANIFEST", "SiteFiles", "build_site", "check_site_dir", "page_slug"]

#: The file that marks a folder as a tzbench site and lists its report pages.
SITE_MANIFEST = "site.json"

#: A table cell: its text, the value it sorts by (None: blank, sorted last) and an optional link.
Cell = tuple[str, "float | str | None", "str | None"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;
color:#1d1d1f}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em}nav{margin-bottom:1em}a{color:#0b5cad}
.meta{color:#555}.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #d0d0d0;padding:3px 7px;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}thead th{background:#f0f2f5;position:sticky;top:0}
tbody tr:nth-child(even){background:#fafafa}tbody tr:hover{background:#eef5ff}
th button{all:unset;cursor:pointer;font-weight:600}th button::after{content:" \\2195";color:#999}
th[aria-sort=ascending] button::after{content:" \\25B2";color:#333}
th[aria-sort=descending] button::after{content:" \\25BC";color:#333}
pre{background:#f6f8fa;border:1px solid #ddd;padding:.8em;overflow-x:auto}
figure{margin:1em 0}img{max-width:100%;border:1px solid #eee}dl.kv{display:grid;grid-template-columns:max-content 1fr;
gap:2px 14px}dl.kv dt{font-weight:600}dl.kv dd{margin:0;font-family:ui-monospace,monospace;word-break:break-all}
"""

# Click a header to sort by that column (again: the other way); blank cells stay last.
_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.querySelector("button").addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
        if (x === "" || y === "") { return (x === "") - (y === ""); }
        var nx = Number(x), ny = Number(y);
        var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


@dataclass
class SiteFiles:
    """What :func:`build_site` wrote."""

    index: Path
    page: Path
    report: ReportFiles
    run_pages: list[Path] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        """Every file written: the report's tables and figures, then the pages."""
        return [*self.report.files, self.page, *self.run_pages, self.index]


def page_slug(benchmark: str, experiment: str | None, budget: str | None, protocol: str) -> str:
    """The folder of one report inside the site: ``synth-table4-smoke-clean``, ``wild-comparable-clean``."""
    parts = [benchmark, experiment or "comparable", *([budget] if budget else []), protocol]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(parts))


def _page(title: str, body: str, up: str = "") -> str:
    """A whole self-contained page; ``up`` is the relative path to the site root ("" or "../")."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            f'<nav><a href="{up}index.html">tzbench report</a></nav>\n{body}\n<script>{_JS}</script>\n</body></html>\n')


def _table(header: list[str], rows: list[list[Cell]], table_id: str) -> str:
    """A sortable table; a cell whose sort value is a number is right-aligned."""
    head = "".join(f'<th scope="col"><button type="button">{escape(h)}</button></th>' for h in header)
    lines = []
    for row in rows:
        cells = []
        for text, key, href in row:
            num = isinstance(key, (int, float))
            shown = f'<a href="{escape(href)}">{escape(text)}</a>' if href else escape(text)
            value = "" if key is None else escape(str(key))
            cells.append(f'<td{" class=num" if num else ""} data-v="{value}">{shown}</td>')
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table class="sortable" id="{escape(table_id)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n" + "\n".join(lines) + "\n</tbody></table></div>")


def _number(v: Any, text: str) -> Cell:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ("–", None, None)
    return (text, float(v), None)


def _run_href(run_id: int, up: str) -> str:
    return f"{up}runs/{run_id}.html"


def _leaderboard(store: Store, benchmark: str, protocol: str, judge: str) -> tuple[str, list[int]]:
    """One benchmark/protocol's leaderboard section (from :meth:`Store.leaderboard`) and its run ids."""
    ranked = store.leaderboard(benchmark, "all", judge, "accuracy", protocol)
    head = (f'<h2>Leaderboard · benchmark {escape(benchmark)} · {escape(protocol)} protocol</h2>\n'
            f'<p class="meta">Best comparable finished eval run per model on <b>{escape(benchmark)}</b> under the '
            f"<b>{escape(protocol)}</b> protocol, ranked by <b>{escape(judge)}</b>'s word accuracy on all test "
            "subsets (weighted by sample count); every column comes from that same run. One accuracy column "
            "per judge (%), PSNR in dB, SSIM in [0, 1].</p>\n")
    if not ranked:
        return head + "<p>No finished comparable eval runs.</p>", []
    table, cols = board_table(ranked, "judges", "all", judge)
    rows: list[list[Cell]] = []
    for r in table:
        line: list[Cell] = []
        for c in cols:
            v = r[c]
            if c == "model":
                line.append((v, v, _run_href(r["run"], "")))
            elif c == "run":
                line.append((str(v), v, _run_href(v, "")))
            elif c in ("rank", "n"):
                line.append((str(v), v, None))
            elif c == "comparable":
                line.append((v, v, None))
            elif v is None:
                line.append(_number(None, ""))
            else:  # a judge's accuracy in %, or PSNR / SSIM
                line.append(_number(v, f"{v:.2f}" if c == "psnr" else f"{v:.4f}" if c == "ssim" else format_cell(v * 100)))
        rows.append(line)
    return head + _table(cols, rows, f"leaderboard-{benchmark}-{protocol}"), [r["run"] for r in table]


def _report_page(report: ReportFiles, note: str) -> str:
    """One report's page: its table, its Fig. 2 bars and image grids, links to its markdown/CSV."""
    header, body = table_cells(report.rows)
    rows: list[list[Cell]] = []
    for r, line in zip(report.rows, body):
        cells: list[Cell] = [(r.label, r.label, _run_href(r.run_id, "../"))]
        for h, v in zip(header[1:-1], line[1:-1]):
            cells.append(_number(v, format_cell(v, signed=is_delta(h))))
        cells.append((str(r.run_id), r.run_id, _run_href(r.run_id, "../")))
        rows.append(cells)
    parts = [f"<h1>{escape(report.title)}</h1>"]
    if note:
        parts.append(f'<p class="meta">{escape(note)}</p>')
    parts.append(f'<p class="meta">Accuracy per judge and subset in %, Δ in points against {escape(reference_baseline())}, '
                 "PSNR in dB, "
                 "SSIM in [0, 1]; the latest finished eval run per row. Click a header to sort.</p>")
    parts.append(_table(header, rows, "report"))
    notes = [f"<li>{escape(r.label)}: {escape(r.notes)}</li>" for r in report.rows if r.notes]
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(notes) + "</ul>")
    tables = [p for p in report.files if p.suffix in (".md", ".csv")]
    parts.append("<p>Download: " + " · ".join(f'<a href="{quote(p.name)}">{escape(p.name)}</a>' for p in tables)
                 + "</p>")
    for p in report.files:
        if p.suffix != ".png":
            continue
        what = (f"Fig. 2 — word accuracy by subset, judge {p.stem.removeprefix('fig2_')}" if p.stem.startswith("fig2_")
                else f"Image grid — {p.stem.removeprefix('grid_')} subset: LR, each model, HR, with every judge's reading")
        parts.append(f'<figure><img src="{quote(p.name)}" alt="{escape(what)}"><figcaption>{escape(what)}'
                     "</figcaption></figure>")
    return _page(report.title, "\n".join(parts), up="../")


def _provenance(run: Run, parent: Run | None) -> list[tuple[str, str]]:
    """(field, HTML) pairs: where the run's numbers come from."""
    cfg: dict[str, Any] = run.config or {}
    data = cfg.get("data") or {}
    recipe = str(cfg.get("recipe") or "")
    if not recipe and parent is not None and (parent.config or {}).get("recipe"):  # an eval: its training's
        recipe = f"{parent.config['recipe']} (of train run {parent.id})"
    took = run.finished_at - run.started_at if run.finished_at and run.started_at else None
    judges = cfg.get("judge_weights_sha256") or {}
    pairs = [
        ("status", run.status), ("message", run.message or ""),
        ("benchmark", f"{run.benchmark} v{run.benchmark_version or '-'}"), ("protocol", run.protocol),
        ("comparable", "yes" if run.comparable else "no"), ("provider", run.provider),
        ("dataset", f"{data.get('dataset', '')} {json.dumps(data.get('params') or {}, sort_keys=True)}"),
        ("recipe", recipe),
        ("checkpoint", run.checkpoint or ""), ("weights sha256", run.checkpoint_sha256 or ""),
        *((f"judge {j} weights sha256", str(sha or "")) for j, sha in sorted(judges.items())),
        ("n_params", f"{run.n_params:,}" if run.n_params is not None else ""),
        ("seed", "" if run.seed is None else str(run.seed)), ("device", run.device),
        ("git commit", run.git_commit or ""), ("tzbench", run.tzbench_version), ("torch", run.torch_version),
        ("host", run.host), ("started", str(run.started_at or "")), ("finished", str(run.finished_at or "")),
        ("duration", str(took).split(".")[0] if took is not None else ""), ("bad samples", str(run.bad_samples)),
    ]
    out = [(k, escape(v)) for k, v in pairs if v]
    if parent is not None:
        link = f'<a href="{parent.id}.html">{parent.id} ({escape(parent.kind)} {escape(parent.sr_model)})</a>'
        out.append(("parent run", link))
    elif run.parent_id is not None:
        out.append(("parent run", f"{run.parent_id} (no longer in the store)"))
    return out


def _run_page(run: Run, parent: Run | None) -> str:
    """A run's page: provenance, final results and its config as YAML."""
    import yaml

    from tzbench.db.models import FINAL_STEP

    title = f"Run {run.id} · {run.kind} · {run.sr_model}"
    kv = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in _provenance(run, parent))
    order = {s: i for i, s in enumerate((*SUBSETS, "all"))}
    results = sorted((r for r in run.results if r.step == FINAL_STEP),
                     key=lambda r: (r.metric, r.recognizer, order.get(r.subset, len(order)), r.subset))
    rows: list[list[Cell]] = [[(r.subset, r.subset, None), (r.recognizer, r.recognizer, None),
                               (r.metric, r.metric, None), (f"{r.value:.4f}", r.value, None),
                               (str(r.n_samples), r.n_samples, None)] for r in results]
    steps = len({r.step for r in run.results if r.step != FINAL_STEP})
    config = yaml.safe_dump(run.config or {}, sort_keys=False, allow_unicode=True)
    body = [f"<h1>{escape(title)}</h1>", "<h2>Provenance</h2>", f'<dl class="kv">{kv}</dl>', "<h2>Final results</h2>",
            _table(["subset", "judge", "metric", "value", "n"], rows, "results") if rows else "<p>None.</p>"]
    if steps:
        body.append(f'<p class="meta">{steps} validation steps recorded during training (tzbench runs show '
                    f"{run.id}).</p>")
    body += ["<h2>Config</h2>", f"<pre>{escape(config)}</pre>"]
    return _page(title, "\n".join(body), up="../")


def _read_manifest(site_dir: Path) -> dict[str, dict[str, Any]]:
    """The site's pages so far; refuses a folder whose index.html some other tool wrote."""
    if site_dir.exists() and not site_dir.is_dir():
        raise ConfigError(f"--html {site_dir}: not a folder")
    path = site_dir / SITE_MANIFEST
    if not path.is_file():
        if (site_dir / "index.html").exists():
            raise ConfigError(f"--html {site_dir}: it holds an index.html that is not a tzbench report (no "
                              f"{SITE_MANIFEST}); choose another folder (nothing was written)")
        return {}
    try:
        pages = json.loads(path.read_text(encoding="utf-8"))["pages"]
        return {str(k): dict(v) for k, v in pages.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a tzbench site manifest ({exc}); remove it or choose another folder") from None


def check_site_dir(site_dir: Path) -> None:
    """Fail now (before any training) if ``site_dir`` cannot take a tzbench site."""
    _read_manifest(site_dir)


def _index(store: Store, pages: dict[str, dict[str, Any]], site_dir: Path) -> tuple[str, list[int]]:
    """The site's front page: a leaderboard per benchmark/protocol reported, then every report page."""
    from sqlalchemy.engine import make_url

    from tzbench import __version__
    from tzbench.registry import load_registry

    judge = load_registry().selection_judge
    boards = dict.fromkeys((p["benchmark"], p["protocol"]) for p in pages.values())
    parts = ["<h1>tzbench report</h1>"]
    run_ids: list[int] = []
    for benchmark, protocol in boards:
        section, ids = _leaderboard(store, benchmark, protocol, judge)
        parts.append(section)
        run_ids += ids
    links = [f'<li><a href="{quote(slug)}/index.html">{escape(p["title"])}</a></li>'
             for slug, p in pages.items() if (site_dir / slug / "index.html").is_file()]
    parts.append("<h2>Reports</h2><ul>" + "".join(links) + "</ul>")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    where = make_url(store.url).render_as_string(hide_password=True)
    parts.append(f'<p class="meta">Built {when} by tzbench {escape(__version__)} from {escape(where)}.</p>')
    return _page("tzbench report", "\n".join(parts)), run_ids


def _write_run_pages(store: Store, run_ids: list[int], site_dir: Path) -> list[Path]:
    """A page for each run and, up the chain, the runs it came from (an eval's training)."""
    written: list[Path] = []
    todo, seen = list(dict.fromkeys(run_ids)), set()
    (site_dir / "runs").mkdir(parents=True, exist_ok=True)
    while todo:
        run_id = todo.pop(0)
        if run_id in seen:
            continue
        seen.add(run_id)
        run = store.get_run(run_id)
        parent = None
        if run.parent_id is not None:
            try:
                parent = store.get_run(run.parent_id)
                todo.append(parent.id)
            except StoreError:  # the parent was deleted since (the page says so)
                parent = None
        path = site_dir / "runs" / f"{run_id}.html"
        path.write_text(_run_page(run, parent), encoding="utf-8")
        written.append(path)
    return written


def build_site(
    store: Store,
    catalog: Catalog,
    benchmark: str,
    site_dir: Path,
    experiment: str | None = None,
    budget: str | None = None,
    protocol: str = "clean",
    grid_samples: int = 8,
    **report_options: Any,
) -> SiteFiles:
    """Add one report (:func:`build_report`'s tables and figures) to the static site in ``site_dir``.

    The report goes to its own folder (:func:`page_slug`), so reports of several experiments,
    budgets or benchmarks live side by side in one site; the front page is rebuilt from the store
    with the leaderboard of every benchmark/protocol the site reports, and run pages are written
    for every run a table shows, with the runs they came from.
    """
    pages = _read_manifest(site_dir)
    slug = page_slug(benchmark, experiment, budget, protocol)
    report = build_report(store, catalog, benchmark, site_dir / slug, experiment, budget, protocol, grid_samples,
                          **report_options)
    note = ""
    if budget:
        from tzbench.report.reproduce import load_budgets

        budgets = load_budgets()
        note = f"Budget {budget}: {budgets[budget].note}" if budget in budgets else f"Budget {budget}."
    page = site_dir / slug / "index.html"
    page.write_text(_report_page(report, note), encoding="utf-8")
    pages[slug] = {"title": report.title, "benchmark": benchmark, "protocol": protocol, "experiment": experiment,
                   "budget": budget}
    (site_dir / SITE_MANIFEST).write_text(json.dumps({"pages": pages}, indent=1) + "\n", encoding="utf-8")
    index_html, board_ids = _index(store, pages, site_dir)
    run_pages = _write_run_pages(store, [*(r.run_id for r in report.rows), *board_ids], site_dir)
    index = site_dir / "index.html"
    index.write_text(index_html, encoding="utf-8")
    return SiteFiles(index, page, report, run_pages)
