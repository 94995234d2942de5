"""Run store under load: 16 concurrent writer processes on SQLite and on PostgreSQL.

Outside the default run (the pytest config ignores tests/bench). Run with

    python -m pytest tests/bench/test_bench_store.py --benchmark-only -o addopts="" -s

Each of ``WRITERS`` spawned processes opens the *same new* database at the same moment (a
barrier: the concurrent-first-use case, tables created by whoever wins), then records
``RUNS`` eval runs of 3 results each as the runner does (start, add results, finish). Printed
and kept in ``extra_info``: rows written, rows expected, rows lost, failed writers, wall time
and rows/s. The test fails on any lost row or failed writer. The PostgreSQL case needs the
server binaries (.ci/run installs Debian's postgresql); the cluster is a throw-away one
(tests/pg_server.py).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from tzbench.db import Result, Run, Store
from tzbench.db.store import ResultRow

WRITERS = 16
RUNS = 25


def _writer(url: str, worker: int, barrier: object, errors: object) -> None:
    try:
        barrier.wait(120)  # type: ignore[attr-defined]
        s = Store(url)
        for i in range(RUNS):
            rid = s.start_run(kind="eval", sr_model=f"m{worker}", benchmark="synth", comparable=True)
            s.add_results(rid, [ResultRow(sub, "ppocr", "accuracy", i / RUNS, n_samples=1)
                                for sub in ("easy", "medium", "hard")])
            s.finish_run(rid)
    except Exception as exc:  # noqa: BLE001 - counted and shown, never hidden
        errors.put(f"writer {worker}: {type(exc).__name__}: {exc}")  # type: ignore[attr-defined]
        raise


def _load(url: str) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    barrier, errors = ctx.Barrier(WRITERS), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, w, barrier, errors)) for w in range(WRITERS)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join(600)
    seconds = time.perf_counter() - t0  # includes the processes' start-up (imports)
    failed = sum(1 for p in procs if p.exitcode != 0)
    messages = []
    while not errors.empty():
        messages.append(errors.get())
    s = Store(url)
    runs, results = s.count(Run), s.count(Result)
    expected = WRITERS * RUNS * 4  # one run row and three result rows per run
    written = runs + results
    out = {"writers": WRITERS, "rows_expected": expected, "rows_written": written, "rows_lost": expected - written,
           "failed_writers": failed, "seconds": round(seconds, 2), "rows_per_s": round(written / seconds, 1)}
    print(f"\n{url.split(':')[0]}: {out}" + (f" errors: {messages[:3]}" if messages else ""))
    return out


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_writers(benchmark, backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:  # noqa: ANN001
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'load.db'}"
    else:
        url = request.getfixturevalue("pg_server").new_database()
    out = benchmark.pedantic(_load, args=(url,), rounds=1, iterations=1)
    benchmark.extra_info.update(out)
    assert out["rows_lost"] == 0 and out["failed_writers"] == 0
