"""The HTML report: a static site from the store, checked as files and in headless Chromium.

The store is filled through the Store API (no training): three comparable eval runs whose
numbers the tables must show in order, a newer non-comparable run the leaderboard must skip,
and a training run the srcnn eval came from.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

import tzbench
from tzbench.config import ConfigError
from tzbench.db import Store
from tzbench.db.store import ResultRow
from tzbench.report.html import build_site

# ppocr accuracy on all subsets ranks srcnn > vdsr > bicubic; ppocrv2 and PSNR order them otherwise.
NUMBERS = {"bicubic": (0.40, 0.20, 20.1), "srcnn": (0.55, 0.25, 21.5), "vdsr": (0.50, 0.35, 22.0)}
HOSTILE = "vdsr <i>x</i> & co"  # a user's label: must be shown as text, never as markup
DATA = {"dataset": "synth", "params": {"n_train": 4, "n_test": 4}, "batch_size": 4}


def _fill(store: Store) -> dict[str, int]:
    train = store.start_run(kind="train", status="finished", sr_model="srcnn", benchmark="synth",
                            config={"recipe": "cpu", "data": DATA, "steps": 10}, git_commit="abc1234",
                            checkpoint_sha256="f" * 64)
    ids = {"train": train}
    for model, (ppocr, crnn, psnr) in NUMBERS.items():
        tags = {"label": HOSTILE} if model == "vdsr" else {}
        ids[model] = store.start_run(
            kind="eval", status="finished", sr_model=model, benchmark="synth", protocol="clean", comparable=True,
            config={"data": DATA, "tags": tags, "judge_weights_sha256": {"ppocr": "e" * 64}},
            parent_id=train if model == "srcnn" else None, git_commit="abc1234", seed=0)
        rows = [ResultRow(s, "ppocr", "accuracy", ppocr, n_samples=4) for s in ("easy", "medium", "hard", "all")]
        rows += [ResultRow(s, "ppocrv2", "accuracy", crnn, n_samples=4) for s in ("easy", "medium", "hard", "all")]
        rows += [ResultRow("all", "-", "psnr", psnr), ResultRow("all", "-", "ssim", 0.7)]
        store.add_results(ids[model], rows)
    # Better but not comparable: neither the leaderboard nor the comparable report may show it.
    ids["incomparable"] = store.start_run(kind="eval", status="finished", sr_model="srcnn", benchmark="synth",
                                          comparable=False, config={"data": DATA})
    store.add_results(ids["incomparable"], [ResultRow("all", "ppocr", "accuracy", 0.99)])
    return ids


class _Cells(HTMLParser):
    """Rows of the table with id ``table_id`` as text, and every src/href of the page."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.inside, self.rows, self.links, self.tags = table_id, False, [], [], []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "table":
            self.inside = a.get("id") == self.table_id
        if self.inside:
            self.tags.append(tag)
            if tag == "tr":
                self.rows.append([])
            elif tag == "td":
                self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside and self.rows and self.tags[-1] in ("td", "a"):
            self.rows[-1][-1] += data


def _parse(path: Path, table_id: str) -> _Cells:
    p = _Cells(table_id)
    p.feed(path.read_text(encoding="utf-8"))
    return p


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """Built once (the image grid runs every model and judge) for the file and the browser checks."""
    tmp = tmp_path_factory.mktemp("html-site")
    with pytest.MonkeyPatch.context() as mp:  # conftest's isolated home is per test; this is per module
        mp.setenv("TZBENCH_HOME", str(tmp / "home"))
        store = Store(f"sqlite:///{tmp / 'tz.db'}")
        ids = _fill(store)
        build_site(store, tzbench.get_catalog(), "synth", tmp / "site", grid_samples=2)
    return tmp / "site", ids


def test_site_pages_show_the_store(site: tuple[Path, dict[str, int]]) -> None:
    root, ids = site
    index = _parse(root / "index.html", "leaderboard-synth-clean")
    board = [r for r in index.rows if r]
    assert [r[1] for r in board] == ["srcnn", "vdsr", "bicubic"]  # ranked by ppocr; the incomparable run is out
    assert [(r[2], r[3], r[4], r[5]) for r in board] == [
        (str(ids["srcnn"]), "55.00", "25.00", "21.50"), (str(ids["vdsr"]), "50.00", "35.00", "22.00"),
        (str(ids["bicubic"]), "40.00", "20.00", "20.10")]
    text = (root / "index.html").read_text(encoding="utf-8")
    assert "benchmark synth · clean protocol" in text and "ranked by <b>ppocr</b>" in text
    page = root / "synth-comparable-clean" / "index.html"
    report = _parse(page, "report")
    assert [r[0] for r in report.rows if r] == ["bicubic", "srcnn", HOSTILE]  # the paper's row order
    assert "<i>" not in page.read_text(encoding="utf-8") and "vdsr &lt;i&gt;x&lt;/i&gt; &amp; co" in page.read_text()
    assert "i" not in report.tags
    # Only relative links inside the site: nothing to fetch at view time.
    for path in root.rglob("*.html"):
        for link in _parse(path, "").links:
            assert not re.match(r"^[a-z]+:|^/|^//", link), f"{path}: {link}"
            assert (path.parent / link.split("#")[0]).resolve().is_file(), f"{path}: broken link {link}"
    imgs = sorted(p.name for p in (root / "synth-comparable-clean").glob("*.png"))
    assert imgs == ["fig2_ppocr.png", "fig2_ppocrv2.png", "grid_hard.png"]
    run = (root / "runs" / f"{ids['srcnn']}.html").read_text(encoding="utf-8")
    assert f'href="{ids["train"]}.html"' in run and "cpu (of train run" in run and "abc1234" in run
    assert "e" * 64 in run and "n_test: 4" in run  # judge weights sha256; the config as YAML
    assert "f" * 64 in (root / "runs" / f"{ids['train']}.html").read_text(encoding="utf-8")


