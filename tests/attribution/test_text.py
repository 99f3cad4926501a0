"""The text primitives: newline normalization with offsets back, verbatim extension, line ranges."""

from __future__ import annotations

import tempfile
from pathlib import Path
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from playground.attribution import _spill
from playground.attribution._postings import bucket_bits, bucket_of, find, may_hold, new_filter, pack_buckets
from playground.attribution._text import NormalizedText, common_prefix, common_suffix, line_range


def test_normalized_text_maps_spans_back_to_the_original() -> None:
    original = "a\r\nb\rc\nd\r\n"
    normalized = NormalizedText.of(original)
    assert normalized.text == "a\nb\nc\nd\n"
    assert normalized.original_span(0, 2) == (0, 3)  # "a\n" is "a\r\n"
    assert normalized.original_span(2, 8) == (3, 10)
    assert NormalizedText.of("plain\n").origin is None


@given(st.text(alphabet="ab\r\n", max_size=40), st.data())
def test_every_normalized_span_maps_to_the_same_text_modulo_newlines(original: str, data: st.DataObject) -> None:
    normalized = NormalizedText.of(original)
    start = data.draw(st.integers(0, len(normalized.text)))
    end = data.draw(st.integers(start, len(normalized.text)))
    first, last = normalized.original_span(start, end)
    assert NormalizedText.of(original[first:last]).text == normalized.text[start:end]


@given(st.text(alphabet="xy", max_size=300), st.text(alphabet="xy", max_size=300))
def test_extension_finds_the_longest_common_prefix_and_suffix(a: str, b: str) -> None:
    prefix = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    suffix = next((i for i, (x, y) in enumerate(zip(a[::-1], b[::-1], strict=False)) if x != y), min(len(a), len(b)))
    assert common_prefix(a, 0, b, 0) == prefix
    assert common_suffix(a, len(a), b, len(b)) == suffix


def test_line_range_counts_lines_of_the_span() -> None:
    text = "one\ntwo\nthree\n"
    assert line_range(text, 0, 4) == (1, 1)  # "one\n" ends on line 1
    assert line_range(text, 4, 9) == (2, 3)
    assert line_range(text, 8, 14) == (3, 3)


def test_buckets_keep_hash_order_and_cut_long_lists() -> None:
    bits = bucket_bits(1000)
    hashes = sorted([-(2**63), -5, -5, -5, 0, 7, 2**63 - 1])
    assert [bucket_of(h, bits) for h in hashes] == sorted(bucket_of(h, bits) for h in hashes)
    assert bucket_of(-(2**63), bits) == 0 and bucket_of(2**63 - 1, bits) == 2**bits - 1
    filter_ = new_filter(len(hashes))
    rows = dict(pack_buckets([(h, n) for n, h in enumerate(hashes)], bits, 2, filter_))
    key = (-5).to_bytes(8, "little", signed=True)
    entries = rows[bucket_of(-5, bits)]
    assert find(entries, key, entries.find(key)) == [1, 2]
    assert all(may_hold(filter_, h) for h in hashes)


@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=300), st.integers(1, 50))
def test_spilled_entries_come_back_sorted(keys: list[int], spill_every: int) -> None:
    with tempfile.TemporaryDirectory() as folder, mock.patch.object(_spill, "SPILL_ENTRIES", spill_every):
        spill = _spill.Spill(Path(folder))
        for at in range(0, len(keys), 7):
            spill.add(keys[at : at + 7], at)
        assert list(spill.sorted_entries(lambda _count: None)) == sorted((key, n) for n, key in enumerate(keys))
        assert list(Path(folder).iterdir()) == []
