"""Shared test fixtures: isolated home folder and database, no progress bars."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# Two cores on CI: keep torch from oversubscribing when pytest runs alongside other work.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN202
    home = tmp_path_factory.mktemp("tzbench-home")
    monkeypatch.setenv("TZBENCH_HOME", str(home))
    monkeypatch.setenv("TZBENCH_NO_PROGRESS", "1")
    monkeypatch.delenv("TZBENCH_DB", raising=False)
    monkeypatch.delenv("TZBENCH_DISABLE_PLUGINS", raising=False)
    # A test that falls back to the default store would write tzbench.db into the checkout
    # (CI found one): fail it, and leave the checkout as it was.
    default_db = Path.cwd() / "tzbench.db"
    existed = default_db.exists()
    yield
    if not existed and default_db.exists():
        default_db.unlink()
        pytest.fail(f"the test created {default_db}: pass --db (the db_url fixture) or chdir to tmp_path")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite database in a temporary folder."""
    return f"sqlite:///{tmp_path / 'tz.db'}"


@pytest.fixture(scope="session")
def pg_server():  # noqa: ANN201 - a tests/pg_server.PgServer
    """A throw-away PostgreSQL cluster for the session (skips when the server is not installed)."""
    from pg_server import start_server

    try:
        server = start_server()
    except FileNotFoundError as exc:
        pytest.skip(f"{exc}; the SQLite half of these tests ran")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each backend the run store supports: SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tz.db'}"
    return request.getfixturevalue("pg_server").new_database()


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """Small tensors: two OpenMP threads on a busy 2-core machine cost more than they gain."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
