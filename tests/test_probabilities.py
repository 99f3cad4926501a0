"""Token probabilities and candidates through the service, on the fake backend: the token texts always
join into what the user sees, in every mode, and candidates are merged and ranked."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.backends.base import TokenInfo
from playground.backends.fake import FakeBackend
from playground.config import Settings
from playground.errors import InvalidParameterError
from playground.params import PARAMS, GenerationParams
from playground.probabilities import TokenTrack, mean_logprob, rank
from playground.record import Candidate, Shown
from playground.registry import FimTokens, ModelSpec
from playground.service import Playground
from playground.slots import ModelSlot
from playground.tech_assistant import load_tech_assistant
from tests.conftest import as_json


@dataclass
class SplittingFake(FakeBackend):
    """Like an engine whose tokens end inside multi-byte characters: a piece with a non-ASCII
    character comes as two tokens, the first with no text of its own."""

    def _details(self, position, piece, params):
        details = super()._details(position, piece, params)
        if not details or piece.isascii():
            return details
        [token] = details
        return (TokenInfo("", -0.25, token.top), TokenInfo(piece, token.logprob, token.top))


def playground_over(backend: FakeBackend, tmp_path) -> Playground:
    spec = ModelSpec("fake", "fake", backend.context_length, fim=FimTokens.starcoder())
    return Playground(Settings(data_dir=tmp_path), {"fake": ModelSlot(spec, backend)}, load_tech_assistant())


INPUTS = {"complete": {"prompt": "x = "}, "fill": {"code": "def f():\n    <FILL_HERE>\n    return 1\n"},
          "chat": {"message": "Hi"}}


def generated(record) -> str:
    return record.middle if record.mode == "fill" else record.text


def run_all(playground: Playground, mode: str, params: dict):
    run = playground.start(mode, None, INPUTS[mode], params)
    pieces = list(run.pieces())
    return as_json(run.record), pieces


# -- the token track --------------------------------------------------------------


def test_a_slice_clips_the_tokens_at_its_ends_and_keeps_their_numbers():
    track = TokenTrack()
    track.add("def foo", [TokenInfo("def", -0.1), TokenInfo(" foo", -0.2)])
    track.add("()", [TokenInfo("()", -0.3)])
    assert [(t.text, t.logprob) for t in track.slice(2, 6)] == [("f", -0.1), (" fo", -0.2)]
    assert "".join(t.text for t in track.slice(0, 9)) == "def foo()"
    assert track.slice(4, 4) == []


def test_tokens_inside_a_character_count_with_the_token_that_completes_it():
    track = TokenTrack()
    track.add("é", [TokenInfo("", -1.0), TokenInfo("é", -0.5)])
    [token] = track.slice(0, 1)
    assert token.text == "é" and token.logprob == pytest.approx(-1.5)


def test_token_texts_that_do_not_add_up_make_the_track_unusable():
    track = TokenTrack()
    track.add("abc", [TokenInfo("ab", -0.1)])
    assert not track.complete


def test_rank_merges_identical_candidates_and_puts_the_most_likely_first():
    def cand(text, *logprobs):
        tokens = [TokenInfo(text, lp) for lp in logprobs]
        return Candidate(Shown(text, text), "eos", tokens, mean_logprob=mean_logprob(tokens))

    ranked = rank([cand("a", -2.0), cand("b", -0.5), cand("a", -2.0), cand("")])
    assert [(c.shown.text, c.count, c.mean_logprob) for c in ranked] == [("b", 1, -0.5), ("a", 2, -2.0),
                                                                           ("", 1, None)]


# -- through the service ---------------------------------------------------------------

MULTIBYTE = st.text(st.sampled_from(list("ab é中😀\n=(")), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(output=MULTIBYTE, mode=st.sampled_from(["complete", "fill", "chat"]), cut=st.integers(0, 40),
       stop_len=st.integers(1, 4))
def test_token_texts_join_into_the_text_in_every_mode(tmp_path, output, mode, cut, stop_len):
    stop = output[cut % len(output):][:stop_len]  # often inside a piece: the stop cuts a token
    playground = playground_over(SplittingFake(outputs=[output]), tmp_path)
    record, pieces = run_all(playground, mode, {"logprobs": 2, "stop": [stop], "temperature": 0.5})
    assert record.tokens is not None
    assert "".join(t["text"] for t in record.tokens) == generated(record)
    assert all(len(t["top"]) <= 2 for t in record.tokens)
    # streamed: each delta's tokens join into the delta, and the deltas into the record
    assert all("".join(t["text"] for t in tokens or []) == delta for delta, tokens in pieces)
    assert "".join(delta for delta, _ in pieces) == generated(record)


def test_greedy_tokens_lead_their_alternatives(tmp_path):
    playground = playground_over(FakeBackend(outputs=["a = 1\nb = 2\n"]), tmp_path)
    record, _ = run_all(playground, "complete", {"logprobs": 3, "temperature": 0})
    assert record.tokens and all(t["top"][0] == {"text": t["text"], "logprob": t["logprob"]} for t in record.tokens)


def test_without_logprobs_the_record_has_no_tokens(tmp_path):
    playground = playground_over(FakeBackend(outputs=["a = 1\n"]), tmp_path)
    record, pieces = run_all(playground, "complete", {})
    assert record.tokens is None and record.candidates is None and all(t is None for _, t in pieces)


def test_candidates_are_ranked_merged_and_the_best_is_the_record(tmp_path):
    # Scripted numbers: shorter pieces score higher, so "x" beats "yyyy yyyy".
    backend = FakeBackend(outputs=["yyyy yyyy", "x", "x", "zz"], logprob_of=lambda _pos, piece: -len(piece))
    playground = playground_over(backend, tmp_path)
    record, pieces = run_all(playground, "complete", {"n": 4, "temperature": 0.8})
    assert pieces == []  # several candidates are ranked once done: nothing streams
    assert [(c["text"], c["count"]) for c in record.candidates] == [("x", 2), ("zz", 1), ("yyyy yyyy", 1)]
    assert [c["mean_logprob"] for c in record.candidates] == [-1.0, -2.0, pytest.approx(-4.5)]
    assert record.text == "x" and record.tokens is None  # logprobs 0: scores only, no alternatives
    assert "tokens" not in record.candidates[0]
    assert backend.requests[0].params.n == 4 and backend.requests[0].params.wants_logprobs


def test_fill_candidates_carry_their_middle_and_tokens(tmp_path):
    playground = playground_over(FakeBackend(outputs=["x = 1", "y = 2"]), tmp_path)
    record, _ = run_all(playground, "fill", {"n": 2, "temperature": 0.8, "logprobs": 1})
    assert {c["middle"] for c in record.candidates} == {"x = 1", "y = 2"}
    for candidate in record.candidates:
        assert candidate["text"] == "def f():\n    " + candidate["middle"] + "\n    return 1\n"
        assert "".join(t["text"] for t in candidate["tokens"]) == candidate["middle"]
    assert record.middle == record.candidates[0]["middle"] and record.tokens == record.candidates[0]["tokens"]


def test_greedy_with_several_candidates_makes_one_and_says_why(tmp_path):
    backend = FakeBackend(outputs=["x"])
    record, _ = run_all(playground_over(backend, tmp_path), "complete", {"n": 4, "temperature": 0})
    assert backend.requests[0].params.n == 1 and record.candidates is None
    assert any("temperature 0" in notice for notice in record.notices)


def test_chat_refuses_several_candidates(tmp_path):
    with pytest.raises(InvalidParameterError, match="fill and complete"):
        playground_over(FakeBackend(), tmp_path).start("chat", None, INPUTS["chat"], {"n": 2})


@pytest.mark.parametrize("raw", [{"logprobs": 6}, {"logprobs": -1}, {"n": 0}, {"n": 9}, {"n": 1.5}])
def test_logprobs_and_n_are_bounded(raw):
    with pytest.raises(InvalidParameterError):
        GenerationParams.parse(raw)
    assert PARAMS["logprobs"].bound.maximum == 5 and PARAMS["n"].bound.maximum == 8


def test_a_stopped_run_keeps_the_tokens_of_what_was_sent(tmp_path):
    backend = FakeBackend(outputs=["one two three four five six"], delay_s=0.02)
    run = playground_over(backend, tmp_path).start("complete", None, {"prompt": "x"}, {"logprobs": 1})
    for delta, _tokens in run.pieces():
        run.mark_sent(delta)
        if len(run.sent or []) == 2:
            run.stop()
    record = as_json(run.record)
    assert record.finish_reason == "cancelled"
    assert "".join(t["text"] for t in record.tokens) == record.text == "".join(run.sent or [])

