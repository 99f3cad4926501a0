"""Sorting a build's (hash, window) entries in bounded memory, without a database round trip per entry.

Entries are spread over 256 partitions by the top 8 bits of the hash, kept in
compact arrays (12 bytes an entry), and appended to one temporary file per
partition whenever too many are buffered. Each partition is then sorted on its
own; since the top bits choose the partition, partition order is hash order.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from pathlib import Path

PARTITIONS = 256
SPILL_ENTRIES = 4_000_000  # about 48 MB of arrays buffered between writes (80 MB of text at w=50)


class Spill:
    """Collects entries with ``add``; ``sorted_entries`` then yields them by (hash, window), once."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.total = 0
        self._buffered = 0
        self._spilled = False
        self._keys = [array("q") for _ in range(PARTITIONS)]
        self._windows = [array("I") for _ in range(PARTITIONS)]

    def add(self, keys: list[int], first_window: int) -> None:
        part_keys, part_windows = self._keys, self._windows
        for window, key in enumerate(keys, first_window):
            part = (key >> 56) + 128
            part_keys[part].append(key)
            part_windows[part].append(window)
        self._buffered += len(keys)
        self.total += len(keys)
        if self._buffered >= SPILL_ENTRIES:
            self._spill()

    def _spill(self) -> None:
        for part in range(PARTITIONS):
            if self._keys[part]:
                with open(self.folder / f"{part:03d}", "ab") as stream:
                    array("q", [len(self._keys[part])]).tofile(stream)
                    self._keys[part].tofile(stream)
                    self._windows[part].tofile(stream)
                self._keys[part], self._windows[part] = array("q"), array("I")
        self._buffered, self._spilled = 0, True

    def sorted_entries(self, advance: Callable[[int], None]) -> Iterator[tuple[int, int]]:
        if self._spilled:
            self._spill()  # everything on disk, so each partition is read back in window order
        for part in range(PARTITIONS):
            keys, windows = self._load(part)
            # A stable sort by hash keeps the windows of one hash in ascending order.
            order = sorted(range(len(keys)), key=keys.__getitem__)
            yield from zip(map(keys.__getitem__, order), map(windows.__getitem__, order), strict=True)
            advance(len(keys))

    def _load(self, part: int) -> tuple[array[int], array[int]]:
        path = self.folder / f"{part:03d}"
        if not self._spilled or not path.exists():
            keys, windows = self._keys[part], self._windows[part]
            self._keys[part], self._windows[part] = array("q"), array("I")
            return keys, windows
        keys, windows, header = array("q"), array("I"), array("q")
        with open(path, "rb") as stream:
            while True:
                try:
                    header.fromfile(stream, 1)  # each spill wrote: count, then the keys, then the windows
                except EOFError:
                    break
                count = header.pop()
                keys.fromfile(stream, count)
                windows.fromfile(stream, count)
        path.unlink()
        return keys, windows
