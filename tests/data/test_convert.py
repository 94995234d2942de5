"""Converters: images -> LMDB -> images is byte-identical; inspect finds every bad sample;
the ``tzbench data`` commands work and fail loudly."""

from __future__ import annotations

from pathlib import Path

import lmdb
import numpy as np
import pytest
import torch
import typer
from PIL import Image
from typer.testing import CliRunner

from tzbench.data.convert import export_lmdb, inspect_lmdb, make_lmdb, write_synth_lmdb
from tzbench.data.folder import read_labels_tsv
from tzbench.data.synth import SynthSource
from tzbench.data import PairDataset
from tzbench_textzoom.plugin import register_commands
from tzbench_textzoom.textzoom import TextZoomDataset

from conftest import encode, make_samples, random_crop

LABELS = ["Hello", 'say \\"hi\\"', "back\\\\slash", "Straße", "x", "###"]


def _image_folder(root: Path, with_lr: bool) -> Path:
    rng = np.random.default_rng(0)
    lines = []
    for i, label in enumerate(LABELS):
        rel = f"images/sub{i % 2}/w{i}.{'jpg' if i % 3 == 0 else 'png'}"
        fmt = "JPEG" if rel.endswith("jpg") else "PNG"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(encode(random_crop(rng, 24 + i, 70 + 9 * i), fmt))
        if with_lr:
            (root / "lr" / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / "lr" / rel).write_bytes(encode(random_crop(rng, 12, 40), "PNG"))
        lines.append(f"{rel}\t{label}\n")
    (root / "labels.tsv").write_text("".join(lines), encoding="utf-8")
    return root


def _all_items(path: Path) -> dict[bytes, bytes]:
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        items = dict(txn.cursor().iternext())
    env.close()
    return items


def test_round_trip_images_lmdb_images_is_byte_identical(tmp_path: Path) -> None:
    src = _image_folder(tmp_path / "src", with_lr=True)
    n = make_lmdb(src, src / "labels.tsv", tmp_path / "db", lr_dir=src / "lr")
    assert n == len(LABELS)
    report = export_lmdb(tmp_path / "db", tmp_path / "out")
    assert report.count == n and report.bad_samples == []
    rows_in = read_labels_tsv(src / "labels.tsv")
    rows_out = read_labels_tsv(tmp_path / "out" / "labels.tsv")
    assert [(r.path, r.label) for r in rows_out] == [(r.path, r.label) for r in rows_in]
    assert rows_in[1].label == 'say "hi"' and rows_in[2].label == "back\\slash"
    for r in rows_in:
        assert (tmp_path / "out" / "hr" / r.path).read_bytes() == (src / r.path).read_bytes()
        assert (tmp_path / "out" / "lr" / r.path).read_bytes() == (src / "lr" / r.path).read_bytes()
    # and back: the exported folder rebuilds exactly the same LMDB
    make_lmdb(tmp_path / "out" / "hr", tmp_path / "out" / "labels.tsv", tmp_path / "db2", lr_dir=tmp_path / "out" / "lr")
    assert _all_items(tmp_path / "db2") == _all_items(tmp_path / "db")


def test_lmdb_without_names_exports_and_rebuilds(raw_lmdb, tmp_path: Path) -> None:
    samples = make_samples(3, 4)
    raw_lmdb(tmp_path / "db", samples)
    export_lmdb(tmp_path / "db", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "hr").iterdir()) == [
        "000000001.png", "000000002.png", "000000003.png"]
    make_lmdb(tmp_path / "out" / "hr", tmp_path / "out" / "labels.tsv", tmp_path / "db2", lr_dir=tmp_path / "out" / "lr")
    a, b = _all_items(tmp_path / "db"), _all_items(tmp_path / "db2")
    assert {k: v for k, v in b.items() if not k.startswith(b"name-")} == a


@pytest.mark.parametrize("lr_from", ["bicubic", "hard"])
def test_hr_only_folder_gets_made_lr(tmp_path: Path, lr_from: str) -> None:
    src = _image_folder(tmp_path / "src", with_lr=False)
    make_lmdb(src, src / "labels.tsv", tmp_path / "db", lr_from=lr_from)
    (tmp_path / "tz" / "test").mkdir(parents=True)
    (tmp_path / "db").rename(tmp_path / "tz" / "test" / "easy")
    ds = TextZoomDataset(root=str(tmp_path / "tz")).load("test", "easy")
    assert len(ds) == len(LABELS)
    lr = ds[0]["lr"].permute(1, 2, 0).numpy()
    bicubic = np.asarray(Image.fromarray(ds[0]["hr"].permute(1, 2, 0).numpy()).resize((64, 16), Image.BICUBIC))
    assert (lr == bicubic).all() == (lr_from == "bicubic")


def test_make_lmdb_refuses_missing_images(tmp_path: Path) -> None:
    src = _image_folder(tmp_path / "src", with_lr=False)
    (src / "labels.tsv").write_text("images/none.png\tword\n", encoding="utf-8")
    from tzbench.data import DatasetError

    with pytest.raises(DatasetError, match=r"labels.tsv:1: image 'images/none.png' not found"):
        make_lmdb(src, src / "labels.tsv", tmp_path / "db")


