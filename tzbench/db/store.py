"""The Store: the one place that reads and writes runs and results."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, delete, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from tzbench.db.models import FINAL_STEP, NO_RECOGNIZER, Base, Result, Run
from tzbench.errors import StoreError

__all__ = ["DEFAULT_DB_URL", "DIED_MESSAGE", "Store", "StoreError", "ResultRow", "LeaderboardRow", "resolve_db_url", "utcnow", "pid_alive"]

DEFAULT_DB_URL = "sqlite:///tzbench.db"
T = TypeVar("T")


#: The message of a run the store found dead (its process gone); such a run may be resumed.
DIED_MESSAGE = "the process died without finishing the run"


# StoreError is defined in tzbench.errors (torch-free) and re-exported here.


def utcnow() -> datetime:
    """Naive UTC now (SQLite stores naive datetimes)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def resolve_db_url(url: str | None = None) -> str:
    """``url`` if given, else ``$TZBENCH_DB``, else ``sqlite:///tzbench.db`` (working directory)."""
    return url or os.environ.get("TZBENCH_DB") or DEFAULT_DB_URL


@dataclass(frozen=True)
class ResultRow:
    """A result to record."""

    subset: str
    recognizer: str
    metric: str
    value: float
    step: int = FINAL_STEP
    n_samples: int = 0


@dataclass(frozen=True)
class LeaderboardRow:
    """The best comparable eval run of one model; every value comes from that run."""

    sr_model: str
    run_id: int
    score: float
    #: ``acc_<subset>`` of the ranking judge, and ``psnr`` / ``ssim`` on the leaderboard's subset.
    values: dict[str, float]
    n_samples: int
    provider: str
    finished_at: datetime | None
    #: Accuracy of every judge that read this run: ``{judge: {subset: value}}``.
    judges: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Whether the run is comparable (only ``include_incomparable`` lists others) and why not.
    comparable: bool = True
    reason: str = ""


def _check_sqlite_path(url: str) -> None:
    parsed = make_url(url)
    db = parsed.database
    if not db or db == ":memory:":
        return
    path = Path(db)
    parent = path.resolve().parent
    if not parent.is_dir():
        raise StoreError(f"cannot open database {url}: folder {parent} does not exist")
    if path.exists() and not os.access(path, os.W_OK):
        raise StoreError(f"cannot open database {url}: {path} is not writable")
    if not path.exists() and not os.access(parent, os.W_OK):
        raise StoreError(f"cannot open database {url}: folder {parent} is not writable")


