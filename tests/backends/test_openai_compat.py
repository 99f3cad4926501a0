"""OpenAiCompletionsBackend against the OpenAI-compatible (vLLM-like) STAND-IN over real HTTP."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace

import httpx
import pytest

from playground.backends.flavours import GENERIC, LLAMA_CPP, TRANSFORMERS, VLLM, completion_request
from playground.backends.openai_compat import OpenAiCompletionsBackend
from playground.backends.wire import RemoteLimits, sampling
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
from support.standins.common import Behaviour, StandinConfig, free_port
from support.standins.fixtures import (  # noqa: F401 - openai_standin is a fixture
    FAST_BACKOFF_S,
    FAST_TIMEOUTS,
    RunningStandin,
    collect,
    openai_standin,
    running_openai,
    starcoder_spec,
    thread_count_settles,
    wait_for,
)

pytestmark = pytest.mark.timeout(30)

PROMPT = Prompt.of("def add(a, b):\n")
GREEDY = GenerationParams(max_new_tokens=8, temperature=0)


def backend(url: str, first_token_s: float | None = None, idle_s: float | None = None,
            **options: object) -> OpenAiCompletionsBackend:
    timeouts = replace(FAST_TIMEOUTS, first_token_s=first_token_s or FAST_TIMEOUTS.first_token_s,
                       idle_s=idle_s or FAST_TIMEOUTS.idle_s)
    return OpenAiCompletionsBackend(starcoder_spec(), url, timeouts=timeouts, retry_backoff_s=FAST_BACKOFF_S,
                        **options)  # type: ignore[arg-type]


def test_info_reads_max_model_len(openai_standin: RunningStandin) -> None:
    info = backend(openai_standin.url).info()
    assert info.loaded is True and info.backend == "openai"
    assert (info.context_length, info.max_input_tokens, info.max_stop_sequences) == (2048, 2047, 4)
    assert info.extra["server_model"] == "bigcode/starcoder"


def test_endpoint_may_end_in_v1(openai_standin: RunningStandin) -> None:
    openai_standin.state.script(Behaviour(tokens=["v1"]))
    result = collect(backend(openai_standin.url + "/v1/").stream(PROMPT, GREEDY, threading.Event()))
    assert result.text == "v1" and openai_standin.state.requests[-1]["path"] == "/v1/completions"


LIMITS = RemoteLimits(max_total_tokens=2048, max_input_tokens=2047, max_new_tokens=2047, max_stop_sequences=4)
SAMPLED = GenerationParams(temperature=0.5, top_p=0.8, top_k=40, stop=tuple("abcde"))


def test_parameters_for_vllm() -> None:
    greedy = completion_request(sampling(GenerationParams(temperature=0, top_k=5, repetition_penalty=1.0, seed=1),
                                         LIMITS, 10), VLLM, frozenset())
    assert greedy.kwargs == {"max_tokens": 256, "temperature": 0.0, "stream_options": {"include_usage": True}}
    sampled = completion_request(sampling(SAMPLED, LIMITS, 2000), VLLM, frozenset()).kwargs
    assert sampled["max_tokens"] == 48 and sampled["top_p"] == 0.8 and sampled["stop"] == ["a", "b", "c", "d"]
    assert sampled["extra_body"] == {"top_k": 40, "repetition_penalty": 1.2}


@pytest.mark.parametrize(("flavour", "extra", "stops", "not_applied"), [
    # llama.cpp spells the penalty its own way and gets neutral values for what is off.
    (LLAMA_CPP, {"top_k": 40, "repeat_penalty": 1.2}, False, ()),
    (GENERIC, None, False, ("top_k", "repetition_penalty")),
    (TRANSFORMERS, {"generation_config": '{"do_sample": true, "temperature": 0.5, "top_p": 0.8, "top_k": 40, '
                                         '"repetition_penalty": 1.2}'}, False, ()),
])
def test_parameters_by_engine(flavour, extra, stops, not_applied) -> None:
    request = completion_request(sampling(SAMPLED, LIMITS, 10), flavour, frozenset())
    assert request.kwargs.get("extra_body") == extra
    assert ("stop" in request.kwargs) == stops  # cut on our side: these engines cannot say which stop matched
    assert request.not_applied == not_applied


def test_llama_cpp_greedy_gets_neutral_knobs_and_refused_fields_are_never_sent() -> None:
    greedy = completion_request(sampling(GenerationParams(temperature=0, repetition_penalty=1.0), LIMITS, 10),
                                LLAMA_CPP, frozenset())
    assert greedy.kwargs["extra_body"] == {"top_k": 0, "repeat_penalty": 1.0, "top_p": 1.0}
    refused = completion_request(sampling(SAMPLED, LIMITS, 10), VLLM, frozenset({"top_k", "seed"}))
    assert "seed" not in refused.kwargs and refused.kwargs["extra_body"] == {"repetition_penalty": 1.2}
    assert refused.not_applied == ("top_k",)


def test_stream_and_finish_reasons(openai_standin: RunningStandin) -> None:
    oai = backend(openai_standin.url)
    openai_standin.state.script(Behaviour(tokens=["x", "y"]))
    eos = collect(oai.stream(PROMPT, GREEDY, threading.Event()))
    assert (eos.text, eos.finished.reason) == ("xy", "eos")
    assert (eos.finished.completion_tokens, eos.finished.prompt_tokens) == (3, 4)  # from the usage chunk
    length = collect(oai.stream(PROMPT, GenerationParams(max_new_tokens=3, temperature=0), threading.Event()))
    assert (length.text, length.finished.reason) == ("def add(", "length")
    stop = collect(oai.stream(PROMPT, GenerationParams(max_new_tokens=50, temperature=0, stop=(" b",)), threading.Event()))
    assert (stop.text, stop.finished.reason) == ("def add(a,", "stop")  # the engine cuts the stop string


def test_request_body(openai_standin: RunningStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-send-this")
    prompt = Prompt.of(Special("<fim_prefix>"), "x = '<fim_suffix>'", Special("<fim_suffix>"), Special("<fim_middle>"))
    params = GenerationParams(max_new_tokens=9, temperature=0.4, top_p=1.0, top_k=7, repetition_penalty=1.1, seed=5, stop=tuple("ABCDEF"))
    collect(backend(openai_standin.url).stream(prompt, params, threading.Event()))
    request = openai_standin.state.requests[-1]
    body = request["body"]
    assert body["model"] == "bigcode/starcoder" and body["stream"] is True
    assert body["prompt"] == "<fim_prefix>x = '<\u200bfim_suffix>'<fim_suffix><fim_middle>"
    assert (body["max_tokens"], body["temperature"], body["seed"], body["top_k"]) == (9, 0.4, 5, 7)
    assert body["repetition_penalty"] == 1.1 and body["stop"] == ["A", "B", "C", "D"]
    assert "top_p" not in body
    assert request["headers"]["authorization"] == "Bearer not-needed"


def test_context_overflow_is_prompt_too_long(openai_standin: RunningStandin) -> None:
    with pytest.raises(PromptTooLongError, match="2500 tokens; it accepts 2048"):
        collect(backend(openai_standin.url).stream(Prompt.of("z" * 10000), GREEDY, threading.Event()))


def test_other_400_is_an_input_error(openai_standin: RunningStandin) -> None:
    openai_standin.state.script(Behaviour(kind="http", status=400, message="best_of must be 1 when streaming"))
    with pytest.raises(EngineRejectedError, match="best_of must be 1"):
        collect(backend(openai_standin.url).stream(PROMPT, GREEDY, threading.Event()))


def test_unknown_model_name_is_reported_with_what_is_served(openai_standin: RunningStandin) -> None:
    oai = backend(openai_standin.url, model_name="other/model")
    assert oai.info().loaded is False
    with pytest.raises(BackendUnavailableError, match="serves bigcode/starcoder, not other/model"):
        collect(oai.stream(PROMPT, GREEDY, threading.Event()))


def test_429_retried_then_busy(openai_standin: RunningStandin) -> None:
    limited = Behaviour(kind="http", status=429, message="Too many requests")
    openai_standin.state.script(limited, limited, Behaviour(tokens=["ok"]))
    assert collect(backend(openai_standin.url).stream(PROMPT, GREEDY, threading.Event())).text == "ok"
    openai_standin.state.script(limited, limited, limited)
    with pytest.raises(BackendBusyError):
        collect(backend(openai_standin.url).stream(PROMPT, GREEDY, threading.Event()))
    assert len(openai_standin.state.requests) == 6


def test_500_before_tokens_raises(openai_standin: RunningStandin) -> None:
    openai_standin.state.script(Behaviour(kind="http", status=500, message="engine dead"))
    with pytest.raises(GenerationFailedError, match="engine dead"):
        collect(backend(openai_standin.url).stream(PROMPT, GREEDY, threading.Event()))


def test_error_event_after_tokens_keeps_partial_text(openai_standin: RunningStandin) -> None:
    openai_standin.state.script(Behaviour(kind="error_event", after_tokens=2, message="OOM"))
    result = collect(backend(openai_standin.url).stream(PROMPT, GREEDY, threading.Event()))
    assert result.text == "def add" and result.finished.reason == "error" and "OOM" in result.finished.error


@pytest.mark.parametrize("kind", ["truncate", "drop"])
def test_stream_cut_before_done_is_interrupted(openai_standin: RunningStandin, kind: str) -> None:
    openai_standin.state.script(Behaviour(kind=kind, after_tokens=2))
    result = collect(backend(openai_standin.url).stream(PROMPT, GREEDY, threading.Event()))
    assert result.text == "def add"
    assert result.finished.reason == "error" and "interrupted" in result.finished.error


def test_stall_before_first_token_times_out() -> None:
    with running_openai(StandinConfig(keepalive_s=0.1)) as standin:
        standin.state.script(Behaviour(kind="stall", keepalive=True))
        with pytest.raises(BackendTimeoutError, match="no tokens within 0.8 s"):
            collect(backend(standin.url, first_token_s=0.8).stream(PROMPT, GREEDY, threading.Event()))
        assert wait_for(lambda: standin.state.streams[-1].outcome == "disconnected")


def test_hang_before_headers_times_out(openai_standin: RunningStandin) -> None:
    openai_standin.state.script(Behaviour(kind="hang"))
    started = time.monotonic()
    with pytest.raises(BackendTimeoutError):
        collect(backend(openai_standin.url, first_token_s=0.5).stream(PROMPT, GREEDY, threading.Event()))
    assert time.monotonic() - started < 2.0


def test_idle_timeout_after_tokens() -> None:
    with running_openai(StandinConfig(keepalive_s=0.1)) as standin:
        standin.state.script(Behaviour(kind="stall", after_tokens=1, keepalive=True))
        result = collect(backend(standin.url, idle_s=0.5).stream(PROMPT, GREEDY, threading.Event()))
        assert result.text == "def" and result.finished.reason == "error"
        assert "stopped sending tokens" in result.finished.error


def test_cancel_endless_stream_frees_the_slot() -> None:
    with running_openai(StandinConfig(rate=50)) as standin:
        oai = backend(standin.url)
        collect(oai.stream(PROMPT, GREEDY, threading.Event()))  # warm-up
        baseline = threading.active_count()
        standin.state.script(Behaviour(kind="endless"))
        cancel = threading.Event()
        result = collect(oai.stream(PROMPT, GREEDY, cancel), lambda n: cancel.set() if n == 2 else None)
        assert result.finished.reason == "cancelled" and len(result.chunks) <= 3
        assert wait_for(lambda: standin.state.streams[-1].outcome == "disconnected", 1.0)
        assert thread_count_settles(baseline)


def test_endpoint_down_then_up() -> None:
    port = free_port()
    oai = backend(f"http://127.0.0.1:{port}")
    assert oai.info().loaded is False
    with pytest.raises(BackendUnavailableError, match=f"127.0.0.1:{port}"):
        collect(oai.stream(PROMPT, GREEDY, threading.Event()))
    with running_openai(port=port) as standin:
        standin.state.script(Behaviour(tokens=["up"]))
        assert collect(oai.stream(PROMPT, GREEDY, threading.Event())).text == "up"
        assert oai.info().loaded is True


def test_standin_wire_format(openai_standin: RunningStandin) -> None:
    openai_standin.state.script(Behaviour(tokens=["a"]))
    body = {"model": "bigcode/starcoder", "prompt": "x", "max_tokens": 4, "stream": True}
    lines = [line for line in httpx.post(openai_standin.url + "/v1/completions", json=body).text.split("\n") if line]
    assert all(line.startswith("data: ") for line in lines) and lines[-1] == "data: [DONE]"
    chunk = json.loads(lines[0][len("data: ") :])
    assert chunk["object"] == "text_completion" and chunk["choices"][0]["text"] == "a"
    assert json.loads(lines[-2][len("data: ") :])["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(("body", "shown"), [
    ({"detail": "Unexpected fields in the request: {'top_k'}"}, "Unexpected fields in the request: {'top_k'}"),
    ({"detail": [{"loc": ["body", "top_k"], "msg": "Extra inputs are not permitted"}]},
     "top_k: Extra inputs are not permitted"),
    ({"error": {"message": "context_length_exceeded", "type": "x"}}, "context_length_exceeded"),
    ("Internal Server Error", "Internal Server Error"),
])
def test_an_engines_own_error_text_reaches_the_user(body, shown) -> None:
    """transformers serve answers FastAPI's {"detail": ...}; it used to reach users as "Error code: 422"."""
    from playground.backends.remote_errors import engine_detail

    assert engine_detail(body) == shown
