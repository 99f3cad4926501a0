"""Engine set-up: filesystem detection from /proc/mounts text, and the PRAGMAs each choice applies."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from playground.errors import ConfigError
from playground.store import fs_type_for, is_network_fs, open_database, plan_for
from playground.store.database import parse_mounts, to_url, write_transaction

MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
proc /proc proc rw,relatime 0 0
tmpfs /dev/shm tmpfs rw,relatime 0 0
server:/export /mnt/nfs nfs4 rw,relatime,vers=4.2 0 0
//nas/share /mnt/smb cifs rw,relatime 0 0
bucket /data fuse.gcsfuse rw,nosuid,nodev 0 0
/dev/vdb /data/local ext4 rw,relatime 0 0
/dev/vdc /mnt/with\\040space xfs rw 0 0
hostshare /mnt/host 9p rw 0 0
ceph-mon:/ /mnt/cephfs ceph rw 0 0
/dev/vdd /mnt/nfsish ext4 rw 0 0
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/home/user/shares.db", "ext4"),
        ("/mnt/nfs/shares.db", "nfs4"),
        ("/mnt/nfs", "nfs4"),
        ("/mnt/nfs/deep/er/shares.db", "nfs4"),
        ("/mnt/nfsish/shares.db", "ext4"),  # a prefix of the string but not of the path
        ("/mnt/smb/a.db", "cifs"),
        ("/data/shares.db", "fuse.gcsfuse"),
        ("/data/local/shares.db", "ext4"),  # the longest mount point wins
        ("/mnt/with space/shares.db", "xfs"),  # octal escapes are decoded
        ("/mnt/host/x.db", "9p"),
        ("/mnt/cephfs/x.db", "ceph"),
        ("/dev/shm/x.db", "tmpfs"),
    ],
)
def test_fs_type_for_picks_the_longest_containing_mount(path: str, expected: str) -> None:
    assert fs_type_for(path, MOUNTS) == expected


def test_later_mount_on_the_same_point_hides_the_earlier() -> None:
    mounts = "/dev/vda / ext4 rw 0 0\n/dev/vdb /srv ext4 rw 0 0\nserver:/x /srv nfs rw 0 0\n"
    assert fs_type_for("/srv/shares.db", mounts) == "nfs"


def test_unknown_mounts_give_none() -> None:
    assert fs_type_for("/x/y.db", "") is None
    assert parse_mounts("garbage\n\n") == []


@pytest.mark.parametrize(
    "fs",
    ["nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse", "fuse.sshfs", "fuseblk", "9p", "ceph", "glusterfs", "virtiofs"],
)
def test_network_and_fuse_types(fs: str) -> None:
    assert is_network_fs(fs)


@pytest.mark.parametrize("fs", ["ext4", "xfs", "btrfs", "tmpfs", "overlay", "zfs", "apfs", None])
def test_local_types(fs: str | None) -> None:
    assert not is_network_fs(fs)


def test_plan_for_local_and_network_and_forced() -> None:
    assert plan_for("/home/a.db", "auto", MOUNTS).journal_mode == "wal"
    network = plan_for("/mnt/nfs/a.db", "auto", MOUNTS)
    assert (network.journal_mode, network.synchronous, network.network) == ("delete", "FULL", True)
    assert plan_for("/mnt/nfs/a.db", "wal", MOUNTS).journal_mode == "wal"
    assert plan_for("/home/a.db", "delete", MOUNTS).synchronous == "FULL"
    assert plan_for(None).journal_mode == "memory"


def _pragmas(engine_path: Path, **kwargs: object) -> tuple[str, int, int]:
    engine = open_database(engine_path, **kwargs)  # type: ignore[arg-type]
    try:
        with engine.connect() as conn:
            journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            busy = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        return str(journal), int(sync or 0), int(busy or 0)
    finally:
        engine.dispose()


def test_local_disk_gets_wal_normal_and_busy_timeout(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    local = f"/dev/vda / ext4 rw 0 0\n/dev/vdb {tmp_path} ext4 rw 0 0\n"
    with caplog.at_level(logging.INFO, logger="playground.store"):
        assert _pragmas(tmp_path / "a.db", mounts_text=local, busy_timeout_ms=1234) == ("wal", 1, 1234)
    assert "journal_mode=wal" in caplog.text and "ext4" in caplog.text


def test_network_fs_gets_rollback_journal_and_full_sync(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    nfs = f"/dev/vda / ext4 rw 0 0\nserver:/x {tmp_path} nfs4 rw 0 0\n"
    with caplog.at_level(logging.INFO, logger="playground.store"):
        assert _pragmas(tmp_path / "a.db", mounts_text=nfs) == ("delete", 2, 5000)
    assert "journal_mode=delete" in caplog.text and "nfs4" in caplog.text


def test_writes_begin_immediate(tmp_path: Path) -> None:
    engine = open_database(tmp_path / "a.db")
    statements: list[str] = []
    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with write_transaction(engine) as conn:
        conn.execute(text("CREATE TABLE t (x)"))
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    engine.dispose()
    assert statements == ["BEGIN IMMEDIATE", "CREATE TABLE t (x)", "BEGIN", "SELECT 1"]


def test_paths_urls_and_memory() -> None:
    assert to_url("relative/shares.db").database == str(Path("relative/shares.db").resolve())
    assert to_url("sqlite:////tmp/x.db").database == "/tmp/x.db"
    assert to_url("postgresql+psycopg://u@h/db").get_backend_name() == "postgresql"
    assert to_url(":memory:").database is None
    with pytest.raises(ConfigError):
        to_url("not a url://")
