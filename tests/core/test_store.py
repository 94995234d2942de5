"""Store: provenance rows, leaderboard semantics, bad URLs, concurrent writers; on SQLite and on
PostgreSQL (a throw-away cluster, tests/pg_server.py) wherever the behaviour is the backend's."""

from __future__ import annotations

import multiprocessing as mp
import os
import stat
from pathlib import Path

import pytest

from tzbench.db import Result, Run, Store, StoreError
from tzbench.db.store import ResultRow


def _eval_run(store: Store, model: str, accs: dict[str, float], psnr: float, *, comparable: bool = True,
              protocol: str = "clean", benchmark: str = "synth", status: str = "finished") -> int:
    rid = store.start_run(kind="eval", sr_model=model, benchmark=benchmark, protocol=protocol, comparable=comparable)
    rows = [ResultRow(s, "ppocr", "accuracy", v, n_samples=100) for s, v in accs.items()]
    rows.append(ResultRow("all", "-", "psnr", psnr, n_samples=300))
    store.add_results(rid, rows)
    store.finish_run(rid, status)
    return rid


def test_leaderboard_best_run_per_model_columns_from_that_run(store_url: str) -> None:
    s = Store(store_url)
    a1 = _eval_run(s, "srcnn", {"hard": 0.30, "all": 0.50}, 21.0)
    a2 = _eval_run(s, "srcnn", {"hard": 0.40, "all": 0.45}, 22.0)
    b = _eval_run(s, "tsrn", {"hard": 0.35, "all": 0.60}, 20.0)
    _eval_run(s, "rdn", {"hard": 0.90, "all": 0.90}, 30.0, comparable=False)
    _eval_run(s, "vdsr", {"hard": 0.95, "all": 0.95}, 30.0, protocol="legacy")
    _eval_run(s, "edsr", {"hard": 0.99, "all": 0.99}, 30.0, status="failed")

    overall = s.leaderboard("synth", "all")
    assert [(r.sr_model, r.run_id) for r in overall] == [("tsrn", b), ("srcnn", a1)]
    assert overall[1].values == {"acc_hard": 0.30, "acc_all": 0.50, "psnr": 21.0}  # all from run a1

    hard = s.leaderboard("synth", "hard")
    assert [(r.sr_model, r.run_id) for r in hard] == [("srcnn", a2), ("tsrn", b)]
    assert hard[0].values["acc_all"] == 0.45

    assert [r.sr_model for r in s.leaderboard("synth", "all", protocol="legacy")] == ["vdsr"]
    assert "rdn" in [r.sr_model for r in s.leaderboard("synth", "all", include_incomparable=True)]
    assert [r.sr_model for r in s.leaderboard("synth", metric="psnr")] == ["srcnn", "tsrn"]


def test_leaderboard_psnr_and_ssim_are_of_the_shown_subset(store_url: str) -> None:
    s = Store(store_url)
    rid = _eval_run(s, "srcnn", {"hard": 0.30, "all": 0.50}, 21.0)
    s.add_results(rid, [ResultRow("hard", "-", "psnr", 19.0, n_samples=100),
                        ResultRow("hard", "-", "ssim", 0.6, n_samples=100),
                        ResultRow("all", "-", "ssim", 0.7, n_samples=300)])
    assert {k: v for k, v in s.leaderboard("synth", "hard")[0].values.items() if k in ("psnr", "ssim")} == \
        {"psnr": 19.0, "ssim": 0.6}
    assert {k: v for k, v in s.leaderboard("synth", "all")[0].values.items() if k in ("psnr", "ssim")} == \
        {"psnr": 21.0, "ssim": 0.7}


def test_results_unique_and_replace(store_url: str) -> None:
    s = Store(store_url)
    rid = s.start_run(kind="train", sr_model="srcnn", benchmark="synth")
    s.add_results(rid, [ResultRow("val", "-", "psnr", 20.0, step=100)])
    s.add_results(rid, [ResultRow("val", "-", "psnr", 21.0, step=100)])  # e.g. a resumed run re-validating
    rows = s.results(rid, step=None)
    assert [(r.step, r.value) for r in rows] == [(100, 21.0)]


def test_delete_run_removes_results(store_url: str) -> None:
    s = Store(store_url)
    rid = _eval_run(s, "srcnn", {"all": 0.5}, 20.0)
    s.delete_run(rid)
    assert s.count(Run) == 0 and s.count(Result) == 0
    with pytest.raises(StoreError, match=f"no run with id {rid}"):
        s.get_run(rid)


