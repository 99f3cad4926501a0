"""Debian's PostgreSQL, started in a temporary folder for tests and benchmarks.

PostgreSQL refuses to run as root, so the cluster belongs to the ``postgres``
user (made by Debian's package) and its commands run as that user. TCP on
127.0.0.1 with password (SCRAM) authentication, so tests can also try a
refused password; the URL handed out has the password in it::

    with start_postgres() as pg:
        engine = create_engine(pg.url)

``restart()`` stops and starts the same cluster (for "the database restarted
under load"); ``available()`` gives a skip reason when the binaries are missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from support.servers import free_port

PASSWORD = "playground-test-password"


def _bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def available() -> str | None:
    """None when a cluster can be started here; else why not (for a skip)."""
    if _bin() is None:
        return "PostgreSQL is not installed (apt-get install postgresql)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser is missing: PostgreSQL cannot be started as the postgres user"
    return None


def _as_postgres(*command: str | Path) -> list[str]:
    args = [str(c) for c in command]
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class RunningPostgres:
    folder: Path
    port: int
    database: str = "playground"
    durable: bool = False  # fsync as a deployment has it; off for tests, which never survive a power cut
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.folder / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{self.port}/{self.database}"

    def ctl(self, *args: str) -> None:
        bin_dir = _bin()
        assert bin_dir is not None
        subprocess.run(_as_postgres(bin_dir / "pg_ctl", "-D", self.folder / "data", "-l", self.log, "-w", *args),
                       check=True, capture_output=True, timeout=60)

    def start(self) -> RunningPostgres:
        fsync = "" if self.durable else " -c fsync=off"
        self.ctl("-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1{fsync}", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self.ctl("-m", mode, "stop")

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def close(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.SubprocessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> RunningPostgres:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def start_postgres(durable: bool = False) -> RunningPostgres:
    """A fresh cluster with a ``playground`` database, on a free port, started (``durable``: with fsync on,
    PostgreSQL's default, for benchmarks)."""
    bin_dir = _bin()
    if bin_dir is None:
        raise RuntimeError(available() or "no PostgreSQL")
    folder = Path(tempfile.mkdtemp(prefix="playground-pg-"))
    folder.chmod(0o755)
    password_file = folder / "password"
    password_file.write_text(PASSWORD, encoding="utf-8")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(password_file, "postgres", "postgres")
    subprocess.run(_as_postgres(bin_dir / "initdb", "-D", folder / "data", "-U", "postgres", "-E", "UTF8",
                                "--auth-host=scram-sha-256", "--auth-local=trust", f"--pwfile={password_file}",
                                "--no-sync"),
                   check=True, capture_output=True, timeout=120)
    running = RunningPostgres(folder, free_port(), durable=durable).start()
    subprocess.run(_as_postgres(bin_dir / "createdb", "-h", folder, "-p", str(running.port), "-U", "postgres",
                                running.database), check=True, capture_output=True, timeout=60)
    return running
