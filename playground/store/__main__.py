"""Share store CLI: ``python -m playground.store {migrate,backup,schema}``.

- ``migrate --db PATH_OR_URL``: apply missing schema migrations.
- ``backup --db PATH_OR_URL --out PATH``: consistent copy via SQLite's backup API.
- ``schema``: print the schema of a freshly migrated in-memory database.

Errors are printed as their user-facing message with exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import text

from playground.errors import PlaygroundError
from playground.store.backup import backup_database
from playground.store.database import open_database
from playground.store.faults import store_errors
from playground.store.migrations import LATEST_VERSION, migrate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m playground.store", description="Manage the share database.")
    commands = parser.add_subparsers(dest="command", required=True)
    run_migrate = commands.add_parser("migrate", help="apply missing schema migrations")
    run_migrate.add_argument("--db", required=True, help="database file or SQLAlchemy URL")
    run_backup = commands.add_parser("backup", help="back up a live database with SQLite's backup API")
    run_backup.add_argument("--db", required=True, help="database file or sqlite:/// URL")
    run_backup.add_argument("--out", required=True, type=Path, help="backup file to write (replaced atomically)")
    commands.add_parser("schema", help="print the current schema (from an in-memory database)")
    return parser


def current_schema_sql() -> str:
    """The CREATE statements of a freshly migrated database, so docs cannot drift from code."""
    engine = open_database(":memory:")
    try:
        migrate(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type DESC, name"))
            return ";\n".join(str(sql).strip() for (sql,) in rows) + ";"
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "schema":
            print(current_schema_sql())
            return 0
        engine = open_database(args.db)
        try:
            if args.command == "migrate":
                with store_errors("migrate"):
                    done = migrate(engine)
                print(f"applied {len(done)} migration(s){': ' + ', '.join(done) if done else ''}; "
                      f"schema version {LATEST_VERSION}")
            else:
                result = backup_database(engine, args.out)
                print(f"backed up {result.shares} share(s) to {result.path} ({result.size_bytes} bytes)")
        finally:
            engine.dispose()
    except PlaygroundError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
