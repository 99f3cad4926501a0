"""Token healing in the local backend, on the shipped nano-starcoder.

A prompt that ends after a newline or bare indentation ends on a token the model rarely saw there
(StarCoder-style BPE merges a newline with the indentation after it). Healing takes that token back
and lets the model spell its text again in any way consistent with it (``"\n   "`` + ``" return"`` for
four spaces); the text shown never repeats it, deltas join into the record, and probabilities, stops
and candidates compose with it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from playground.backends.local_healing import Healer
from playground.service import Playground
from playground.slots import ModelSlot
from playground.tech_assistant import load_tech_assistant


def complete(playground, prompt: str, **params):
    run = playground.start("complete", None, {"prompt": prompt}, {"temperature": 0, "max_new_tokens": 24, **params})
    pieces = list(run.pieces())
    return run.record, pieces


@pytest.mark.parametrize(("prompt", "healed"), [
    ("def quicksort(items):\n", "'\\n'"),  # a bare newline after a block opener
    ("def add(a, b):\n    ", "'\\n    '"),  # bare indentation: the newline and the spaces are one token
    ("class Stack:\n    def push(self, item):\n", "'\\n'"),
])
def test_a_prompt_ending_in_a_newline_or_indentation_is_healed_into_the_body(playground, prompt, healed):
    record, pieces = complete(playground, prompt, logprobs=2)
    notice = next(n for n in record.notices if n.startswith("Token healing"))
    assert healed in notice
    first_line = (prompt.rsplit("\n", 1)[-1] + record.text).split("\n", 1)[0]
    assert first_line.startswith(" ") and first_line.strip(), record.text  # the block's indented body
    assert "".join(delta for delta, _ in pieces) == record.text  # deltas join into the record
    assert "".join(t.text for t in record.tokens) == record.text  # and so do the tokens behind it
    assert all(all(a.text for a in t.top) for t in record.tokens)  # no alternative repeats the prompt's text


def test_healing_off_sends_the_prompt_as_it_is(playground):
    record, _ = complete(playground, "def quicksort(items):\n", heal=False)
    assert not any(n.startswith("Token healing") for n in record.notices)
    assert record.usage.prompt_tokens == complete(playground, "def quicksort(items):\n")[0].usage.prompt_tokens


@pytest.mark.parametrize("prompt", ["    for", "x = 'é", "s = '中文", "emoji = '😀"])
def test_text_that_no_longer_token_extends_or_multibyte_ends_stays_exact(playground, prompt):
    record, pieces = complete(playground, prompt, logprobs=1, seed=3, temperature=0.7)
    assert "".join(delta for delta, _ in pieces) == record.text
    assert "".join(t.text for t in record.tokens or []) == record.text


def test_a_prompt_ending_in_part_of_a_character_is_not_healed(playground):
    record, _ = complete(playground, "emoji = '😀")  # byte tokens: the last one alone is not text
    assert not any(n.startswith("Token healing") for n in record.notices)


def test_a_stop_right_after_the_healed_text_still_cuts(playground):
    record, _ = complete(playground, "def quicksort(items):\n", stop=["\n"], max_new_tokens=40)
    assert record.finish_reason in ("stop", "length", "eos") and "\n" not in record.text
    assert record.text.startswith(" ")  # the healed newline is the prompt's, not a stop at the start


def test_candidates_are_each_healed(playground):
    run = playground.start("complete", None, {"prompt": "def fibonacci(n):\n"},
                           {"n": 3, "temperature": 0.9, "seed": 5, "max_new_tokens": 16})
    list(run)
    assert run.record is not None and run.record.candidates
    assert all(not c.shown.text.startswith("\n") for c in run.record.candidates)


def test_a_prefix_suffix_middle_fill_heals_the_end_of_its_prefix(playground):
    """Real StarCoder's order puts the prefix before the suffix: its last token is taken back there, and the
    middle must begin with it."""
    slot = playground.slots["nano-starcoder"]
    assert slot.spec.fim is not None
    psm = replace(slot.spec, fim=replace(slot.spec.fim, order="psm"))
    server = Playground(playground.settings, {psm.id: ModelSlot(psm, slot.backend)}, load_tech_assistant())
    code = "def add(a, b):\n    <FILL_HERE>\n\n\nprint(add(1, 2))\n"
    run = server.start("fill", None, {"code": code}, {"temperature": 0, "max_new_tokens": 16})
    deltas = list(run)
    record = run.record
    assert record is not None and record.raw_prompt.startswith("<fim_prefix>def add(a, b):\n    <fim_suffix>")
    assert any(n.startswith("Token healing") and "'\\n    '" in n for n in record.notices), record.notices
    assert "".join(deltas) == record.generated and not record.generated.startswith("\n")


@pytest.mark.parametrize("code", [
    "def add(a, b):\n    <FILL_HERE>\n",
    "import os\n\ndef list_files(path):\n    <FILL_HERE>\n    return files\n",
    "class Point:\n    def __init__(self, x, y):\n        <FILL_HERE>\n",
    "def read_json(path):\n    with open(path) as f:\n        <FILL_HERE>\n",
])
def test_a_fill_after_bare_indentation_writes_at_that_indentation(playground, code):
    """The user's indentation is kept: with only the tokens that begin with "\\n    " allowed first, the
    model's nearest spelling was one level deeper, and every one of these fills came back indented twice."""
    run = playground.start("fill", None, {"code": code}, {"temperature": 0, "max_new_tokens": 12})
    list(run)
    assert run.record is not None and run.record.generated.strip(), run.record
    assert not run.record.generated[0].isspace(), run.record.generated


def test_the_healed_text_may_be_spelled_in_several_tokens(nano_backend):
    """After "\\n   " (three spaces) the one space still owed must begin the next token; after that,
    nothing is constrained."""
    tokenizer, texts = nano_backend.tokenizer, nano_backend._texts
    ids = {text: tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text)) for text in ("\n   ", " return", "x")}
    assert all(len(found) == 1 for found in ids.values()), ids  # each is one token of nano's vocabulary
    healer = Healer("\n    ", texts, prompt_length=3)
    width = len(tokenizer)

    def allowed(generated: list[int]) -> set[int]:
        scores = healer(torch.tensor([[0, 0, 0, *generated]]), torch.zeros(1, width))
        return set(torch.isfinite(scores[0]).nonzero().squeeze(1).tolist())

    first = allowed([])
    assert ids["\n   "][0] in first and ids["x"][0] not in first
    assert all(texts.length[i] and ("\n    ".startswith(tokenizer.decode([i])) or tokenizer.decode([i]).startswith(
        "\n    ")) for i in first)
    second = allowed(ids["\n   "])
    assert ids[" return"][0] in second and ids["\n   "][0] not in second
    assert all(tokenizer.decode([i]).startswith(" ") for i in second)
    assert len(allowed([*ids["\n   "], *ids[" return"]])) == width  # given back: free from here on
