"""Shared test fixtures: isolated home folder and database, no progress bars."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Two cores on CI: keep torch from oversubscribing when pytest runs alongside other work.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("tzbench-home")
    monkeypatch.setenv("TZBENCH_HOME", str(home))
    monkeypatch.setenv("TZBENCH_NO_PROGRESS", "1")
    monkeypatch.delenv("TZBENCH_DB", raising=False)
    monkeypatch.delenv("TZBENCH_DISABLE_PLUGINS", raising=False)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite database in a temporary folder."""
    return f"sqlite:///{tmp_path / 'tz.db'}"
