"""Run and result storage (SQLAlchemy 2.0; SQLite by default)."""

from tzbench.db.models import Base, Result, Run
from tzbench.db.store import DEFAULT_DB_URL, Store, StoreError, resolve_db_url

__all__ = ["Base", "Result", "Run", "Store", "StoreError", "DEFAULT_DB_URL", "resolve_db_url"]
