"""Buckets of window hashes: how (hash, window) entries are packed into rows and found again.

A bucket holds every entry whose hash shares its top ``bits`` bits; ``bits`` is
chosen at build time so a bucket holds about 16 entries (about 200 bytes, well
inside one page). Entries are 12 bytes, the signed 64-bit hash then the global
window number, sorted by hash, so equal hashes sit next to each other.

A filter of one bit per 8 windows' worth of bits (one byte a window) sits in
front: a hash whose bit is clear is in no document, so most windows of a new
text never reach SQLite. About 12% of absent hashes pass it by chance.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

ENTRY = struct.Struct("<qI")
ENTRIES_PER_BUCKET = 16  # a bucket is one row; fewer per row costs row headers, more costs scanning
MAX_WINDOWS = 1 << 32  # window numbers are stored in 4 bytes: about 214 GB of text at w=50
FILTER_BYTES_PER_WINDOW = 1  # 8 bits per hash: 1 - e^(-1/8) = 12% of absent hashes pass


def bucket_bits(windows: int) -> int:
    return max(1, (windows // ENTRIES_PER_BUCKET).bit_length())


def bucket_of(hash_: int, bits: int) -> int:
    """Top ``bits`` bits of the signed hash, shifted to start at 0, so hash order is bucket order."""
    return (hash_ >> (64 - bits)) + (1 << (bits - 1))


def new_filter(windows: int) -> bytearray:
    return bytearray(max(1, windows * FILTER_BYTES_PER_WINDOW))


def may_hold(filter_: bytes | bytearray, hash_: int) -> bool:
    """False when no document has a window with this hash; True for those that do, and a few others."""
    bit = hash_ % (len(filter_) * 8)
    return bool(filter_[bit >> 3] >> (bit & 7) & 1)


def pack_buckets(sorted_entries: Iterable[tuple[int, int]], bits: int, keep: int,
                 filter_: bytearray) -> Iterator[tuple[int, bytes]]:
    """(bucket, packed entries) from entries sorted by (hash, window); at most ``keep`` per hash.

    Sets each hash's bit in ``filter_`` on the way.
    """
    pack = ENTRY.pack
    filter_bits = len(filter_) * 8
    current: int | None = None
    packed = bytearray()
    last_hash, run = 0, 0
    for hash_, window in sorted_entries:
        if hash_ == last_hash and run:
            run += 1
            if run > keep:
                continue
        else:
            last_hash, run = hash_, 1
            bit = hash_ % filter_bits  # may_hold, inlined: this loop runs once per window of the corpus
            filter_[bit >> 3] |= 1 << (bit & 7)
        bucket = (hash_ >> (64 - bits)) + (1 << (bits - 1))
        if bucket != current:
            if current is not None:
                yield current, bytes(packed)
            current, packed = bucket, bytearray()
        packed += pack(hash_, window)
    if current is not None:
        yield current, bytes(packed)


def find(entries: bytes, key: bytes, at: int) -> list[int]:
    """Window numbers stored for the 8-byte hash ``key`` in one bucket, given ``at = entries.find(key)``."""
    size = ENTRY.size
    while at >= 0 and at % size:  # a hit that straddles two entries is not a hash
        at = entries.find(key, at + 1)
    windows: list[int] = []
    while 0 <= at < len(entries) and entries.startswith(key, at):
        windows.append(ENTRY.unpack_from(entries, at)[1])
        at += size
    return windows
