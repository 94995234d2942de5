"""A throw-away PostgreSQL cluster for the store's tests (and the store benchmark).

``initdb`` into a temporary folder, ``pg_ctl start`` listening only on a Unix socket in that
folder (no TCP, nothing outside the machine can reach it), one fresh database per test, the
cluster stopped and removed at the end of the session. PostgreSQL refuses to run as root, so
as root the server runs as the ``postgres`` user the Debian package creates. .ci/run installs
Debian's ``postgresql``; without its binaries the PostgreSQL half of the tests skips, saying so.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PgServer", "find_pg_bin", "start_server"]


def find_pg_bin() -> Path | None:
    """The folder holding initdb and pg_ctl (PATH, then Debian's /usr/lib/postgresql/*/bin)."""
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(cand) / "initdb").is_file() and (Path(cand) / "pg_ctl").is_file():
            return Path(cand)
    found = shutil.which("initdb")
    if found and (Path(found).parent / "pg_ctl").is_file():
        return Path(found).parent
    return None


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser is None:
        raise RuntimeError("running as root needs runuser to start PostgreSQL as the postgres user")
    return [runuser, "-u", "postgres", "--", *cmd]


@dataclass
class PgServer:
    """A running throw-away cluster; :meth:`new_database` gives a fresh SQLAlchemy URL."""

    root: Path
    socket_dir: Path
    port: int
    user: str
    bin_dir: Path

    def _url(self, db: str) -> str:
        return f"postgresql+psycopg://{self.user}@/{db}?host={self.socket_dir}&port={self.port}"

    def new_database(self) -> str:
        import psycopg

        name = f"tz_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host=str(self.socket_dir), port=self.port, user=self.user, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self._url(name)

    def stop(self) -> None:
        subprocess.run(_as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate",
                                        "-w", "stop"]), capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def start_server() -> PgServer:
    """initdb + pg_ctl start in a new temporary folder; raises RuntimeError saying what failed."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL server binaries not found: apt-get install postgresql (.ci/run does)")
    root = Path(tempfile.mkdtemp(prefix="tzbench-pg-"))
    root.chmod(0o777)
    sock = root / "sock"
    sock.mkdir()
    sock.chmod(0o777)
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    init = [str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", user, "-A", "trust", "--no-sync", "-E", "UTF8"]
    _run_or_raise(init, root)
    # The "port" only names the socket file; another session's cluster may hold one: try a few.
    for attempt in range(5):
        port = 20000 + (os.getpid() * 7 + attempt * 1009) % 20000
        start = [str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "server.log"), "-w", "-o",
                 f"-k {sock} -p {port} -c listen_addresses='' -c fsync=off -c max_connections=100", "start"]
        if subprocess.run(_as_server_user(start), capture_output=True, text=True, check=False).returncode == 0:
            return PgServer(root, sock, port, user, bin_dir)
    _run_or_raise(start, root)  # the last attempt again, to raise with its message
    raise AssertionError("unreachable")


def _run_or_raise(cmd: list[str], root: Path) -> None:
    res = subprocess.run(_as_server_user(cmd), capture_output=True, text=True, check=False)
    if res.returncode != 0:
        log = (root / "server.log").read_text() if (root / "server.log").is_file() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({res.returncode}): {res.stderr.strip()} {log[-500:]}")
