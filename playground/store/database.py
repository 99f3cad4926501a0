"""Build the SQLAlchemy engine for the share store, tuned to the disk it lives on.

SQLite's WAL mode is fast and safe on a local disk but unsafe on network and
FUSE filesystems (its shared-memory index needs a coherent mmap), so the
filesystem type of the database path is read from ``/proc/mounts`` at start-up:

- local disk: ``journal_mode=WAL``, ``synchronous=NORMAL`` (survives process
  crashes; may lose the last commits on power loss);
- network/FUSE: ``journal_mode=DELETE``, ``synchronous=FULL``.

The choice is logged on the ``playground.store`` logger. PRAGMAs are applied
per connection in a ``connect`` listener, and SQLAlchemy takes over
transaction control so writes can start with ``BEGIN IMMEDIATE`` (a deferred
read-then-write transaction fails at once with "database is locked", whatever
the busy timeout). Any non-SQLite URL is accepted as-is, without PRAGMAs.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from playground.errors import ConfigError
from playground.private_files import private_file

logger = logging.getLogger("playground.store")

JournalChoice = Literal["auto", "wal", "delete"]

# Filesystem types on which WAL is unsafe. Prefix matches cover "fuse.sshfs",
# "fuse.gcsfuse", "smb3" and similar; virtiofs and overlay-on-network setups
# vary, so virtiofs is treated as remote too (the conservative choice).
NETWORK_FS_TYPES = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "9p", "ceph",
        "glusterfs", "lustre", "gpfs", "afs", "ncpfs", "coda", "davfs",
        "sshfs", "virtiofs", "beegfs", "ocfs2", "gfs2", "moosefs", "juicefs",
    }
)
NETWORK_FS_PREFIXES = ("fuse", "smb", "nfs")

# Execution option that makes the ``begin`` listener emit BEGIN IMMEDIATE.
WRITE_OPTION = "playground_write"


@dataclass(frozen=True)
class SqlitePlan:
    """How a SQLite database is configured, and why."""

    journal_mode: str  # "wal", "delete" or "memory"
    synchronous: str  # "NORMAL" or "FULL"
    fs_type: str | None  # from /proc/mounts; None when unknown or in-memory
    network: bool
    reason: str


def decode_mount_field(field: str) -> str:
    """Undo /proc/mounts octal escapes (a space in a mount point is written ``\\040``)."""
    out: list[str] = []
    i = 0
    while i < len(field):
        chunk = field[i : i + 4]
        if len(chunk) == 4 and chunk[0] == "\\" and chunk[1:].isdigit():
            out.append(chr(int(chunk[1:], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mounts(mounts_text: str) -> list[tuple[str, str]]:
    """(mount point, filesystem type) pairs from the text of /proc/mounts."""
    mounts: list[tuple[str, str]] = []
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            mounts.append((decode_mount_field(fields[1]), fields[2]))
    return mounts


def fs_type_for(path: str, mounts_text: str) -> str | None:
    """The filesystem type holding ``path`` (absolute): the longest mount point that contains it.

    Later lines win ties, because a later mount on the same point hides the earlier one.
    """
    best: tuple[int, str] | None = None
    for mount_point, fs_type in parse_mounts(mounts_text):
        prefix = mount_point.rstrip("/") + "/"
        if path == mount_point or path.startswith(prefix):
            if best is None or len(mount_point) >= best[0]:
                best = (len(mount_point), fs_type)
    return best[1] if best else None


def is_network_fs(fs_type: str | None) -> bool:
    if fs_type is None:
        return False
    fs_type = fs_type.lower()
    return fs_type in NETWORK_FS_TYPES or fs_type.startswith(NETWORK_FS_PREFIXES)


def plan_for(db_path: str | None, journal: JournalChoice = "auto", mounts_text: str | None = None) -> SqlitePlan:
    """Pick journal mode and sync level for a database file (``None`` = in-memory)."""
    if db_path is None:
        return SqlitePlan("memory", "NORMAL", None, False, "in-memory database")
    fs_type: str | None = None
    if mounts_text is None:
        try:
            mounts_text = Path("/proc/mounts").read_text(encoding="utf-8", errors="replace")
        except OSError:
            mounts_text = ""  # not Linux: assume a local disk, the common case
    fs_type = fs_type_for(os.path.realpath(db_path), mounts_text)
    network = is_network_fs(fs_type)
    if journal == "wal" or (journal == "auto" and not network):
        why = "forced by settings" if journal == "wal" else f"local filesystem ({fs_type or 'type unknown'})"
        return SqlitePlan("wal", "NORMAL", fs_type, network, why)
    why = "forced by settings" if journal == "delete" else f"network/FUSE filesystem ({fs_type})"
    return SqlitePlan("delete", "FULL", fs_type, network, why)


def to_url(url_or_path: str | os.PathLike[str]) -> URL:
    """A SQLAlchemy URL from either a URL string or a plain filesystem path."""
    text = os.fspath(url_or_path)
    if "://" in text:
        try:
            return make_url(text)
        except Exception as exc:  # sqlalchemy raises ArgumentError for bad URLs
            raise ConfigError(f"The share database URL {text!r} is not valid: {exc}. "
                              "Use a path or a URL such as sqlite:///data/shares.db.") from exc
    if text in ("", ":memory:"):
        return make_url("sqlite://")
    return make_url("sqlite://").set(database=str(Path(text).expanduser().resolve()))


def _sqlite_file(url: URL) -> str | None:
    """The database file of a SQLite URL, or None for in-memory databases."""
    database = url.database
    if not database or database == ":memory:" or url.query.get("mode") == "memory":
        return None
    return database


def open_database(
    url_or_path: str | os.PathLike[str],
    *,
    busy_timeout_ms: int = 5000,
    max_page_count: int | None = None,
    journal: JournalChoice = "auto",
    mounts_text: str | None = None,
    engine_kwargs: Mapping[str, Any] | None = None,
) -> Engine:
    """Create an engine for the share store.

    ``busy_timeout_ms``: how long a writer waits for another process's lock.
    ``max_page_count``: cap the database size in pages (operators; tests simulate a full disk).
    ``journal``: "auto" detects the filesystem; "wal"/"delete" force a mode.
    ``mounts_text``: stands in for /proc/mounts (tests).
    """
    url = to_url(url_or_path)
    kwargs: dict[str, Any] = dict(engine_kwargs or {})
    if url.get_backend_name() != "sqlite":
        # A pooled connection dies with a database restart; checking it out first replaces it unseen.
        kwargs.setdefault("pool_pre_ping", True)
        if url.get_backend_name() == "postgresql":  # an unreachable server is an error in seconds, not minutes
            kwargs.setdefault("connect_args", {"connect_timeout": 5})
        try:
            return create_engine(url, **kwargs)
        except (ModuleNotFoundError, ImportError) as error:
            raise ConfigError(f"--database-url needs the {url.get_driver_name()!r} driver, which is not installed "
                              f"({error.name or error}). For PostgreSQL use postgresql+psycopg://USER:PASSWORD@HOST/DB "
                              "(psycopg is in requirements.txt).") from None

    db_file = _sqlite_file(url)
    plan = plan_for(db_file, journal, mounts_text)
    if db_file is None:
        # One shared connection, or every checkout would see a different empty database.
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
    else:
        try:
            Path(db_file).parent.mkdir(parents=True, exist_ok=True)
            private_file(Path(db_file))  # before SQLite makes it (0644) or its WAL files (the same mode)
        except OSError as error:
            # Not fatal here: SQLite then fails to open the file, and that becomes a StoreError.
            logger.warning("share store folder for %s cannot be created: %s", db_file, error)
        logger.info(
            "share store %s: journal_mode=%s synchronous=%s (%s)",
            db_file, plan.journal_mode, plan.synchronous, plan.reason,
        )
    engine = create_engine(url, **kwargs)
    _install_listeners(engine, plan, busy_timeout_ms, max_page_count)
    return engine


def _install_listeners(engine: Engine, plan: SqlitePlan, busy_timeout_ms: int, max_page_count: int | None) -> None:
    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        # sqlite3 would otherwise emit its own deferred BEGIN; the begin listener does it instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # First, so that switching journal mode waits for other processes' locks.
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if plan.journal_mode != "memory":
                got = cursor.execute(f"PRAGMA journal_mode = {plan.journal_mode}").fetchone()[0]
                if str(got).lower() != plan.journal_mode:
                    logger.warning("share store asked for journal_mode=%s but SQLite kept %s", plan.journal_mode, got)
            cursor.execute(f"PRAGMA synchronous = {plan.synchronous}")
            # Deleted shares should not linger in free pages of the file.
            cursor.execute("PRAGMA secure_delete = ON")
            cursor.execute("PRAGMA foreign_keys = ON")
            if max_page_count is not None:
                cursor.execute(f"PRAGMA max_page_count = {int(max_page_count)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front, so the busy timeout applies to it.
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction (``BEGIN IMMEDIATE`` on SQLite); commits on success."""
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a read transaction: one consistent snapshot; rolled back at the end."""
    with engine.connect() as conn:
        yield conn