def test_builds_add_pages_and_never_take_a_foreign_folder(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'tz.db'}")
    _fill(store)
    other = Store(f"sqlite:///{tmp_path / 'tz2.db'}")  # a second benchmark in the same site
    run = other.start_run(kind="eval", status="finished", sr_model="bicubic", benchmark="wild", comparable=True,
                          config={"data": DATA})
    other.add_results(run, [ResultRow("all", "ppocr", "accuracy", 0.3)])
    catalog = tzbench.get_catalog()
    build_site(store, catalog, "synth", tmp_path / "site", grid_samples=0)
    build_site(other, catalog, "wild", tmp_path / "site", grid_samples=0)
    pages = json.loads((tmp_path / "site" / "site.json").read_text())["pages"]
    assert list(pages) == ["synth-comparable-clean", "wild-comparable-clean"]
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert 'href="synth-comparable-clean/index.html"' in index and 'href="wild-comparable-clean/index.html"' in index
    assert "benchmark wild · clean protocol" in index

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "index.html").write_text("my page")
    with pytest.raises(ConfigError, match="not a tzbench report"):
        build_site(store, catalog, "synth", mine, grid_samples=0)
    assert (mine / "index.html").read_text() == "my page" and sorted(p.name for p in mine.iterdir()) == ["index.html"]
    (tmp_path / "site" / "site.json").write_text("{not json")
    with pytest.raises(ConfigError, match="site.json"):
        build_site(store, catalog, "synth", tmp_path / "site", grid_samples=0)


def test_report_cli_needs_an_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tzbench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["report", "--db", f"sqlite:///{tmp_path / 'tz.db'}"])
    assert exc.value.code == 2 and "--html DIR" in capsys.readouterr().err
    store = Store(f"sqlite:///{tmp_path / 'tz.db'}")
    _fill(store)
    main(["report", "--db", store.url, "--html", str(tmp_path / "site"), "--grid-samples", "0"])
    assert (tmp_path / "site" / "synth-comparable-clean" / "index.html").is_file()
    assert "open " in capsys.readouterr().out


def test_reproduce_report_refuses_a_foreign_folder_before_training(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from tzbench.cli import main

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "index.html").write_text("my page")
    db = f"sqlite:///{tmp_path / 'tz.db'}"
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "table4", "--budget", "smoke", "--only", "srcnn", "--report", str(tmp_path / "out"),
              "--db", db, "--no-progress"])
    assert exc.value.code == 2 and "not a tzbench report" in capsys.readouterr().err
    assert Store(db).list_runs() == [] and (tmp_path / "out" / "index.html").read_text() == "my page"


def _chromium() -> tuple[str, str]:
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("no chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver; .ci/run "
                    "installs them)")
    return browser, driver


def test_site_in_headless_chromium(site: tuple[Path, dict[str, int]], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extra")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    browser, driver_path = _chromium()
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never try the network
    root, ids = site
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        def column(name: str) -> list[str]:
            table = driver.find_element(By.ID, "leaderboard-synth-clean")
            heads = [h.text.strip(" ↕▲▼") for h in table.find_elements(By.CSS_SELECTOR, "thead th")]
            i = heads.index(name)
            return [tr.find_elements(By.TAG_NAME, "td")[i].text for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")]

        def click(name: str) -> None:
            table = driver.find_element(By.ID, "leaderboard-synth-clean")
            next(h for h in table.find_elements(By.CSS_SELECTOR, "thead th button") if h.text.strip(" ↕▲▼") == name).click()

        driver.get((root / "index.html").as_uri())
        assert column("model") == ["srcnn", "vdsr", "bicubic"]
        assert column("ppocr") == ["55.00", "50.00", "40.00"]
        click("ppocrv2")
        assert column("model") == ["bicubic", "srcnn", "vdsr"]  # ascending ppocrv2
        click("ppocrv2")
        assert column("ppocrv2") == ["35.00", "25.00", "20.00"]
        click("model")
        assert column("model") == ["bicubic", "srcnn", "vdsr"]
        shot = tmp_path / "report-index.png"
        driver.save_screenshot(str(shot))

        driver.get((root / "synth-comparable-clean" / "index.html").as_uri())
        imgs = driver.find_elements(By.TAG_NAME, "img")
        widths = driver.execute_script("return Array.from(document.images).map(i => i.complete && i.naturalWidth)")
        assert len(imgs) == 3 and all(w > 0 for w in widths), widths
        labels = [tr.find_element(By.TAG_NAME, "td").text for tr in driver.find_elements(By.CSS_SELECTOR, "#report tbody tr")]
        assert labels == ["bicubic", "srcnn", HOSTILE]
        driver.save_screenshot(str(tmp_path / "report-page.png"))

        driver.find_element(By.LINK_TEXT, "srcnn").click()  # the row's run page, then the training it came from
        assert driver.find_element(By.TAG_NAME, "h1").text == f"Run {ids['srcnn']} · eval · srcnn"
        driver.find_element(By.PARTIAL_LINK_TEXT, f"{ids['train']} (train srcnn)").click()
        assert "cpu" in driver.find_element(By.CSS_SELECTOR, "dl.kv").text
        # Nothing but files from the site was loaded.
        urls = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert all(u.startswith("file://") for u in urls), urls
    finally:
        driver.quit()
    print(f"screenshot: {shot}")
    if os.environ.get("TZBENCH_SCREENSHOT"):  # how docs/report-screenshot.png is refreshed
        shutil.copy(shot, os.environ["TZBENCH_SCREENSHOT"])
