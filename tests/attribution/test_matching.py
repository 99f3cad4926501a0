"""Matching against real stdlib files: exact offsets and line ranges, Unicode, CRLF, tabs, near misses."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

from playground.attribution import Attribution, BuildOptions, Document, MemoryIndex, SqliteIndex, _match, write_index

from .conftest import FENCE, STDLIB, fenced, lines


def test_planted_lines_are_found_with_their_exact_lines(index: SqliteIndex) -> None:
    planted = lines((STDLIB / "textwrap.py").read_text(encoding="utf-8"), 40, 60)
    text = fenced(planted)
    (match,) = index.check(text)
    assert (match.start, match.end) == (text.index(FENCE) + 1, text.index(FENCE) + 1 + len(planted))
    assert match.text == planted
    source = match.source
    assert (source.index, source.path, source.repo, source.license) == ("copies", "textwrap.py", "python/cpython",
                                                                        "PSF-2.0")
    assert (source.start_line, source.end_line) == (40, 60)
    assert (match.other_sources, match.other_sources_exact) == (0, True)


def test_offsets_count_characters_not_bytes(index: SqliteIndex) -> None:
    planted = lines((STDLIB / "shlex.py").read_text(encoding="utf-8"), 36, 44)  # holds 'ßàáâã…'
    assert any(ord(char) > 127 for char in planted)
    text = fenced(planted, before="# généré par 🤖 — ✓\n")
    (match,) = index.check(text)
    assert match.start == len("# généré par 🤖 — ✓\n") + 1
    assert text[match.start : match.end] == planted == match.text
    assert (match.source.path, match.source.start_line, match.source.end_line) == ("shlex.py", 36, 44)


def test_crlf_file_gives_real_line_numbers_and_matches_lf_text(index: SqliteIndex) -> None:
    planted = lines((STDLIB / "getopt.py").read_text(encoding="utf-8"), 51, 70)
    (match,) = index.check(fenced(planted))
    assert (match.source.path, match.source.start_line, match.source.end_line) == ("windows/getopt_crlf.py", 51, 70)


def test_crlf_text_reports_offsets_into_the_text_as_given(index: SqliteIndex) -> None:
    planted = lines((STDLIB / "getopt.py").read_text(encoding="utf-8"), 51, 70).replace("\n", "\r\n")
    text = fenced(planted, before="x = 1\r\n")
    (match,) = index.check(text)
    assert match.text == planted and match.start == len("x = 1\r\n") + 1
    assert (match.source.start_line, match.source.end_line) == (51, 70)


def test_tabs_are_compared_exactly(index: SqliteIndex) -> None:
    original = lines((STDLIB / "fnmatch.py").read_text(encoding="utf-8"), 60, 80)
    (match,) = index.check(fenced(original.replace("    ", "\t")))
    assert (match.source.path, match.source.start_line, match.source.end_line) == ("tabbed_fnmatch.py", 60, 80)
    assert index.check(fenced(original)) == []  # the spaced original is not indexed


def test_near_copies_are_not_reported(index: SqliteIndex) -> None:
    planted = lines((STDLIB / "heapq.py").read_text(encoding="utf-8"), 150, 190)
    # One char in every 40 changed: no 50-char run survives, though it reads as the same code.
    altered = "".join("#" if i % 40 == 39 and char != "#" else char for i, char in enumerate(planted))
    assert index.check(fenced(planted)) != []
    assert index.check(fenced(altered)) == []


def test_min_chars_sets_the_shortest_span(index: SqliteIndex) -> None:
    planted = (STDLIB / "bisect.py").read_text(encoding="utf-8")[200:320]
    assert [len(m.text) for m in index.check(fenced(planted), min_chars=100)] == [120]
    assert index.check(fenced(planted), min_chars=150) == []


def test_a_span_repeated_in_the_text_is_reported_each_time(index: SqliteIndex) -> None:
    planted = lines((STDLIB / "colorsys.py").read_text(encoding="utf-8"), 30, 40)
    text = fenced(planted) + fenced(planted)
    assert [m.start for m in index.check(text)] == [text.index(planted), text.rindex(planted)]


def test_spans_stop_at_document_boundaries_of_a_dump(tmp_path: Path) -> None:
    first, second = _random_code(1, 3000), _random_code(2, 3000)
    dump = tmp_path / "dump.jsonl"
    dump.write_text("\n".join(f'{{"content": {_json(text)}, "path": "{name}"}}'
                              for name, text in (("a.py", first), ("b.py", second))) + "\n", encoding="utf-8")
    from playground.attribution import build_index

    build_index(tmp_path / "dump.sqlite", [dump], BuildOptions(progress=False))
    index = SqliteIndex.open(tmp_path / "dump.sqlite")
    # Both halves are shorter than the guaranteed 99 chars; together they are 140 chars in a row of the dump file.
    across = first[-70:] + second[:70]
    assert all(m.end <= 70 or m.start >= 70 for m in index.check(across))
    assert not any(m.end - m.start > 70 for m in index.check(across))
    (tail,) = index.check(fenced(first[-150:]))
    assert (tail.source.path, len(tail.text)) == ("a.py", 150)
    index.close()


def test_boilerplate_is_counted_not_listed(tmp_path: Path) -> None:
    header = ("# Copyright (c) 2024 Example Corp.\n"
              "# Licensed under the Apache License, Version 2.0 (the \"License\");\n"
              "# you may not use this file except in compliance with the License.\n\n")
    documents = [Document(f"pkg/m{i}.py", header + _random_code(i, 400), "example/pkg", "Apache-2.0")
                 for i in range(30)]
    write_index(tmp_path / "all.sqlite", documents, BuildOptions(progress=False))
    write_index(tmp_path / "capped.sqlite", documents, BuildOptions(progress=False, max_postings=10))
    with_all, capped = SqliteIndex.open(tmp_path / "all.sqlite"), SqliteIndex.open(tmp_path / "capped.sqlite")
    (match,) = with_all.check(fenced(header))
    assert (match.source.path, match.other_sources, match.other_sources_exact) == ("pkg/m0.py", 29, True)
    (match,) = capped.check(fenced(header))
    assert match.text == header and not match.other_sources_exact and 9 <= match.other_sources <= 29
    with mock.patch.object(_match, "MAX_COMPARED", 8):  # comparing stops at 8 holders of the span...
        (match,) = with_all.check(header)  # ...when no other holder could hold more of the text: all of it here
    assert match.text == header and not match.other_sources_exact and 7 <= match.other_sources < 29
    with_all.close()
    capped.close()


def test_text_stitched_from_two_files_gives_two_overlapping_matches(index: SqliteIndex) -> None:
    one = lines((STDLIB / "textwrap.py").read_text(encoding="utf-8"), 100, 110)
    two = lines((STDLIB / "heapq.py").read_text(encoding="utf-8"), 200, 210)
    first, second = index.check(fenced(one + two))
    assert (first.text, first.source.path) == (one, "textwrap.py")
    # heapq.py's line 199 ends with the same "\n" that ends `one`, so the spans share that char:
    # each is maximal in its own file, and their union occurs in neither, so they are not merged.
    assert (second.text, second.source.path, second.source.start_line) == ("\n" + two, "heapq.py", 199)
    assert second.start == first.end - 1


def test_attribution_reports_every_index(index_path: Path, tmp_path: Path) -> None:
    extra = _random_code(7, 2000)
    write_index(tmp_path / "extra.sqlite", [Document("extra.py", extra)], BuildOptions(name="extra", progress=False))
    attribution = Attribution.open([index_path, tmp_path / "extra.sqlite"])
    planted = lines((STDLIB / "textwrap.py").read_text(encoding="utf-8"), 10, 20)
    text = fenced(extra[500:700]) + fenced(planted)
    report = attribution.check(text).to_dict()
    attribution.close()
    assert [info["name"] for info in report["indexes"]] == ["copies", "extra"]
    assert report["indexes"][0]["guaranteed_chars"] == 99
    assert report["checked_chars"] == len(text)
    assert [(m["source"]["index"], m["source"]["path"]) for m in report["matches"]] == [
        ("extra", "extra.py"), ("copies", "textwrap.py")]
    assert set(report["matches"][0]) == {"start", "end", "text", "source", "other_sources", "other_sources_exact"}


def test_memory_index_agrees_with_the_built_index(corpus_dir: Path, index: SqliteIndex) -> None:
    documents = [Document(path.relative_to(corpus_dir).as_posix(), path.read_bytes().decode("utf-8"),
                          "python/cpython", "PSF-2.0") for path in sorted(corpus_dir.rglob("*.py"))]
    memory = MemoryIndex(documents, name="copies")
    text = fenced(lines((STDLIB / "shlex.py").read_text(encoding="utf-8"), 20, 50)) + fenced(
        lines((STDLIB / "getopt.py").read_text(encoding="utf-8"), 5, 25).replace("\n", "\r\n"))
    assert memory.check(text) == index.check(text) != []
    assert memory.describe() == index.describe()


def _random_code(seed: int, size: int) -> str:
    import random

    chooser = random.Random(seed)
    words = ["def", "return", "self", "value", "items", "for", "in", "if", "else", "None", "=", "(", ")", ":"]
    out: list[str] = []
    while sum(map(len, out)) < size:
        out.append("    " * chooser.randrange(3) + " ".join(
            chooser.choice(words) + str(chooser.randrange(1000)) for _ in range(chooser.randrange(2, 8))) + "\n")
    return "".join(out)[:size]


def _json(text: str) -> str:
    import json

    return json.dumps(text)
