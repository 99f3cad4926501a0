"""The service (``playground.service``) over the fake backend: planning a request (parameters validated
once, clamped to the engine and the context, candidates only where a mode gives them), running it
(deltas, the typed record, stops, failures, time limit), sharing only what this server made, through a
real SQLite share store, and shutting down with generations in flight."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest

from playground import __version__
from playground.attribution import Report
from playground.backends.fake import FakeBackend
from playground.checks import AttributionCheck
from playground.config import Settings
from playground.errors import (
    BackendUnavailableError,
    BusyError,
    ConfigError,
    InputError,
    InvalidParameterError,
    ModelError,
    ShareNotFoundError,
    StoreError,
    UnknownModelError,
)
from playground.params import MAX_SEED, GenerationParams
from playground.prompting.chat import CHAT_STOPS
from playground.record import BackendSummary, Timings, Usage
from playground.registry import FimTokens, ModelSpec
from playground.service import Playground, Run
from playground.slots import ModelSlot
from playground.store import ShareStore
from playground.stream import CandidateOutcome, Outcome
from playground.tech_assistant import load_tech_assistant

INPUTS = {"chat": {"message": "Hi"}, "complete": {"prompt": "x = "},
          "fill": {"code": "def f():\n    <FILL_HERE>\n    return result\n"}}
WORDS = " ".join(f"w{i}" for i in range(40))


@dataclass
class CappedFake(FakeBackend):
    """An engine that takes at most ``limit`` new tokens per request, as a remote one may."""

    limit: int = 16

    def info(self):
        return replace(super().info(), max_new_tokens_limit=self.limit)


def make(tmp_path, backend: FakeBackend | None = None, *, store: bool = False,
         checks: AttributionCheck | None = None, **settings) -> Playground:
    backend = backend if backend is not None else FakeBackend()
    spec = ModelSpec("fake", "fake", backend.context_length, fim=FimTokens.starcoder())
    return Playground(Settings(data_dir=tmp_path, **settings), {"fake": ModelSlot(spec, backend)},
                      load_tech_assistant(), ShareStore.open(tmp_path / "shares.db") if store else None, checks)


def finish(run: Run) -> list[str]:
    deltas = list(run)
    assert run.record is not None
    return deltas


def safety_cancel(run: Run, after_s: float = 5.0) -> None:
    """Cancels ``run`` should it wait for the model much longer than a test needs (instead of hanging)."""
    timer = threading.Timer(after_s, run.stop)
    timer.daemon = True
    timer.start()


# -- planning -------------------------------------------------------------------------------


def test_a_playground_needs_a_model(tmp_path):
    with pytest.raises(ConfigError):
        Playground(Settings(data_dir=tmp_path), {}, load_tech_assistant())


@pytest.mark.parametrize("raw", [{"temperature": "hot"}, {"temperature": 0.001}, {"max_new_tokens": 0},
                                 {"top_p": 2}, {"seed": -5}, {"stop": [1]}, {"nope": 1}])
def test_plan_refuses_bad_parameters(tmp_path, raw):
    with pytest.raises(InvalidParameterError):
        make(tmp_path).plan("complete", None, INPUTS["complete"], raw)


def test_plan_validates_once_and_the_backend_gets_exactly_the_plans_parameters(tmp_path):
    backend = FakeBackend(outputs=["a b"])
    playground = make(tmp_path, backend)
    run = playground.start("complete", None, INPUTS["complete"], {"temperature": "0.5", "seed": "42", "top_k": 7.0})
    assert run.params == GenerationParams(temperature=0.5, seed=42, top_k=7, max_new_tokens=256)
    finish(run)
    assert backend.requests[0].params is run.params and run.record.params is run.params


def test_plan_picks_a_concrete_seed_when_none_is_given(tmp_path):
    playground = make(tmp_path)
    seeds = {playground.plan("complete", None, INPUTS["complete"], {"seed": None}).params.seed for _ in range(5)}
    assert all(isinstance(seed, int) and 0 <= seed <= MAX_SEED for seed in seeds) and len(seeds) > 1


@pytest.mark.parametrize(("asked", "planned"), [(500, 16), (16, 16), (5, 5)])
def test_plan_clamps_max_new_tokens_to_the_engines_limit(tmp_path, asked, planned):
    plan = make(tmp_path, CappedFake()).plan("complete", None, INPUTS["complete"], {"max_new_tokens": asked})
    assert plan.params.max_new_tokens == planned


def test_plan_leaves_the_reply_what_the_context_has_left(tmp_path):
    backend = FakeBackend(context_length=64)
    prompt = " ".join(["word"] * 40)
    plan = make(tmp_path, backend).plan("complete", None, {"prompt": prompt}, {"max_new_tokens": 2048})
    assert plan.params.max_new_tokens == 64 - backend.count_tokens(plan.prepared.prompt) == 24
    assert any("at most 24 tokens" in notice for notice in plan.prepared.notices)


def test_plan_adds_the_modes_stops_to_the_users_once(tmp_path):
    plan = make(tmp_path).plan("chat", None, INPUTS["chat"], {"stop": ["END", "\nHuman:"]})
    assert plan.params.stop == ("END", *CHAT_STOPS)


@pytest.mark.parametrize("mode", ["fill", "complete"])
def test_several_candidates_are_planned_for_fill_and_complete(tmp_path, mode):
    plan = make(tmp_path).plan(mode, None, INPUTS[mode], {"n": 3, "temperature": 0.5})
    assert plan.params.n == 3 and plan.prepared.notices == ()


def test_several_candidates_are_refused_for_chat(tmp_path):
    with pytest.raises(InvalidParameterError, match="Set n to 1"):
        make(tmp_path).plan("chat", None, INPUTS["chat"], {"n": 2})


def test_greedy_candidates_become_one_with_a_notice(tmp_path):
    plan = make(tmp_path).plan("complete", None, INPUTS["complete"], {"n": 4, "temperature": 0})
    assert plan.params.n == 1
    assert any("temperature 0" in notice for notice in plan.prepared.notices)


@pytest.mark.parametrize(("mode", "model", "error"), [
    ("paint", None, InputError), (None, None, InputError), ("complete", "gpt-9", UnknownModelError),
    ("complete", 7, InputError), ("complete", ["fake"], InputError),
])
def test_plan_refuses_unknown_modes_and_models(tmp_path, mode, model, error):
    with pytest.raises(error):
        make(tmp_path).plan(mode, model, INPUTS["complete"], None)


def test_an_unknown_model_id_is_not_echoed_in_full(tmp_path):
    with pytest.raises(UnknownModelError) as caught:
        make(tmp_path).plan("complete", "m" * 3_000_000, INPUTS["complete"], None)
    assert len(caught.value.message) < 200


def test_a_model_still_loading_is_refused_with_its_state(tmp_path):
    playground = make(tmp_path)
    playground.slots["fake"].backend = None
    with pytest.raises(ModelError, match="still loading"):
        playground.plan("complete", "fake", INPUTS["complete"], None)


# -- running --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["chat", "fill", "complete"])
def test_a_run_streams_deltas_that_join_into_the_recorded_generated_part(tmp_path, mode):
    output = "  x = 1\n    return result\n"
    playground = make(tmp_path, FakeBackend(outputs=[output]))
    run = playground.start(mode, None, INPUTS[mode])
    assert run.record is None
    deltas = finish(run)
    record = run.record
    assert deltas and "".join(deltas) == record.generated
    assert record.shown == run.present(output) and playground.recent.get(run.id) is record
    if mode == "fill":  # the fill went on past its hole's block: the app ended it there
        assert record.finish_reason == "stop" and record.notices[-1].startswith("The fill was ended")
    else:
        assert record.finish_reason == "eos"


@pytest.mark.parametrize("n", [1, 3])
def test_a_fill_that_leaves_its_holes_block_stops_the_model_there(tmp_path, n):
    """The middle is cut before the new top-level function, and the model is stopped as it begins,
    not run on to the token limit; with the setting off (and loops let run) it runs on."""
    output = "x = 1\n\n\ndef other():\n" + "    pass\n" * 200
    backend = FakeBackend(outputs=[output] * (2 * n))  # queued for both runs
    playground = make(tmp_path, backend)
    params = {"temperature": 0.5, "n": n}
    run = playground.start("fill", None, INPUTS["fill"], params)
    finish(run)
    assert run.record.generated == "x = 1" and backend.requests[-1].cancelled
    assert run.record.finish_reason == "stop"
    run = playground.start("fill", None, INPUTS["fill"], {**params, "end_at_scope": False, "stop_loops": False})
    finish(run)
    assert run.record.generated.startswith("x = 1\n\n\ndef other():") and not backend.requests[-1].cancelled


def test_the_record_is_typed_and_says_what_ran(tmp_path):
    backend = FakeBackend(outputs=["a b c"], delay_s=0.005)
    playground = make(tmp_path, backend)
    before = datetime.now().astimezone()
    run = playground.start("complete", None, INPUTS["complete"], {"temperature": 0.3})
    finish(run)
    record = run.record
    assert (record.id, record.mode, record.model, record.app_version) == (run.id, "complete", "fake", __version__)
    assert abs(datetime.fromisoformat(record.created_at) - before) < timedelta(seconds=5)
    assert isinstance(record.params, GenerationParams) and isinstance(record.params.seed, int)
    assert record.backend == BackendSummary("fake")
    assert record.raw_prompt == backend.render(backend.requests[0].prompt) == "x = "
    assert record.inputs == {"prompt": "x = "} and record.prompt_version is None
    assert record.usage == Usage(backend.count_tokens(backend.requests[0].prompt), 3)
    timings = record.timings
    assert isinstance(timings, Timings) and timings.total_ms >= 15 and 5 <= timings.ttft_ms <= timings.total_ms
    assert timings.tokens_per_s is not None and timings.tokens_per_s > 0
    assert (record.finish_reason, record.error, record.notices) == ("eos", None, [])
    assert record.attribution is None and record.tokens is None and record.candidates is None


def test_chat_records_its_prompt_version(tmp_path):
    run = make(tmp_path).start("chat", None, INPUTS["chat"])
    finish(run)
    assert run.record.prompt_version == load_tech_assistant().version
    assert run.record.inputs == {"messages": [["Hi", None]]}


def test_a_stop_sequence_ends_the_text_before_it(tmp_path):
    run = make(tmp_path, FakeBackend(outputs=["a b END c d"])).start("complete", None, INPUTS["complete"],
                                                                        {"stop": ["END"]})
    assert "".join(finish(run)) == run.record.text == "a b "
    assert run.record.finish_reason == "stop"


def test_a_client_stop_keeps_only_what_the_client_got_and_says_how_much_was_not(tmp_path):
    backend = FakeBackend(outputs=[WORDS], delay_s=0.002)
    run = make(tmp_path, backend).start("complete", None, INPUTS["complete"])
    got = []
    for delta in run:
        got.append(delta)
        if len(got) <= 2:  # the client received two deltas; the connection lost the next two
            run.mark_sent(delta)
        if len(got) == 4:
            run.stop()
    record = run.record
    assert record.finish_reason == "cancelled" and record.incomplete
    assert record.text == "".join(got[:2]) == "w0 w1"
    unsent = len("".join(got)) - len("w0 w1")
    assert f"{unsent} more characters were generated after the stop and are not kept." in record.notices
    assert backend.requests[0].cancelled


def test_a_stop_with_everything_sent_keeps_it_all_without_a_notice(tmp_path):
    run = make(tmp_path, FakeBackend(outputs=[WORDS])).start("complete", None, INPUTS["complete"])
    for delta in run:
        run.mark_sent(delta)
        if len(run.sent) == 3:
            run.stop()
    assert run.record.text == "w0 w1 w2" and run.record.finish_reason == "cancelled"
    assert run.record.notices == []


def test_a_closed_stream_records_what_was_shown_and_frees_the_model(tmp_path):
    backend = FakeBackend(outputs=[WORDS, "next"])
    playground = make(tmp_path, backend)
    run = playground.start("complete", None, INPUTS["complete"])
    stream = iter(run)
    first = next(stream)
    stream.close()  # the tab was closed
    assert run.record.text == first and run.record.finish_reason == "cancelled"
    again = playground.start("complete", None, INPUTS["complete"])
    safety_cancel(again)  # were the model still held, this would wait for ever
    assert "".join(finish(again)) == "next"


def test_a_backend_failure_before_any_text_raises_and_records_nothing(tmp_path):
    backend = FakeBackend(outputs=["fine"], fail_with=BackendUnavailableError("The engine is down."))
    playground = make(tmp_path, backend)
    run = playground.start("complete", None, INPUTS["complete"])
    with pytest.raises(BackendUnavailableError, match="down"):
        list(run)
    assert run.record is None and playground.recent.get(run.id) is None
    backend.fail_with = None
    again = playground.start("complete", None, INPUTS["complete"])
    safety_cancel(again)
    assert "".join(finish(again)) == "fine"  # the model was released


def test_a_failure_midway_keeps_the_text_and_says_it_is_incomplete(tmp_path):
    run = make(tmp_path, FakeBackend(outputs=[WORDS], fail_after=3)).start("complete", None, INPUTS["complete"])
    assert "".join(finish(run)) == run.record.text == "w0 w1 w2"
    assert run.record.finish_reason == "error" and run.record.error
    assert "The generation was interrupted; the output is incomplete." in run.record.notices


def test_the_time_limit_ends_a_generation_as_length_with_a_notice(tmp_path):
    backend = FakeBackend(outputs=[WORDS], delay_s=0.01)
    run = make(tmp_path, backend, generation_timeout_s=0.05).start("complete", None, INPUTS["complete"])
    finish(run)
    assert run.record.finish_reason == "length" and run.record.error is None
    assert "Stopped at the 0.05 s time limit." in run.record.notices
    assert 0 < len(run.record.text) < len(WORDS)


def test_attribution_is_none_when_checks_are_off_and_a_report_when_on(tmp_path):
    off = make(tmp_path / "off")
    run = off.start("complete", None, INPUTS["complete"])
    finish(run)
    assert run.record.attribution is None
    check = AttributionCheck(tmp_path, default=False)  # never started: its report says why it is unavailable
    on = make(tmp_path / "on", checks=check)
    run = on.start("complete", None, INPUTS["complete"])
    finish(run)
    assert run.record.attribution == Report.not_made(check.message)


# -- sharing --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["chat", "fill", "complete"])
def test_a_shared_generation_opens_identical_through_the_store(tmp_path, mode):
    playground = make(tmp_path, FakeBackend(outputs=["x = 1\n    return result\n"]), store=True)
    run = playground.start(mode, None, INPUTS[mode], {"temperature": 0.4})
    finish(run)
    created = playground.share(run.id)
    assert created.is_new
    opened = playground.open_share(created.id)
    assert opened == run.record and opened.generated == run.record.generated


def test_a_shared_generation_with_tokens_and_candidates_reads_back_as_it_was_written(tmp_path):
    playground = make(tmp_path, FakeBackend(outputs=["a = 1", "b = 2"]), store=True)
    run = playground.start("fill", None, INPUTS["fill"], {"n": 2, "temperature": 0.8, "logprobs": 2})
    finish(run)
    opened = playground.open_share(playground.share(run.id).id)
    assert opened.to_dict() == run.record.to_dict()
    assert opened.candidates[0].shown.generated == run.record.candidates[0].shown.generated


def test_sharing_again_gives_the_same_share_without_a_token(tmp_path):
    playground = make(tmp_path, store=True)
    run = playground.start("complete", None, INPUTS["complete"])
    finish(run)
    first, second = playground.share(run.id), playground.share(run.id)
    assert second.id == first.id and second.delete_token is None


@pytest.mark.parametrize("generation_id", ["A" * 22, "", None, 123, ["x"], {"text": "forged"}])
def test_only_a_generation_this_server_holds_can_be_shared(tmp_path, generation_id):
    playground = make(tmp_path, store=True)
    with pytest.raises(ShareNotFoundError, match="Generate again"):
        playground.share(generation_id)


def test_sharing_off_is_said_plainly(tmp_path):
    playground = make(tmp_path)
    run = playground.start("complete", None, INPUTS["complete"])
    finish(run)
    with pytest.raises(StoreError, match="turned off"):
        playground.share(run.id)
    with pytest.raises(StoreError, match="turned off"):
        playground.open_share("A" * 22)


def test_a_deleted_share_no_longer_opens(tmp_path):
    playground = make(tmp_path, store=True)
    run = playground.start("complete", None, INPUTS["complete"])
    finish(run)
    created = playground.share(run.id)
    playground.delete_share(created.id, created.delete_token)
    with pytest.raises(ShareNotFoundError):
        playground.open_share(created.id)


# -- shutting down --------------------------------------------------------------------------


def test_shutdown_stops_running_and_waiting_generations(tmp_path):
    backend = FakeBackend(outputs=[WORDS * 10], delay_s=0.01)
    playground = make(tmp_path, backend, store=True)
    running = playground.start("complete", None, INPUTS["complete"])
    waiting = playground.start("complete", None, INPUTS["complete"])
    started, results = threading.Event(), {}

    def consume(name: str, run: Run) -> None:
        try:
            for _ in run:
                started.set()
            results[name] = run.record
        except BusyError as exc:
            results[name] = exc

    threads = [threading.Thread(target=consume, args=item) for item in (("running", running), ("waiting", waiting))]
    threads[0].start()
    assert started.wait(5)
    threads[1].start()
    deadline = time.monotonic() + 5
    while playground.queue_depth() != 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert playground.queue_depth() == 1
    playground.shutdown(grace_s=5)
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()
    assert results["running"].finish_reason == "cancelled" and backend.requests[0].cancelled
    assert playground.recent.get(running.id) is results["running"]
    # The waiting run gives up in the queue, or (when the model frees up within the queue's 0.1 s poll,
    # the usual case) takes its turn already cancelled: either way it generates nothing.
    waited = results["waiting"]
    assert isinstance(waited, BusyError) or (waited.finish_reason == "cancelled" and waited.text == "")
    assert all(request.cancelled for request in backend.requests)


def test_candidates_speed_is_one_candidates_tokens_over_the_whole_time():
    """Candidates arrive together at the end, so "after the first token" would divide by almost nothing
    (tens of thousands of tok/s); each candidate's share of the tokens over the whole time is its speed."""
    outcome = Outcome(completion_tokens=512, total_ms=2000.0, ttft_ms=1999.0,
                      candidates=[CandidateOutcome() for _ in range(4)])
    assert outcome.tokens_per_s == 64.0
    assert Outcome(completion_tokens=101, total_ms=1100.0, ttft_ms=100.0).tokens_per_s == 100.0


