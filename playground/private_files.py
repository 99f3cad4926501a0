"""The service's own files, unreadable to other users: its data folder (0700) and databases (0600).

Model-written code runs in the evaluation sandbox as another user; share ids are access links and the
database holds every shared prompt, so nothing under the data folder may be readable to it. Folders and
files made here get these modes from the start; existing ones that are wider are tightened, with a log
line saying so.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("playground.files")

_OTHERS = 0o077  # group and other permission bits


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner can enter (made, or tightened)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """``path`` as a file only its owner can read (made empty if missing, or tightened), with the
    SQLite journal files beside it, which SQLite creates with the database's own mode."""
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"),
                 path.with_name(path.name + "-journal")):
        if each.exists():
            _tighten(each, 0o600)
    return path


def _tighten(path: Path, mode: int) -> None:
    current = path.stat().st_mode & 0o777
    if not current & _OTHERS:
        return
    try:
        os.chmod(path, mode)
    except OSError as error:  # a mounted volume owned by someone else: say so, and serve anyway
        log.warning("%s is readable by other users (mode %o) and cannot be tightened (%s); make it %o",
                    path, current, error.strerror, mode)
        return
    log.warning("%s was readable by other users (mode %o); now %o", path, current, mode)