def test_inspect_reports_every_bad_sample_and_writes_a_sheet(raw_lmdb, tmp_path: Path) -> None:
    samples = [list(s) for s in make_samples(6, 3)]
    samples[1][0] = b"broken"
    samples[2][1] = None
    samples[3][2] = b""
    raw_lmdb(tmp_path / "db", [tuple(s) for s in samples], num_samples=7)
    report = inspect_lmdb(tmp_path / "db", sheet=tmp_path / "sheet.png", n=8)
    assert report.num_samples == 7 and report.label_keys == 6 and report.ok == 3
    bad = {b.key: b.kind for b in report.bad_samples}
    assert bad == {"num-samples": "count_mismatch", "image_hr-000000002": "undecodable",
                   "image_lr-000000003": "missing_key", "label-000000004": "empty_label",
                   "image_hr-000000007": "missing_key"}
    assert sum(report.hr_sizes.values()) == 3 and report.formats["png"] == 6
    assert set(report.charset) <= set("HelloWORLD!e-mailcafédon'tKelvin100%exit")
    assert Image.open(tmp_path / "sheet.png").size[0] > 256
    d = report.to_dict()
    assert d["ok"] == 3 and len(d["bad_samples"]) == 5
    assert "BAD image_hr-000000002" in report.summary()


def test_write_synth_lmdb_matches_the_synth_source(tmp_path: Path) -> None:
    write_synth_lmdb(tmp_path / "tz" / "test" / "hard", 4, subset="hard", seed=3)
    from_lmdb = TextZoomDataset(root=str(tmp_path / "tz")).load("test", "hard")
    direct = PairDataset(SynthSource("test", "hard", range(4), seed=3))
    assert from_lmdb.labels == direct.labels
    for i in range(4):
        assert torch.equal(from_lmdb[i]["hr"], direct[i]["hr"])
        assert torch.equal(from_lmdb[i]["lr"], direct[i]["lr"])


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """tzbench (test harness)."""

    register_commands(app)
    return app


def test_cli_data_commands(raw_lmdb, tmp_path: Path) -> None:
    runner = CliRunner()
    app = _app()
    r = runner.invoke(app, ["data", "synth", str(tmp_path / "s"), "--n", "3", "--subset", "easy"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["data", "inspect", str(tmp_path / "s"), "--sheet", str(tmp_path / "s.png"), "--n", "3"])
    assert r.exit_code == 0, r.output
    assert "decodable 3, bad 0" in r.output and (tmp_path / "s.png").is_file()
    r = runner.invoke(app, ["data", "export", str(tmp_path / "s"), str(tmp_path / "e")])
    assert r.exit_code == 0 and (tmp_path / "e" / "labels.tsv").is_file()
    r = runner.invoke(app, ["data", "make-lmdb", str(tmp_path / "e" / "hr"), str(tmp_path / "e" / "labels.tsv"),
                            str(tmp_path / "m"), "--lr-dir", str(tmp_path / "e" / "lr")])
    assert r.exit_code == 0, r.output
    assert _all_items(tmp_path / "m") == {k: v for k, v in _all_items(tmp_path / "s").items()} | {
        k: v for k, v in _all_items(tmp_path / "m").items() if k.startswith(b"name-")}
    samples = make_samples(2, 1)
    raw_lmdb(tmp_path / "bad", [(b"junk", samples[0][1], samples[0][2]), samples[1]])
    r = runner.invoke(app, ["data", "inspect", str(tmp_path / "bad")])
    assert r.exit_code == 1 and "image_hr-000000001" in r.output
    r = runner.invoke(app, ["data", "inspect", str(tmp_path / "nothing-here")])
    assert r.exit_code != 0


def test_make_lmdb_into_an_existing_lmdb_is_refused_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tzbench.cli import main

    main(["data", "synth", str(tmp_path / "s"), "--n", "3", "--subset", "easy"])
    main(["data", "export", str(tmp_path / "s"), str(tmp_path / "e")])
    before = _all_items(tmp_path / "s")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["data", "make-lmdb", str(tmp_path / "e" / "hr"), str(tmp_path / "e" / "labels.tsv"), str(tmp_path / "s"),
              "--lr-dir", str(tmp_path / "e" / "lr")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "an LMDB already exists at" in err and "Traceback" not in err
    assert _all_items(tmp_path / "s") == before


def test_inspect_reports_a_label_that_is_not_utf8_like_eval_does(raw_lmdb, tmp_path: Path) -> None:
    from tzbench.data.convert import inspect_lmdb

    samples = make_samples(3, 4)
    samples[1] = (samples[1][0], samples[1][1], b"caf\xe9")  # Latin-1, not UTF-8
    raw_lmdb(tmp_path / "l1", samples)
    report = inspect_lmdb(tmp_path / "l1")
    assert report.ok == 2 and [(b.key, b.kind) for b in report.bad_samples] == [("label-000000002", "undecodable")]
    assert "not UTF-8" in report.bad_samples[0].reason