class Store:
    """Runs and results in any SQLAlchemy database (SQLite with WAL by default)."""

    def __init__(self, url: str | None = None, create: bool = True) -> None:
        self.url = resolve_db_url(url)
        try:
            parsed = make_url(self.url)
        except ArgumentError as exc:
            raise StoreError(f"not a database URL: {self.url!r} ({exc})") from exc
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            _check_sqlite_path(self.url)
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 60}
        try:
            self.engine: Engine = create_engine(self.url, **kwargs)
        except Exception as exc:  # missing driver, bad URL
            raise StoreError(f"cannot open database {self.url}: {exc}") from exc
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if create:
            try:
                self._retry(lambda: Base.metadata.create_all(self.engine), creating=True)
                self._check_schema()
                self._retry(self._create_views, creating=True)
            except DatabaseError as exc:  # OperationalError, or a file that is not SQLite at all
                raise StoreError(f"cannot open database {self.url}: {exc.orig}") from None

    def _check_schema(self) -> None:
        """StoreError when an existing table lacks a column tzbench writes (another version's
        database, or one edited by hand): refused on opening, not mid-run."""
        from sqlalchemy import inspect as sa_inspect

        insp = sa_inspect(self.engine)
        for table in Base.metadata.sorted_tables:
            have = {c["name"] for c in insp.get_columns(table.name)}
            missing = [c.name for c in table.columns if c.name not in have]
            if missing:
                raise StoreError(f"{self.url}: table {table.name!r} lacks column(s) {', '.join(missing)} (a database "
                                 "of another tzbench version, or edited by hand); nothing was changed: use another --db")

    def _create_views(self) -> None:
        """The ``leaderboard`` view: :meth:`leaderboard`'s ranking in SQL, for datasette and psql."""
        create = "CREATE VIEW IF NOT EXISTS" if self.is_sqlite else "CREATE OR REPLACE VIEW"
        with self.engine.begin() as conn:
            conn.execute(text(f"{create} leaderboard AS {LEADERBOARD_SQL}"))

    # -- plumbing -----------------------------------------------------------------------
    def _retry(self, fn: Callable[[], T], attempts: int = 20, creating: bool = False) -> T:
        # SQLite's busy timeout covers most contention; a few retries cover lock upgrades that
        # SQLite refuses immediately (SQLITE_BUSY on a deferred transaction), and the race of
        # several processes creating a new database's tables at once (create_all checks, then
        # creates: the loser sees "table ... already exists", or on PostgreSQL a duplicate key in
        # its catalog, and, retried, finds them).
        for i in range(attempts):
            try:
                return fn()
            except (OperationalError, IntegrityError, ProgrammingError) as exc:
                msg = str(exc).lower()
                race = creating and ("already exists" in msg or "duplicate key" in msg)
                locked = isinstance(exc, OperationalError) and "locked" in msg
                if not (race or locked) or i == attempts - 1:
                    raise
                time.sleep(0.05 * (i + 1))
        raise AssertionError("unreachable")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success, rolled back on error."""
        with self._sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def _write(self, fn: Callable[[Session], T]) -> T:
        def attempt() -> T:
            with self.session() as s:
                return fn(s)

        return self._retry(attempt)

    # -- runs -----------------------------------------------------------------------------
    def start_run(self, **fields: Any) -> int:
        """Insert a run in status ``running``; returns its id."""
        fields.setdefault("status", "running")
        fields.setdefault("started_at", utcnow())
        fields.setdefault("host", socket.gethostname())
        fields.setdefault("pid", os.getpid())

        def fn(s: Session) -> int:
            run = Run(**fields)
            # Results whose run row is gone (a lost or hand-edited runs table) must never be
            # adopted by a new run that the database would give the same id.
            top_result = s.scalar(select(func.max(Result.run_id)))
            explicit = top_result is not None and top_result > (s.scalar(select(func.max(Run.id))) or 0)
            if explicit:
                run.id = top_result + 1
            s.add(run)
            s.flush()
            if explicit and not self.is_sqlite:  # PostgreSQL's serial does not follow an explicit id
                s.execute(text("SELECT setval(pg_get_serial_sequence('runs', 'id'), :v)"), {"v": run.id})
            return run.id

        return self._write(fn)

    def update_run(self, run_id: int, **fields: Any) -> None:
        """Set fields of a run."""

        def fn(s: Session) -> None:
            run = s.get(Run, run_id)
            if run is None:
                raise StoreError(f"no run with id {run_id} in {self.url}")
            for k, v in fields.items():
                setattr(run, k, v)

        self._write(fn)

    def finish_run(self, run_id: int, status: str = "finished", message: str | None = None, **fields: Any) -> None:
        """Mark a run finished/failed/interrupted."""
        self.update_run(run_id, status=status, finished_at=utcnow(), message=message, **fields)

    def add_results(self, run_id: int, rows: Iterable[ResultRow]) -> int:
        """Insert results; re-recording the same (subset, recognizer, metric, step) replaces it."""
        rows = list(rows)

        def fn(s: Session) -> int:
            for r in rows:
                existing = s.scalars(
                    select(Result).where(
                        Result.run_id == run_id,
                        Result.subset == r.subset,
                        Result.recognizer == r.recognizer,
                        Result.metric == r.metric,
                        Result.step == r.step,
                    )
                ).first()
                if existing is not None:
                    existing.value, existing.n_samples = float(r.value), r.n_samples
                else:
                    s.add(Result(run_id=run_id, subset=r.subset, recognizer=r.recognizer, metric=r.metric,
                                 value=float(r.value), step=r.step, n_samples=r.n_samples))
            return len(rows)

        try:
            return self._write(fn)
        except IntegrityError as exc:
            raise StoreError(f"cannot record results for run {run_id}: {exc.orig}") from exc

    def get_run(self, run_id: int) -> Run:
        """A run with its results loaded."""
        with self._sessions() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise StoreError(f"no run with id {run_id} in {self.url}")
            _ = list(run.results)
            return run

    def list_runs(self, kind: str | None = None, sr_model: str | None = None, limit: int = 50) -> list[Run]:
        """Most recent runs first."""
        q = select(Run).order_by(Run.id.desc()).limit(limit)
        if kind:
            q = q.where(Run.kind == kind)
        if sr_model:
            q = q.where(Run.sr_model == sr_model)
        with self._sessions() as s:
            return list(s.scalars(q))

    def delete_run(self, run_id: int) -> None:
        """Delete a run and its results; a run whose process is still alive is refused.

        A ``running`` row recorded on another host cannot be checked from here, so it is refused
        too (its process may be writing to it); stop the run, or let ``reap_dead_runs`` mark it.
        """

        def fn(s: Session) -> None:
            run = s.get(Run, run_id)
            if run is None:
                raise StoreError(f"no run with id {run_id} in {self.url}")
            if run.status == "running":
                local = run.host == socket.gethostname()
                if not local or run.pid is None or pid_alive(run.pid):
                    where = f"pid {run.pid} on {run.host}" if run.pid is not None else f"on {run.host}"
                    raise StoreError(f"run {run_id} is still running ({where}): stop it first (nothing deleted)")
            s.execute(delete(Result).where(Result.run_id == run_id))
            s.delete(run)

        self._write(fn)

    def reap_dead_runs(self) -> list[int]:
        """Mark ``running`` runs whose process on this host is gone as ``failed``."""
        host = socket.gethostname()
        with self._sessions() as s:
            candidates = list(s.scalars(select(Run).where(Run.status == "running", Run.host == host)))
        dead = [r.id for r in candidates if r.pid is not None and not pid_alive(r.pid)]
        for run_id in dead:
            self.finish_run(run_id, status="failed", message=DIED_MESSAGE)
        return dead

    def results(self, run_id: int, step: int | None = FINAL_STEP) -> list[Result]:
        """A run's results (final ones by default; ``step=None`` for all)."""
        q = select(Result).where(Result.run_id == run_id)
        if step is not None:
            q = q.where(Result.step == step)
        with self._sessions() as s:
            return list(s.scalars(q.order_by(Result.id)))

    def count(self, table: type[Base]) -> int:
        """Row count of a table (tests, diagnostics)."""
        with self._sessions() as s:
            return int(s.scalar(select(func.count()).select_from(table)) or 0)

    # -- leaderboard ------------------------------------------------------------------------
    def leaderboard(
        self,
        benchmark: str,
        subset: str = "all",
        recognizer: str | None = None,
        metric: str = "accuracy",
        protocol: str | None = "clean",
        include_incomparable: bool = False,
    ) -> list[LeaderboardRow]:
        """Best finished eval run per model by ``metric`` on ``subset``; columns from that run.

        A single window query ranks each model's runs; ties go to the earlier run.
        ``recognizer`` defaults to registry.yaml's ``selection_judge``.
        """
        if recognizer is None:
            from tzbench.registry import load_registry

            recognizer = load_registry().selection_judge
        rec = NO_RECOGNIZER if metric in ("psnr", "ssim") else recognizer
        ranked = (
            select(
                Run.id.label("run_id"),
                Run.sr_model,
                Result.value,
                func.row_number()
                .over(partition_by=Run.sr_model, order_by=(Result.value.desc(), Run.id.asc()))
                .label("rank"),
            )
            .join(Result, Result.run_id == Run.id)
            .where(
                Run.kind == "eval",
                Run.status == "finished",
                Run.benchmark == benchmark,
                Result.subset == subset,
                Result.recognizer == rec,
                Result.metric == metric,
                Result.step == FINAL_STEP,
            )
        )
        if protocol is not None:
            ranked = ranked.where(Run.protocol == protocol)
        if not include_incomparable:
            ranked = ranked.where(Run.comparable.is_(True))
        sub = ranked.subquery()
        best = select(sub.c.run_id, sub.c.sr_model, sub.c.value).where(sub.c.rank == 1).order_by(sub.c.value.desc())
        rows: list[LeaderboardRow] = []
        with self._sessions() as s:
            for run_id, model, score in s.execute(best):
                run = s.get(Run, run_id)
                values: dict[str, float] = {}
                judges: dict[str, dict[str, float]] = {}
                n = 0
                for r in s.scalars(select(Result).where(Result.run_id == run_id, Result.step == FINAL_STEP)):
                    if r.metric == "accuracy":
                        judges.setdefault(r.recognizer, {})[r.subset] = r.value
                    if r.metric == "accuracy" and r.recognizer == recognizer:
                        values[f"acc_{r.subset}"] = r.value
                        if r.subset == "all":
                            n = r.n_samples
                    elif r.metric in ("psnr", "ssim") and r.subset == subset:
                        values[r.metric] = r.value
                rows.append(LeaderboardRow(model, run_id, float(score), values, n, run.provider, run.finished_at,
                                           judges, bool(run.comparable), "" if run.comparable else run.message or ""))
        return rows


#: Best comparable finished eval run per model for every (benchmark, protocol, subset, judge,
#: metric), ranked; a tie in value shares a rank, and between one model's runs the earlier wins,
#: as in :meth:`Store.leaderboard`. PSNR/SSIM rows carry recognizer '-'.
LEADERBOARD_SQL = """
SELECT benchmark, protocol, subset, recognizer, metric, sr_model, run_id, value, n_samples,
       RANK() OVER (PARTITION BY benchmark, protocol, subset, recognizer, metric ORDER BY value DESC) AS rank
FROM (
    SELECT r.benchmark AS benchmark, r.protocol AS protocol, x.subset AS subset, x.recognizer AS recognizer,
           x.metric AS metric, r.sr_model AS sr_model, r.id AS run_id, x.value AS value, x.n_samples AS n_samples,
           ROW_NUMBER() OVER (PARTITION BY r.benchmark, r.protocol, x.subset, x.recognizer, x.metric, r.sr_model
                              ORDER BY x.value DESC, r.id ASC) AS pick
    FROM runs r JOIN results x ON x.run_id = r.id
    WHERE r.kind = 'eval' AND r.status = 'finished' AND r.comparable AND x.step = -1
) best
WHERE pick = 1
"""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
