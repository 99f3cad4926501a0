"""A memory cap for one test program as a whole: all its processes together, not each on its own.

RLIMIT_AS caps each process; a program that forks sixteen children gets
sixteen times that. A cgroup caps the group: the kernel counts every page
its processes touch and kills one of them past the limit. It is used where the
evaluator may make one: cgroup v2 (``memory.max``) or the v1 memory controller
(``memory.limit_in_bytes``), as a child of the evaluator's own group. Where
neither can be made (no root, no delegation), a watcher thread adds up the
resident memory of every process carrying the run's token every 50 ms and
kills them all past the limit: coarser (a burst within one interval can go
over), but it counts the group.

The launcher joins the group itself, before it forks the program, so no
process of the program is ever outside it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
_WATCH_S = 0.05
_PAGE = os.sysconf("SC_PAGE_SIZE")


class MemoryCap:
    """The cap of one run: ``procs`` is the file the launcher writes its pid to (None: counted instead)."""

    how = "counted"

    def __init__(self, limit_bytes: int):
        self.limit_bytes = limit_bytes
        self.procs: str | None = None
        self._over = threading.Event()
        self._stop = threading.Event()

    def watch(self, token: str) -> None:
        """Start counting the processes that carry ``token`` (the fallback's work; a cgroup needs none)."""
        threading.Thread(target=self._count, args=(token,), name="sandbox-memory", daemon=True).start()

    def exceeded(self) -> bool:
        return self._over.is_set()

    def close(self) -> None:
        self._stop.set()

    def _count(self, token: str) -> None:
        needle = f"PLAYGROUND_SANDBOX={token}".encode()
        while not self._stop.wait(_WATCH_S):
            pids = [pid for pid in _pids() if _carries(pid, needle)]
            if sum(_resident(pid) for pid in pids) > self.limit_bytes:
                self._over.set()
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)


class CgroupCap(MemoryCap):
    """A cgroup the kernel enforces; ``version`` 2 or 1."""

    def __init__(self, limit_bytes: int, folder: Path, version: int):
        super().__init__(limit_bytes)
        self.folder, self.version = folder, version
        self.how = f"cgroup v{version}"
        self.procs = str(folder / "cgroup.procs")
        if version == 2:
            (folder / "memory.max").write_text(str(limit_bytes))
            _write_if_there(folder / "memory.swap.max", "0")
        else:
            (folder / "memory.limit_in_bytes").write_text(str(limit_bytes))
            _write_if_there(folder / "memory.memsw.limit_in_bytes", str(limit_bytes))  # no escape into swap

    def watch(self, token: str) -> None:
        pass  # the kernel counts

    def exceeded(self) -> bool:
        if self.version == 2:
            events = _read_pairs(self.folder / "memory.events")
            return events.get("oom_kill", 0) > 0 or events.get("max", 0) > 0
        control = _read_pairs(self.folder / "memory.oom_control")  # v1: "oom_kill N" where the kernel has it
        return control.get("oom_kill", 0) > 0 or self.peak_bytes() >= self.limit_bytes

    def peak_bytes(self) -> int:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        return int(_read(self.folder / name) or 0)

    def close(self) -> None:
        for _ in range(100):  # the last processes may still be leaving
            try:
                self.folder.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                threading.Event().wait(0.02)


def memory_cap(limit_bytes: int, token: str, use_cgroups: bool = True) -> MemoryCap:
    """The strongest cap this machine allows: a v2 or v1 cgroup, else counting."""
    if use_cgroups:
        for version, parent in _own_groups():
            folder = parent / f"playground-eval-{token}"
            try:
                folder.mkdir()
            except OSError:
                continue
            try:
                return CgroupCap(limit_bytes, folder, version)
            except OSError:
                with contextlib.suppress(OSError):
                    folder.rmdir()
    return MemoryCap(limit_bytes)


def _own_groups() -> list[tuple[int, Path]]:
    """This process's cgroups that can hold a memory limit: v2 first, then the v1 memory controller."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    found: list[tuple[int, Path]] = []
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and "memory" in (_read(CGROUP_ROOT / "cgroup.controllers") or "").split():
            found.insert(0, (2, CGROUP_ROOT / path.lstrip("/")))
        elif "memory" in controllers.split(","):
            found.append((1, CGROUP_ROOT / "memory" / path.lstrip("/")))
    return found


def _pids() -> list[str]:
    return [entry.name for entry in os.scandir("/proc") if entry.name.isdigit()]


def _carries(pid: str, needle: bytes) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def _resident(pid: str) -> int:
    statm = _read(Path(f"/proc/{pid}/statm"))
    return int(statm.split()[1]) * _PAGE if statm else 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _read_pairs(path: Path) -> dict[str, int]:
    pairs = (line.split() for line in (_read(path) or "").splitlines())
    return {pair[0]: int(pair[1]) for pair in pairs if len(pair) == 2}


def _write_if_there(path: Path, value: str) -> None:
    if path.exists():
        path.write_text(value)