def test_a_stop_sequence_is_cut_before_a_modes_own_ending_keeps_its_text():
    """Both can end a text on the same delta: the stop sequence is cut out, the mode's ending keeps what
    came (the mode trims it itself), and nothing passes either."""
    from playground.stream import StopCutter

    both = StopCutter(("END",), ended=lambda raw: "def" in raw)
    assert both.feed("x = 1\nEND\ndef g") == "x = 1\n" and both.stopped and both.feed("more") == ""
    mode_only = StopCutter(("END",), ended=lambda raw: "def" in raw)
    assert mode_only.feed("x = 1\n\n") == "x = 1\n\n" and not mode_only.stopped
    assert mode_only.feed("def g") == "def g" and mode_only.stopped and mode_only.flush() == ""


def test_a_record_viewed_as_one_of_its_candidates_is_that_candidate_throughout(tmp_path):
    backend = FakeBackend(outputs=["a = 1\n", "b = 2\n", "c = 3\n"] * 2)
    playground = make(tmp_path, backend)
    run = playground.start("complete", None, {"prompt": "x = "}, {"n": 3, "temperature": 0.5})
    finish(run)
    record = run.record
    assert record.viewed(0)[0] == record.shown and record.viewed(0)[1] is None  # no tokens were asked for
    assert record.viewed(2)[0] == record.candidates[2].shown != record.shown
    weighed = playground.start("complete", None, {"prompt": "x = "}, {"n": 3, "temperature": 0.5, "logprobs": 1})
    finish(weighed)
    assert weighed.record.viewed(1)[1] == weighed.record.candidates[1].tokens
