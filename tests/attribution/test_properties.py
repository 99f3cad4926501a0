"""Properties of matching on random corpora: every planted span of 2w-1 chars is found, noise never is.

Documents and noise use disjoint alphabets, so a planted span cannot grow into
the noise around it and noise cannot match by chance.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.attribution import BuildOptions, CodeIndex, Document, MemoryIndex, SqliteIndex, write_index

DOC_CHARS = "abc \n\té\r"  # newlines of every kind, a tab and a non-ASCII char
NOISE_CHARS = "XYZ_"
WINDOWS = (8, 13)  # small windows keep examples small; the argument does not depend on w

documents = st.lists(st.text(alphabet=DOC_CHARS, min_size=0, max_size=300), min_size=1, max_size=6)
noise = st.text(alphabet=NOISE_CHARS, max_size=60)


def _both(texts: list[str], window: int, folder: Path) -> list[CodeIndex]:
    corpus = [Document(f"doc{i}.txt", text) for i, text in enumerate(texts)]
    write_index(folder / "index.sqlite", corpus, BuildOptions(window=window, progress=False))
    return [MemoryIndex(corpus, window=window), SqliteIndex.open(folder / "index.sqlite")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.sampled_from(WINDOWS), noise, noise, st.data())
def test_a_planted_span_of_2w_minus_1_chars_is_always_found(texts: list[str], window: int, before: str, after: str,
                                                            data: st.DataObject) -> None:
    # CRLF -> LF at most halves a text, so this host keeps at least 2w-1 chars once normalized.
    host = data.draw(st.text(alphabet=DOC_CHARS, min_size=4 * window - 2, max_size=400))
    texts = [*texts, host]
    source = host.replace("\r\n", "\n").replace("\r", "\n")
    length = data.draw(st.integers(2 * window - 1, len(source)))
    start = data.draw(st.integers(0, len(source) - length))
    planted = source[start : start + length]
    text = before + planted + after
    with tempfile.TemporaryDirectory() as folder:
        for index in _both(texts, window, Path(folder)):
            matches = index.check(text, min_chars=window)
            covering = [m for m in matches if m.start <= len(before) and m.end >= len(before) + length]
            assert covering, f"{type(index).__name__} missed {planted!r}"
            index.close()


@settings(max_examples=30, deadline=None)
@given(documents, st.sampled_from(WINDOWS), st.text(alphabet=NOISE_CHARS, max_size=400))
def test_random_text_matches_nothing(texts: list[str], window: int, text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for index in _both(texts, window, Path(folder)):
            assert index.check(text, min_chars=1) == []
            index.close()


@settings(max_examples=40, deadline=None)
@given(documents, st.sampled_from(WINDOWS), st.data())
def test_every_match_is_verbatim_in_the_lines_it_names(texts: list[str], window: int, data: st.DataObject) -> None:
    normalized = [text.replace("\r\n", "\n").replace("\r", "\n") for text in texts]
    pieces = data.draw(st.lists(st.one_of(noise, st.sampled_from(normalized).flatmap(_slice_of)), max_size=5))
    text = "".join(pieces)
    with tempfile.TemporaryDirectory() as folder:
        for index in _both(texts, window, Path(folder)):
            for match in index.check(text, min_chars=window):
                named = normalized[int(match.source.path[3:-4])]
                region = "".join(named.splitlines(keepends=True)[match.source.start_line - 1 : match.source.end_line])
                assert match.text == text[match.start : match.end] and match.text in region
            index.close()


def _slice_of(text: str) -> st.SearchStrategy[str]:
    return st.integers(0, len(text)).flatmap(lambda start: st.integers(start, len(text)).map(
        lambda end: text[start:end]))
