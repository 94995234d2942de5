"""A run's row in the store, written the same way by ``train``, ``eval`` and ``train-recognizer``.

The life of a row in ``runs``: ``running`` (:meth:`RunRecorder.start`, or :meth:`RunRecorder.reopen`
and :meth:`RunRecorder.restart` when ``--resume`` continues it) -> ``finished`` | ``failed`` |
``interrupted`` (:meth:`RunRecorder.finish`, or :meth:`RunRecorder.abort` on an exception). A
process that dies without saying so leaves ``running`` behind, which the next command reaps to
``failed`` (its pid is gone; see :meth:`tzbench.db.store.Store.reap_dead_runs`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from tzbench.db.models import Run
from tzbench.db.store import ResultRow, Store, pid_alive
from tzbench.runner.context import RunError, provenance
from tzbench.weights import sha256_file

__all__ = ["RunRecorder"]


class RunRecorder:
    """The ``runs`` row of one run and its result rows, against a :class:`~tzbench.db.store.Store`.

    Every kind of run records the same way: :meth:`start` inserts the row with its config and the
    provenance of this process (tzbench and torch versions, git commit, device; host and pid come
    from the store), :meth:`update` sets fields as the run goes (its checkpoint path, its config),
    :meth:`results` adds result rows (re-recording a ``(subset, recognizer, metric, step)`` key
    replaces it, so a resumed run never duplicates), and :meth:`finish` or :meth:`abort` ends it.

    A training command of a plugin (e.g. ``train-recognizer``) uses it like this::

        rec = RunRecorder.start(store, kind="train-recognizer", device=device, config=cfg.model_dump(mode="json"),
                                sr_model=name, provider=dist, benchmark=",".join(cfg.data), protocol="clean",
                                comparable=False, n_params=n_params, seed=cfg.seed)
        rec.update(checkpoint=str(run_dir / "best.safetensors"))
        try:
            ...  # each validation: rec.results([ResultRow("val", name, "accuracy", acc, step, n)])
        except BaseException as exc:
            rec.abort(exc)  # "interrupted" for Ctrl-C, else "failed", with the exception as message
            raise
        rec.results([ResultRow("train", name, "seconds", seconds, -1, step)])
        rec.finish(status, message, best_checkpoint=run_dir / "best.safetensors", bad_samples=bad)
    """

    def __init__(self, store: Store, run_id: int) -> None:
        self.store = store
        self.run_id = run_id

    # -- the row's beginning ----------------------------------------------------------------------
    @classmethod
    def start(cls, store: Store, *, kind: str, device: torch.device, config: dict[str, Any],
              **fields: Any) -> RunRecorder:
        """Insert a ``running`` row of ``kind`` (``train``, ``eval``, ``train-recognizer``).

        Args:
            store: the database.
            kind: the run's kind.
            device: where it runs (recorded by name, with the versions and the git commit).
            config: the run's configuration as JSON (the resolved config, plus whatever the kind
                records beside it, e.g. an eval's judges' weights sha256).
            fields: other columns of :class:`tzbench.db.models.Run`: ``sr_model``, ``provider``,
                ``benchmark``, ``protocol``, ``n_params``, ``seed``, ``checkpoint``,
                ``checkpoint_sha256``, ``parent_id``, ``comparable``...
        """
        return cls(store, store.start_run(kind=kind, config=config, **fields, **provenance(device)))

    @classmethod
    def reopen(cls, store: Store, run_id: int) -> RunRecorder:
        """The recorder of an existing run that this process is to continue (``--resume``).

        Raises:
            RunError: the run's process is still alive on this host (two writers of one run).
        """
        run = store.get_run(run_id)
        if (run.status == "running" and run.host == socket.gethostname() and run.pid
                and run.pid != os.getpid() and pid_alive(run.pid)):
            raise RunError(f"run {run_id} is still running (pid {run.pid}); stop it before resuming")
        return cls(store, run_id)

    def row(self) -> Run:
        """The run's row as stored now (with its results)."""
        return self.store.get_run(self.run_id)

    def restart(self, config: dict[str, Any]) -> None:
        """Set a reopened run ``running`` again under this process, with ``config`` in place of its config."""
        self.update(status="running", finished_at=None, message=None, pid=os.getpid(), host=socket.gethostname(),
                    config=config)

    # -- while it runs ------------------------------------------------------------------------------
    def update(self, **fields: Any) -> None:
        """Set columns of the row (``checkpoint``, ``config``, ``status``...)."""
        self.store.update_run(self.run_id, **fields)

    def results(self, rows: Iterable[ResultRow]) -> int:
        """Add result rows; a row with the key of one recorded before replaces it. Returns how many."""
        return self.store.add_results(self.run_id, rows)

    # -- its end ------------------------------------------------------------------------------------
    def finish(self, status: str = "finished", message: str | None = None, *, best_checkpoint: Path | None = None,
               **fields: Any) -> None:
        """End the run as ``status`` (``finished``, ``failed``, ``interrupted``) with ``message``.

        ``best_checkpoint``, when given, is the checkpoint the run selected: recorded with its
        sha256 if the file exists, and the row's checkpoint cleared if it does not (no model was
        saved). ``fields`` are other columns (``bad_samples``, ``benchmark_version``...)."""
        if best_checkpoint is not None:
            fields["checkpoint"] = str(best_checkpoint) if best_checkpoint.exists() else None
            if best_checkpoint.exists():
                fields["checkpoint_sha256"] = sha256_file(best_checkpoint)
        self.store.finish_run(self.run_id, status, message=message, **fields)

    def abort(self, exc: BaseException, message: str | None = None) -> str:
        """End the run on ``exc``: ``interrupted`` for a KeyboardInterrupt, ``failed`` otherwise; the
        message is ``message``, else ``"ExceptionType: text"``. Returns the status recorded."""
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        self.finish(status, message if message is not None else f"{type(exc).__name__}: {exc}")
        return status
