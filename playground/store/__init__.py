"""The share store: durable, exact, deletable shared generations in SQLite (or any SQLAlchemy URL).

Public surface (the submodules are implementation):

    store = ShareStore.open(path_or_url)          # logs, never raises, on a bad database
    created = store.create(generation)            # -> CreatedShare(id, delete_token, created_at)
    generation = store.get(created.id)            # ShareNotFoundError for unknown/deleted/malformed
    store.delete(created.id, created.delete_token)
    store.backup("shares-backup.db")

CLI: ``python -m playground.store {migrate,backup,schema}``.
"""

from playground.store.backup import BackupResult, backup_database
from playground.store.database import SqlitePlan, fs_type_for, is_network_fs, open_database, plan_for
from playground.store.generations import GenerationLog
from playground.store.migrations import LATEST_VERSION, MIGRATIONS, applied_migrations, migrate
from playground.store.shares import (
    NOT_FOUND_MESSAGE,
    CreatedShare,
    Share,
    ShareStore,
    is_share_id,
)

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "NOT_FOUND_MESSAGE",
    "BackupResult",
    "CreatedShare",
    "GenerationLog",
    "Share",
    "ShareStore",
    "SqlitePlan",
    "applied_migrations",
    "backup_database",
    "fs_type_for",
    "is_network_fs",
    "is_share_id",
    "migrate",
    "open_database",
    "plan_for",
]