def test_wal_mode(db_url: str) -> None:
    s = Store(db_url)
    with s.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_unwritable_and_bad_urls(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    with pytest.raises(StoreError, match="not a database URL"):
        Store("not a url")
    if os.geteuid() != 0:  # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        with pytest.raises(StoreError, match="not writable"):
            Store(f"sqlite:///{ro / 'x.db'}")


def test_dead_running_run_is_reaped(store_url: str) -> None:
    s = Store(store_url)
    proc = mp.get_context("spawn").Process(target=os.getpid)
    proc.start()
    proc.join()
    rid = s.start_run(kind="train", sr_model="srcnn", benchmark="synth", pid=proc.pid)
    alive = s.start_run(kind="train", sr_model="srcnn", benchmark="synth")  # this process
    assert s.reap_dead_runs() == [rid]
    assert s.get_run(rid).status == "failed" and s.get_run(alive).status == "running"


def _writer(url: str, worker: int, n_runs: int) -> None:
    s = Store(url)
    for i in range(n_runs):
        rid = s.start_run(kind="eval", sr_model=f"m{worker}", benchmark="synth", comparable=True)
        s.add_results(rid, [ResultRow(sub, "ppocr", "accuracy", i / 10, n_samples=1) for sub in ("easy", "medium", "hard")])
        s.finish_run(rid)


def test_eight_concurrent_writers_lose_nothing(store_url: str) -> None:
    Store(store_url)  # create the schema once, as the CLI would have
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(store_url, w, 10)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    s = Store(store_url)
    assert s.count(Run) == 80 and s.count(Result) == 240
    assert all(r.status == "finished" for r in s.list_runs(limit=100))


def _first_user(url: str, worker: int, barrier: object) -> None:
    barrier.wait(60)  # type: ignore[attr-defined]  # every process opens the new DB at once
    _writer(url, worker, 2)


def test_concurrent_first_use_of_a_new_database(store_url: str) -> None:
    """Several processes creating one new DB's tables at once: one used to fail with
    "table runs already exists" (create_all was retried only on "locked")."""
    url = store_url
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(6)
    procs = [ctx.Process(target=_first_user, args=(url, w, barrier)) for w in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
    assert [p.exitcode for p in procs] == [0] * 6
    assert Store(url).count(Run) == 12 and Store(url).count(Result) == 36


def test_leaderboard_shows_one_column_per_judge_from_the_ranked_run(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tzbench.cli import main

    s = Store(store_url)
    rid = _eval_run(s, "tsrn", {"hard": 0.40, "all": 0.60}, 23.0)
    s.add_results(rid, [ResultRow("hard", "ppocrv2", "accuracy", 0.28, n_samples=100),
                        ResultRow("hard", "crnn_tz", "accuracy", 0.22, n_samples=100)])
    other = _eval_run(s, "bicubic", {"hard": 0.43, "all": 0.63}, 22.0)
    s.add_results(other, [ResultRow("hard", "ppocrv2", "accuracy", 0.10, n_samples=100)])
    (tsrn,) = [r for r in s.leaderboard("synth", "hard") if r.sr_model == "tsrn"]
    assert tsrn.judges == {"ppocr": {"hard": 0.40, "all": 0.60}, "ppocrv2": {"hard": 0.28}, "crnn_tz": {"hard": 0.22}}

    main(["leaderboard", "--db", store_url, "--subset", "hard", "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == ["bicubic", "tsrn"]
    want = {"ppocr": 0.40, "ppocrv2": 0.28, "crnn_tz": 0.22, "subset": "hard", "benchmark": "synth", "protocol": "clean"}
    assert {k: rows[1][k] for k in want} == want
    assert rows[0]["crnn_tz"] is None  # not read by that judge: empty, never another run's value
    main(["leaderboard", "--db", store_url, "--subset", "hard", "--format", "csv"])
    assert capsys.readouterr().out.splitlines()[0] == "rank,model,run,ppocr,ppocrv2,crnn_tz,psnr,ssim,n"
    main(["leaderboard", "--db", store_url, "--view", "subsets", "--recognizer", "ppocrv2", "--subset", "hard",
          "--format", "csv"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("rank,model,run,acc_easy") and lines[1].startswith("1,tsrn,")  # ranked by ppocrv2


def test_a_run_still_running_is_not_deleted(store_url: str) -> None:
    s = Store(store_url)
    live = s.start_run(kind="train", sr_model="srcnn", benchmark="synth")  # this process: alive
    s.add_results(live, [ResultRow("val", "-", "psnr", 20.0, step=100)])
    with pytest.raises(StoreError, match=f"run {live} is still running \\(pid {os.getpid()} on .*nothing deleted"):
        s.delete_run(live)
    assert len(s.results(live, step=None)) == 1
    remote = s.start_run(kind="train", sr_model="srcnn", benchmark="synth", host="another-machine", pid=1)
    with pytest.raises(StoreError, match="still running \\(pid 1 on another-machine\\)"):
        s.delete_run(remote)
    s.finish_run(live, "interrupted")
    s.delete_run(live)  # a stopped run goes
    with pytest.raises(StoreError, match=f"no run with id {live}"):
        s.get_run(live)


def test_a_lost_runs_table_never_hands_old_results_to_new_runs(store_url: str) -> None:
    from sqlalchemy import text

    s = Store(store_url)
    old = _eval_run(s, "tsrn", {"easy": 0.5, "medium": 0.4, "hard": 0.3}, 22.0)
    with s.engine.begin() as conn:
        if s.is_sqlite:
            conn.execute(text("PRAGMA foreign_keys=OFF"))
            conn.execute(text("DROP TABLE runs"))
        else:  # the foreign key and the leaderboard view go with it
            conn.execute(text("DROP TABLE runs CASCADE"))
    s = Store(store_url)  # recreates an empty runs table; the old results stay
    new = s.start_run(kind="eval", sr_model="srcnn", benchmark="synth")
    s.add_results(new, [ResultRow("easy", "ppocr", "accuracy", 0.9, n_samples=1)])
    assert new > old and [r.subset for r in s.results(new)] == ["easy"]
    assert s.count(Result) == 5  # nothing lost
    later = s.start_run(kind="eval", sr_model="vdsr", benchmark="synth")  # the id sequence followed
    assert later == new + 1


def test_the_leaderboard_view_ranks_like_store_leaderboard(store_url: str) -> None:
    """datasette / psql users see the same ranking as `tzbench leaderboard` (SQL view `leaderboard`)."""
    from sqlalchemy import text

    s = Store(store_url)
    _eval_run(s, "srcnn", {"hard": 0.30, "all": 0.50}, 21.0)
    _eval_run(s, "srcnn", {"hard": 0.40, "all": 0.45}, 22.0)
    _eval_run(s, "tsrn", {"hard": 0.35, "all": 0.60}, 20.0)
    _eval_run(s, "vdsr", {"hard": 0.35, "all": 0.10}, 20.0)
    _eval_run(s, "rdn", {"hard": 0.90, "all": 0.90}, 30.0, comparable=False)
    _eval_run(s, "edsr", {"hard": 0.99, "all": 0.99}, 30.0, status="failed")
    with s.engine.connect() as conn:
        for subset in ("all", "hard"):
            got = conn.execute(text("SELECT sr_model, run_id, rank FROM leaderboard WHERE benchmark='synth' AND "
                                    "protocol='clean' AND subset=:s AND recognizer='ppocr' AND metric='accuracy' "
                                    "ORDER BY rank, sr_model"), {"s": subset}).all()
            want = s.leaderboard("synth", subset, "ppocr")
            assert sorted((m, r) for m, r, _ in got) == sorted((w.sr_model, w.run_id) for w in want)
            assert [m for m, _, _ in got][0] == want[0].sr_model
        ranks = dict(conn.execute(text("SELECT sr_model, rank FROM leaderboard WHERE subset='hard' AND "
                                       "recognizer='ppocr'")).all())
    assert ranks == {"srcnn": 1, "tsrn": 2, "vdsr": 2}  # a tie shares its rank
    Store(store_url)  # reopening keeps the view


def test_leaderboard_ties_share_a_rank_and_incomparable_rows_say_why(store_url: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tzbench.cli import main

    s = Store(store_url)
    for model in ("srcnn", "vdsr", "edsr"):
        _eval_run(s, model, {"all": 0.0}, 20.0)
    _eval_run(s, "tsrn", {"all": 0.5}, 20.0)
    odd = _eval_run(s, "rdn", {"all": 0.0}, 20.0, comparable=False)
    s.update_run(odd, message="max_samples limits the test set")
    main(["leaderboard", "--db", store_url, "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    assert [(r["model"], r["rank"]) for r in rows][0] == ("tsrn", 1)
    assert sorted(r["rank"] for r in rows[1:]) == [2, 2, 2]  # three zeros tie (they were ranks 2, 3, 4)
    main(["leaderboard", "--db", store_url, "--format", "csv", "--include-incomparable"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(",comparable")
    assert [ln for ln in lines if ",rdn," in ln][0].endswith("no: max_samples limits the test set")


def test_a_database_missing_a_column_is_refused_on_opening(tmp_path: Path) -> None:
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'tz.db'}"
    s = Store(url)
    _eval_run(s, "tsrn", {"all": 0.5}, 22.0)
    with s.engine.begin() as conn:
        conn.execute(text("DROP VIEW leaderboard"))
        conn.execute(text("ALTER TABLE runs DROP COLUMN comparable"))
    with pytest.raises(StoreError, match="table 'runs' lacks column\\(s\\) comparable .*nothing was changed"):
        Store(url)


def test_checkpoint_header_that_is_not_a_json_object_is_named(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from tzbench.runner.checkpoint import CheckpointError, read_checkpoint_meta

    for raw, expected in (("[1, 2]", "holds a list, not a JSON object"), ("{oops", "not valid JSON")):
        f = tmp_path / "odd.safetensors"
        save_file({"w": torch.zeros(1)}, str(f), metadata={"tzbench": raw})
        with pytest.raises(CheckpointError, match=expected):
            read_checkpoint_meta(f)
