"""TgiBackend against the TGI STAND-IN over real HTTP (no mocks of our own code).

Timeouts are shortened through the constructor so the fault tests stay fast.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import replace

import httpx
import pytest

from playground.backends.tgi import TgiBackend
from playground.backends.wire import RemoteLimits, sampling, tgi_parameters
from playground.errors import (
    BackendBusyError,
    BackendTimeoutError,
    BackendUnavailableError,
    EngineRejectedError,
    GenerationFailedError,
    PromptTooLongError,
)
from playground.params import GenerationParams
from playground.prompt import Prompt, Special
from playground.web.errors import status_of
from support.standins.common import Behaviour, StandinConfig, free_port
from support.standins.fixtures import (  # noqa: F401 - tgi_standin is a fixture
    FAST_BACKOFF_S,
    FAST_TIMEOUTS,
    RunningStandin,
    collect,
    running_tgi,
    starcoder_spec,
    subprocess_tgi,
    tgi_standin,
    thread_count_settles,
    wait_for,
)

pytestmark = pytest.mark.timeout(30)

PROMPT = Prompt.of("def add(a, b):\n")
GREEDY = GenerationParams(max_new_tokens=8, temperature=0)


def backend(url: str, first_token_s: float | None = None, idle_s: float | None = None,
            **options: object) -> TgiBackend:
    timeouts = replace(FAST_TIMEOUTS, first_token_s=first_token_s or FAST_TIMEOUTS.first_token_s,
                       idle_s=idle_s or FAST_TIMEOUTS.idle_s)
    return TgiBackend(starcoder_spec(), url, timeouts=timeouts, retry_backoff_s=FAST_BACKOFF_S,
                        **options)  # type: ignore[arg-type]


def params_sent(standin: RunningStandin, index: int = -1) -> dict:
    return standin.state.requests[index]["body"]["parameters"]


# -- limits and info -----------------------------------------------------------------


def test_info_reports_the_engine_limits(tgi_standin: RunningStandin) -> None:
    info = backend(tgi_standin.url, concurrency=8).info()
    assert info.loaded is True
    assert (info.backend, info.model_id, info.endpoint) == ("tgi", "starcoder", tgi_standin.url)
    assert (info.context_length, info.max_input_tokens, info.max_stop_sequences) == (2048, 1024, 4)
    assert info.max_new_tokens_limit == 2047
    assert info.concurrency == 8
    assert info.extra["server_model"] == "bigcode/starcoder"


def test_count_tokens_is_a_conservative_character_estimate(tgi_standin: RunningStandin) -> None:
    prompt = Prompt.of(Special("<fim_prefix>"), "x" * 99, Special("<fim_suffix>"))
    assert backend(tgi_standin.url).count_tokens(prompt) == math.ceil(101 / 3.2)


def test_parameters_respect_tgi_rules() -> None:
    limits = RemoteLimits(max_total_tokens=2048, max_input_tokens=1024, max_new_tokens=2047, max_stop_sequences=4)
    greedy = tgi_parameters(sampling(GenerationParams(temperature=0, top_p=0.5, top_k=5, repetition_penalty=1.0), limits, 10))
    assert greedy == {"max_new_tokens": 256, "do_sample": False}
    sampled = tgi_parameters(sampling(GenerationParams(temperature=0.7, top_p=1.0, top_k=0, seed=3), limits, 10))
    assert sampled == {"max_new_tokens": 256, "do_sample": True, "temperature": 0.7, "seed": 3, "repetition_penalty": 1.2}
    clamped = tgi_parameters(sampling(GenerationParams(max_new_tokens=2048, stop=tuple("abcdef")), limits, 2000))
    assert clamped["max_new_tokens"] == 48 and clamped["stop"] == ["a", "b", "c", "d"]
    assert tgi_parameters(sampling(GenerationParams(max_new_tokens=100), limits, 5000))["max_new_tokens"] == 1


# -- streaming -------------------------------------------------------------------------


def test_stream_skips_special_tokens_and_maps_eos(tgi_standin: RunningStandin) -> None:
    tgi_standin.state.script(Behaviour(tokens=["def", " f", "():"]))
    result = collect(backend(tgi_standin.url).stream(PROMPT, GREEDY, threading.Event()))
    assert result.text == "def f():"
    assert "<|endoftext|>" not in result.text
    assert result.finished.reason == "eos"
    assert result.finished.completion_tokens == 4  # three tokens and the end-of-text one, as TGI counts
    assert result.finished.prompt_tokens == math.ceil(len("def add(a, b):\n") / 4)  # the engine's own count


def test_finish_reasons_length_and_stop_sequence(tgi_standin: RunningStandin) -> None:
    tgi = backend(tgi_standin.url)
    length = collect(tgi.stream(PROMPT, GenerationParams(max_new_tokens=3, temperature=0), threading.Event()))
    assert (length.finished.reason, len(length.chunks)) == ("length", 3)
    stop = collect(tgi.stream(PROMPT, GenerationParams(max_new_tokens=50, temperature=0, stop=("):",)), threading.Event()))
    assert stop.finished.reason == "stop"
    assert stop.text.endswith("):")


def test_request_goes_to_base_url_within_the_engine_rules(
    tgi_standin: RunningStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_machine_token")  # the hub client would send this to any URL
    prompt = Prompt.of(Special("<fim_prefix>"), "a = '<fim_middle><|endoftext|>'", Special("<fim_suffix>"), Special("<fim_middle>"))
    params = GenerationParams(max_new_tokens=20, temperature=0.5, top_p=1.0, top_k=0, repetition_penalty=1.0, seed=7, stop=tuple("123456"))
    collect(backend(tgi_standin.url).stream(prompt, params, threading.Event()))
    request = tgi_standin.state.requests[-1]
    assert request["path"] == "/" and request["body"]["stream"] is True
    sent = request["body"]["parameters"]
    assert sent == {"details": True, "do_sample": True, "max_new_tokens": 20, "seed": 7, "stop": ["1", "2", "3", "4"], "temperature": 0.5}
    assert "truncate" not in sent and "top_p" not in sent
    # Structural tokens intact; the user's spellings broken by a zero-width space.
    assert request["body"]["inputs"] == "<fim_prefix>a = '<\u200bfim_middle><\u200b|endoftext|>'<fim_suffix><fim_middle>"
    assert "hf_machine_token" not in request["headers"]["authorization"]


def test_token_is_sent_when_given(tgi_standin: RunningStandin) -> None:
    collect(backend(tgi_standin.url, token="hf_secret").stream(PROMPT, GREEDY, threading.Event()))
    assert tgi_standin.state.requests[-1]["headers"]["authorization"] == "Bearer hf_secret"


def test_max_new_tokens_clamped_to_the_total() -> None:
    with running_tgi(StandinConfig(max_input_tokens=2000, max_total_tokens=2048)) as standin:
        prompt = Prompt.of("x" * 6000)  # estimated 1875 tokens (the stand-in counts 1500)
        collect(backend(standin.url).stream(prompt, GenerationParams(max_new_tokens=500, temperature=0), threading.Event()))
        assert params_sent(standin)["max_new_tokens"] == 2048 - 1875


def test_underestimated_prompt_is_refitted_with_the_engines_count() -> None:
    config = StandinConfig(max_input_tokens=599, max_total_tokens=600, chars_per_token=2.0)
    with running_tgi(config) as standin:
        prompt = Prompt.of("y" * 800)  # we estimate 250 tokens, the engine counts 400
        result = collect(backend(standin.url).stream(prompt, GenerationParams(max_new_tokens=300, temperature=0), threading.Event()))
        assert [r["body"]["parameters"]["max_new_tokens"] for r in standin.state.requests] == [300, 200]
        assert (result.finished.reason, len(result.chunks)) == ("length", 200)


# -- engine errors -----------------------------------------------------------------------


def test_validation_error_in_a_200_stream_is_an_input_error(tgi_standin: RunningStandin) -> None:
    tgi_standin.state.script(Behaviour(kind="validation", message="Input validation error: `top_n_tokens` must be >= 0"))
    with pytest.raises(EngineRejectedError, match="top_n_tokens"):
        collect(backend(tgi_standin.url).stream(PROMPT, GREEDY, threading.Event()))


def test_validation_error_as_http_422(tgi_standin: RunningStandin) -> None:
    tgi_standin.state.script(Behaviour(kind="http", status=422, error_type="validation", message="Input validation error: bad grammar"))
    with pytest.raises(EngineRejectedError, match="bad grammar") as caught:
        collect(backend(tgi_standin.url).stream(PROMPT, GREEDY, threading.Event()))
    assert status_of(caught.value) == 422


def test_prompt_over_the_input_limit_says_so(tgi_standin: RunningStandin) -> None:
    with pytest.raises(PromptTooLongError, match=r"5000 tokens; it accepts 1024"):
        collect(backend(tgi_standin.url).stream(Prompt.of("z" * 20000), GREEDY, threading.Event()))


def test_overloaded_is_retried_twice_before_the_first_token(tgi_standin: RunningStandin) -> None:
    overloaded = Behaviour(kind="http", status=429, error_type="overloaded", message="Model is overloaded")
    tgi_standin.state.script(overloaded, overloaded, Behaviour(tokens=["ok"]))
    result = collect(backend(tgi_standin.url).stream(PROMPT, GREEDY, threading.Event()))
    assert result.text == "ok" and len(tgi_standin.state.requests) == 3


def test_overloaded_three_times_is_busy(tgi_standin: RunningStandin) -> None:
    overloaded = Behaviour(kind="http", status=429, error_type="overloaded", message="Model is overloaded")
    tgi_standin.state.script(overloaded, overloaded, overloaded, Behaviour(tokens=["late"]))
    with pytest.raises(BackendBusyError, match="busy"):
        collect(backend(tgi_standin.url).stream(PROMPT, GREEDY, threading.Event()))
    assert len(tgi_standin.state.requests) == 3


def test_overload_after_tokens_is_not_retried(tgi_standin: RunningStandin) -> None:
    tgi_standin.state.script(Behaviour(kind="error_event", after_tokens=2, error_type="overloaded", message="Model is overloaded"))
    result = collect(backend(tgi_standin.url).stream(PROMPT, GREEDY, threading.Event()))
    assert result.finished.reason == "error" and result.text == "def add"
    assert len(tgi_standin.state.requests) == 1


@pytest.mark.parametrize(("status", "error_type"), [(424, "generation"), (500, "incomplete_generation")])
def test_generation_errors_before_tokens_raise(tgi_standin: RunningStandin, status: int, error_type: str) -> None:
    tgi_standin.state.script(Behaviour(kind="http", status=status, error_type=error_type, message="CUDA out of memory"))
    with pytest.raises(GenerationFailedError, match="CUDA out of memory"):
        collect(backend(tgi_standin.url).stream(PROMPT, GREEDY, threading.Event()))


def test_error_after_tokens_keeps_the_partial_text(tgi_standin: RunningStandin) -> None:
    tgi_standin.state.script(Behaviour(kind="error_event", after_tokens=3, message="Request failed during generation: OOM"))
    result = collect(backend(tgi_standin.url).stream(PROMPT, GREEDY, threading.Event()))
    assert result.text == "def add("
    assert result.finished.reason == "error"
    assert "interrupted after 3 tokens" in result.finished.error and "OOM" in result.finished.error


@pytest.mark.parametrize("kind", ["truncate", "drop"])
def test_stream_ending_without_final_event_is_interrupted(tgi_standin: RunningStandin, kind: str) -> None:
    tgi_standin.state.script(Behaviour(kind=kind, after_tokens=2))
    result = collect(backend(tgi_standin.url).stream(PROMPT, GREEDY, threading.Event()))
    assert result.text == "def add"
    assert result.finished.reason == "error" and "interrupted" in result.finished.error


def test_stream_ending_before_any_token_raises(tgi_standin: RunningStandin) -> None:
    tgi_standin.state.script(Behaviour(kind="truncate", after_tokens=0))
    with pytest.raises(GenerationFailedError, match="closed the stream"):
        collect(backend(tgi_standin.url).stream(PROMPT, GREEDY, threading.Event()))


# -- timeouts, cancellation, threads ------------------------------------------------------


def test_stall_with_keepalives_hits_the_first_token_timeout() -> None:
    with running_tgi(StandinConfig(keepalive_s=0.1)) as standin:
        standin.state.script(Behaviour(kind="stall", keepalive=True))
        started = time.monotonic()
        with pytest.raises(BackendTimeoutError, match=r"no tokens within 0.8 s"):
            collect(backend(standin.url, first_token_s=0.8).stream(PROMPT, GREEDY, threading.Event()))
        assert 0.7 < time.monotonic() - started < 2.5
        assert wait_for(lambda: standin.state.streams[-1].outcome == "disconnected")


def test_keepalives_alone_do_not_reset_the_idle_timeout() -> None:
    with running_tgi(StandinConfig(keepalive_s=0.1)) as standin:
        standin.state.script(Behaviour(kind="stall", after_tokens=2, keepalive=True))
        started = time.monotonic()
        result = collect(backend(standin.url, idle_s=0.6).stream(PROMPT, GREEDY, threading.Event()))
        assert result.text == "def add"
        assert result.finished.reason == "error" and "stopped sending tokens for 0.6 s" in result.finished.error
        assert 0.5 < time.monotonic() - started < 2.5
        assert wait_for(lambda: standin.state.streams[-1].outcome == "disconnected")


def test_cancel_closes_an_endless_stream_and_frees_the_slot() -> None:
    with running_tgi(StandinConfig(rate=50)) as standin:
        tgi = backend(standin.url)
        collect(tgi.stream(PROMPT, GREEDY, threading.Event()))  # warm-up: lazily started threads exist now
        baseline = threading.active_count()
        standin.state.script(Behaviour(kind="endless"))
        cancel = threading.Event()
        cancelled_at: list[float] = []

        def on_chunk(count: int) -> None:
            if count == 3:
                cancel.set()
                cancelled_at.append(time.monotonic())

        result = collect(tgi.stream(PROMPT, GREEDY, cancel), on_chunk)
        assert result.finished.reason == "cancelled"
        assert time.monotonic() - cancelled_at[0] < 0.5
        assert len(result.chunks) <= 4
        assert wait_for(lambda: standin.state.streams[-1].outcome == "disconnected", 1.0)
        assert standin.state.active() == 0
        assert thread_count_settles(baseline)


def test_cancel_during_a_silent_stall_is_prompt(tgi_standin: RunningStandin) -> None:
    tgi = backend(tgi_standin.url, first_token_s=10, idle_s=10)
    collect(tgi.stream(PROMPT, GREEDY, threading.Event()))
    baseline = threading.active_count()
    tgi_standin.state.script(Behaviour(kind="stall", after_tokens=1))  # then silence, not even keep-alives
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    started = time.monotonic()
    result = collect(tgi.stream(PROMPT, GREEDY, cancel))
    timer.join()
    assert result.finished.reason == "cancelled" and result.text == "def"
    assert time.monotonic() - started < 0.3 + 0.5
    assert wait_for(lambda: tgi_standin.state.streams[-1].outcome == "disconnected", 1.0)
    assert thread_count_settles(baseline)


def test_abandoned_stream_is_closed(tgi_standin: RunningStandin) -> None:
    tgi_standin.state.script(Behaviour(kind="stall", after_tokens=1))
    events = backend(tgi_standin.url, idle_s=10).stream(PROMPT, GREEDY, threading.Event())
    assert next(events).text == "def"
    events.close()  # what a web handler does when its client disconnects
    assert wait_for(lambda: tgi_standin.state.streams[-1].outcome == "disconnected", 1.0)


def test_works_while_hf_hub_offline_is_set(tgi_standin: RunningStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE is about the Hub; the hub's shared session would refuse our own engine too."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    tgi_standin.state.script(Behaviour(tokens=["offline", " ok"]))
    assert collect(backend(tgi_standin.url).stream(PROMPT, GREEDY, threading.Event())).text == "offline ok"


# -- endpoint down, killed, back -----------------------------------------------------------


def test_endpoint_down_at_startup_then_up() -> None:
    port = free_port()
    tgi = backend(f"http://127.0.0.1:{port}")
    assert tgi.info().loaded is False
    with pytest.raises(BackendUnavailableError, match=f"127.0.0.1:{port}.*cannot be reached"):
        collect(tgi.stream(PROMPT, GREEDY, threading.Event()))
    with running_tgi(port=port) as standin:
        standin.state.script(Behaviour(tokens=["up"]))
        assert collect(tgi.stream(PROMPT, GREEDY, threading.Event())).text == "up"
        assert tgi.info().loaded is True


def test_killed_engine_keeps_partial_text_then_reports_unavailable_then_recovers() -> None:
    server = subprocess_tgi(args=["--rate", "40", "--script", json.dumps({"default": {"kind": "endless"}})]).start()
    try:
        tgi = backend(server.url, first_token_s=5, idle_s=5)
        result = collect(tgi.stream(PROMPT, GREEDY, threading.Event()), lambda n: server.kill() if n == 2 else None)
        assert result.text.startswith("def add")
        assert result.finished.reason == "error" and "interrupted" in result.finished.error
        with pytest.raises(BackendUnavailableError, match=server.url):
            collect(tgi.stream(PROMPT, GREEDY, threading.Event()))
        assert tgi.info().loaded is False
        server.start()  # the engine comes back on the same port
        server.control({"default": {"tokens": ["back"]}})
        assert collect(tgi.stream(PROMPT, GREEDY, threading.Event())).text == "back"
        assert tgi.info().loaded is True
    finally:
        server.kill()


# -- the stand-in speaks TGI's wire format -----------------------------------------------


def test_standin_wire_format(tgi_standin: RunningStandin) -> None:
    tgi_standin.state.script(Behaviour(tokens=["a", "b"]))
    body = {"inputs": "x", "parameters": {"max_new_tokens": 5, "details": True}}
    raw = httpx.post(tgi_standin.url + "/generate_stream", json=body).text
    lines = [line for line in raw.split("\n") if line]
    assert all(line.startswith("data:{") for line in lines) and "[DONE]" not in raw
    final = json.loads(lines[-1][len("data:") :])
    assert final["token"]["special"] is True and final["generated_text"] == "ab"
    assert final["details"]["finish_reason"] == "eos_token" and final["details"]["generated_tokens"] == 3
    bad = httpx.post(tgi_standin.url + "/generate_stream", json={"inputs": "x", "parameters": {"top_p": 1.0}})
    assert bad.status_code == 200 and json.loads(bad.text[len("data:") :])["error_type"] == "validation"
    assert httpx.post(tgi_standin.url + "/generate", json={"inputs": "x", "parameters": {"top_p": 1.0}}).status_code == 422
    tgi_standin.state.script(Behaviour(tokens=["c"]), Behaviour(tokens=["d"]))
    plain = httpx.post(tgi_standin.url + "/generate", json={"inputs": "x", "parameters": {"details": True}}).json()
    assert plain["generated_text"] == "c" and plain["details"]["finish_reason"] == "eos_token"
    compat = httpx.post(tgi_standin.url + "/", json={"inputs": "x", "stream": False}).json()
    assert compat == [{"generated_text": "d"}]
