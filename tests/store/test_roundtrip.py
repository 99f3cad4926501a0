"""Save-then-open property tests: thousands of random records come back exactly.

Strings draw from every code point, surrogates and NUL included. The only
change allowed is each surrogate becoming U+FFFD; types (bool vs int, -0.0)
are checked too, not just ``==``.

Two tests share the checks: a Hypothesis test over the full record structure
(it shrinks failures to a minimal record), and a batch test where Hypothesis
draws seeds and a seeded generator builds many records per example, because
drawing a whole Generation through Hypothesis costs ~20 ms on a slow CPU and
thousands of them would take minutes.
"""

from __future__ import annotations

import dataclasses
import math
import random
import secrets
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.params import GenerationParams
from playground.record import BackendSummary, Generation, Shown, Timings, Usage
from playground.store import ShareStore
from tests.store.store_factories import make_generation

# Every code point, including lone surrogates (Cs) and controls.
ANY_CHAR = st.characters(codec=None, exclude_categories=())
TEXT = st.text(ANY_CHAR, max_size=40)
# Bias towards the awkward ones so each example is likely to contain some.
AWKWARD = st.sampled_from(
    ["\x00", "\ud800", "\udfff", "\ud83d\ude00", "😀", "\u2028", "\ufeff", "\U0010ffff", "\r\n", '"\\']
)
TEXTS = st.one_of(TEXT, st.lists(st.one_of(TEXT, AWKWARD), max_size=6).map("".join))

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    # NaN is excluded only because NaN != NaN; infinities and -0.0 must round-trip.
    st.floats(allow_nan=False),
    TEXTS,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXTS, inner, max_size=4)),
    max_leaves=6,
)

FLOATS = st.floats(allow_nan=False)
SOME_TEXT = st.none() | TEXTS
GENERATIONS = st.builds(
    Generation,
    id=TEXTS,
    mode=st.sampled_from(["chat", "fill", "complete"]) | TEXTS,
    model=TEXTS,
    created_at=TEXTS,
    app_version=TEXTS,
    inputs=st.dictionaries(TEXTS, JSON, max_size=4),
    raw_prompt=TEXTS,
    prompt_version=SOME_TEXT,
    params=st.builds(GenerationParams, max_new_tokens=st.integers(0, 2**40), temperature=FLOATS, top_p=FLOATS,
                     top_k=st.integers(-(2**40), 2**40), repetition_penalty=FLOATS,
                     stop=st.lists(TEXTS, max_size=3).map(tuple), seed=st.none() | st.integers(0, 2**32 - 1),
                     logprobs=st.integers(0, 5), n=st.integers(1, 8)),
    backend=st.builds(BackendSummary, kind=TEXTS, endpoint=SOME_TEXT, dtype=SOME_TEXT, quantization=SOME_TEXT,
                      revision=SOME_TEXT, placement=SOME_TEXT),
    shown=st.builds(Shown, text=TEXTS, generated=TEXTS,
                    fields=st.just({}) | st.builds(lambda middle: {"middle": middle}, SOME_TEXT)),
    finish_reason=st.sampled_from(["length", "eos", "stop", "cancelled", "error"]) | TEXTS,
    error=SOME_TEXT,
    notices=st.lists(TEXTS, max_size=3),
    usage=st.builds(Usage, st.integers(min_value=0, max_value=2**40), st.integers(min_value=0, max_value=2**40)),
    timings=st.builds(Timings, st.none() | FLOATS, FLOATS, st.none() | FLOATS),
)


