"""Shares stored before the record became typed open exactly as they were written.

``data/records-before-typed.json`` holds records made by the app's code of
2026-12-06 (before commit "typed record"), one per mode and feature:
greedy and sampled completions, candidates with and without alternatives,
fills with a filename, stops and candidates, chats with a history and with a
user's own prompt, an attribution match and an unavailable attribution.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playground.modes import Modes
from playground.store import ShareStore
from playground.tech_assistant import load_tech_assistant

RECORDS = json.loads((Path(__file__).parent / "data" / "records-before-typed.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def modes() -> Modes:
    return Modes(load_tech_assistant())


@pytest.mark.parametrize("data", RECORDS, ids=[f"{r['mode']}-{i}" for i, r in enumerate(RECORDS)])
def test_an_old_record_reads_and_writes_back_identically(modes: Modes, data: dict) -> None:
    record = modes.read_record(data)
    again = record.to_dict()
    assert again == data
    assert list(again) == list(data)  # and in the same key order


def test_the_generated_part_of_an_old_record_is_what_its_mode_generated(modes: Modes) -> None:
    for data in RECORDS:
        record = modes.read_record(data)
        assert record.generated == (data["middle"] if data["mode"] == "fill" else data["text"])
        for candidate, stored in zip(record.candidates or [], data["candidates"] or [], strict=True):
            assert candidate.shown.generated == stored.get("middle", stored["text"])


def test_old_records_survive_the_real_store(tmp_path: Path, modes: Modes) -> None:
    store = ShareStore.open(tmp_path / "shares.db")
    try:
        for data in RECORDS:
            created = store.create(modes.read_record(data))
            assert store.get(created.id, read=modes.read_record).to_dict() == data
    finally:
        store.close()