def expected(value: Any) -> Any:
    """The stored form, computed independently of the store's own scrubber."""
    if isinstance(value, str):
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    if isinstance(value, dict):
        return {expected(k): expected(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expected(v) for v in value]
    return value


def assert_identical(got: Any, want: Any, where: str = "$") -> None:
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        assert list(got) == list(want), f"{where}: keys differ"
        for key in want:
            assert_identical(got[key], want[key], f"{where}[{key!r}]")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: lengths differ"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_identical(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == want and math.copysign(1, got) == math.copysign(1, want), f"{where}: {got!r} != {want!r}"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


QUIET = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

# Code point ranges for the seeded generator, each picked with equal chance.
RANGES = [(0x20, 0x7E), (0x00, 0x1F), (0x80, 0xD7FF), (0xD800, 0xDFFF), (0xE000, 0xFFFF), (0x10000, 0x10FFFF)]
AWKWARD_TEXT = ["\x00", "\ud800", "\udfff", "\ud83d\ude00", "\u2028", "\ufeff", "\r\n", '"\\', "\U0010ffff"]


def random_text(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randrange(0, 24)):
        if rng.random() < 0.1:
            parts.append(rng.choice(AWKWARD_TEXT))
        else:
            low, high = rng.choice(RANGES)
            parts.append(chr(rng.randint(low, high)))
    return "".join(parts)


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-(2**70), 2**70)
    if kind == 3:
        return rng.choice([0.0, -0.0, math.inf, -math.inf, 5e-324, 1.7976931348623157e308, rng.uniform(-1e9, 1e9)])
    if kind in (4, 5, 6):
        return random_text(rng)
    if kind == 7:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {random_text(rng): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def random_generation(rng: random.Random) -> Generation:
    def maybe_text() -> str | None:
        return None if rng.random() < 0.3 else random_text(rng)

    def mapping(n: int) -> dict[str, Any]:
        return {random_text(rng): random_json(rng) for _ in range(rng.randrange(n))}

    def number() -> float:
        return float(rng.choice([0.0, -0.0, math.inf, -math.inf, 5e-324, rng.uniform(-1e9, 1e9)]))

    params = GenerationParams(rng.randint(1, 2**40), number(), number(), rng.randint(0, 2**40), number(),
                              tuple(random_text(rng) for _ in range(rng.randrange(3))),
                              rng.choice([None, rng.randint(0, 2**32 - 1)]), rng.randint(0, 5), rng.randint(1, 8))
    fields = rng.choice([{}, {"middle": maybe_text()}])
    return Generation(
        id=random_text(rng), mode=rng.choice(["chat", "fill", "complete"]), model=random_text(rng),
        created_at=random_text(rng), app_version=random_text(rng), inputs=mapping(4),
        raw_prompt=random_text(rng), prompt_version=maybe_text(), params=params,
        backend=BackendSummary(random_text(rng), maybe_text(), maybe_text(), maybe_text(), maybe_text(), maybe_text()),
        shown=Shown(random_text(rng), random_text(rng), fields), finish_reason=random_text(rng), error=maybe_text(),
        notices=[random_text(rng) for _ in range(rng.randrange(3))],
        usage=Usage(rng.randint(0, 2**40), rng.randint(0, 2**40)),
        timings=Timings(rng.choice([None, number()]), number(), rng.choice([None, number()])),
    )


def test_hypothesis_records_round_trip_exactly(tmp_path: Path) -> None:
    store = ShareStore.open(tmp_path / "shares.db")

    @settings(QUIET, max_examples=100)
    @given(GENERATIONS)
    def save_then_open(generation: Generation) -> None:
        # A fresh id each example: sharing one generation id again returns its first share, by design.
        generation = dataclasses.replace(generation, id=secrets.token_urlsafe(16))
        created = store.create(generation)
        assert_identical(store.get(created.id).to_dict(), expected(generation.to_dict()))

    save_then_open()
    store.close()


def test_thousands_of_random_records_round_trip_exactly(tmp_path: Path) -> None:
    store = ShareStore.open(tmp_path / "shares.db")
    saved: list[tuple[str, dict[str, Any]]] = []

    @settings(QUIET, max_examples=200)
    @given(st.integers(min_value=0, max_value=2**64))
    def save_then_open(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(10):
            generation = dataclasses.replace(random_generation(rng), id=secrets.token_urlsafe(16))
            want = expected(generation.to_dict())
            created = store.create(generation)
            assert_identical(store.get(created.id).to_dict(), want)
            saved.append((created.id, want))

    save_then_open()
    assert len(saved) >= 2000
    store.close()

    # Everything is still there, exactly, through a new engine on the same file.
    reopened = ShareStore.open(tmp_path / "shares.db")
    for share_id, want in saved:
        assert_identical(reopened.get(share_id).to_dict(), want)
    reopened.close()


def test_surrogates_are_replaced_and_everything_else_kept(tmp_path: Path) -> None:
    store = ShareStore.open(tmp_path / "shares.db")

    tricky = "a\x00b\ud800c\udfffd\ud83d\ude00e😀\u2028\U0010ffff"
    created = store.create(make_generation(text=tricky, inputs={"\ud800key": [tricky, -0.0, True, 1, 2**65]}))
    got = store.get(created.id)
    assert got.text == "a\x00b\ufffdc\ufffdd\ufffd\ufffde😀\u2028\U0010ffff"
    assert_identical(got.inputs, {"\ufffdkey": [got.text, -0.0, True, 1, 2**65]})
    store.close()
