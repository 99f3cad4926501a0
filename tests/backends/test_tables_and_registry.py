"""The backend registry, the per-backend knob tables, and a remote backend composed with its protocol."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from playground.backends.base import Chunk, Event, Finished
from playground.backends.flavours import LLAMA_CPP, STANDARD, VLLM
from playground.backends.registry import BACKENDS, REMOTE, kind_of
from playground.backends.remote_common import RemoteBackend
from playground.backends.remote_protocol import Link
from playground.backends.wire import GENERATE, TGI, RemoteLimits, Sampling
from playground.config import load_settings
from playground.config_types import parse_extra_models
from playground.errors import ConfigError
from playground.params import PARAMS, GenerationParams
from playground.prompt import Prompt
from support.standins.fixtures import FAST_TIMEOUTS, collect, starcoder_spec

KNOBS = {name for name, param in PARAMS.items() if param.knob is not None}


@pytest.mark.parametrize("table", [TGI, GENERATE, {**STANDARD, **VLLM.fields}, {**STANDARD, **LLAMA_CPP.fields}],
                         ids=["tgi", "transformers", "vllm", "llama.cpp"])
def test_every_knob_has_a_row_in_each_table_of_an_engine_that_takes_them_all(table: Any) -> None:
    assert set(table) == KNOBS


def test_the_registry_is_what_the_settings_offer() -> None:
    assert tuple(BACKENDS) == ("local", "tgi", "openai", "fake") and REMOTE == ("tgi", "openai")
    with pytest.raises(ConfigError, match="--backend must be one of local, tgi, openai, fake; got 'vllm'"):
        kind_of("vllm")
    with pytest.raises(ConfigError, match="needs --endpoint"):
        load_settings(["--backend", "openai"], {})
    assert parse_extra_models("X", "a=openai:http://h:1")[0].kind == "openai"
    with pytest.raises(ConfigError, match="entries look like"):
        parse_extra_models("X", "a=fake:http://h:1")


class ScriptedProtocol:
    """An engine protocol with no engine behind it: what the driver asks of any protocol, and nothing more."""

    name = "scripted"
    counts_exactly = True
    native_candidates = False
    samples_at_once = True
    start_constraint = None  # it cannot be told how to begin: a prompt ending on a break goes unhealed

    def __init__(self, link: Link):
        self.link = link
        self.requests: list[Sampling] = []
        self.closed = False

    def read_limits(self) -> RemoteLimits:
        return RemoteLimits(max_total_tokens=100, max_input_tokens=90, max_new_tokens=50, max_stop_sequences=2,
                            server_model="m", flavour="scripted-flavour")

    def source(self, text: str, request: Sampling, limits: RemoteLimits) -> Callable[[Any], Iterator[Event]]:
        self.requests.append(request)

        def events(register: Callable[[Any], None]) -> Iterator[Event]:
            register(None)
            yield Chunk(text.upper(), tokens=2)
            yield Finished("eos", None, None)

        return events

    def count(self, text: str) -> int | None:
        return len(text)

    def close(self) -> None:
        self.closed = True


def test_a_remote_backend_drives_whatever_protocol_it_holds() -> None:
    backend = RemoteBackend(starcoder_spec(), "http://engine.invalid/", ScriptedProtocol, timeouts=FAST_TIMEOUTS)
    protocol = backend.protocol
    assert isinstance(protocol, ScriptedProtocol) and protocol.link.endpoint == "http://engine.invalid"
    info = backend.info()
    assert (info.backend, info.loaded, info.context_length, info.flavour) == ("scripted", True, 100, "scripted-flavour")
    assert info.engine_state is None and "engine" not in info.extra
    params = GenerationParams(max_new_tokens=80, temperature=0.5, top_k=3, stop=("x", "y", "z"), seed=9)
    result = collect(backend.stream(Prompt.of("abc"), params, threading.Event()))
    assert result.text == "ABC" and (result.finished.prompt_tokens, result.finished.completion_tokens) == (3, 2)
    sent = protocol.requests[-1]
    assert (sent.max_new_tokens, sent.greedy, sent.seed, sent.stop) == (50, False, 9, ("x", "y"))
    assert dict(sent.knobs) == params.knobs()
    backend.close()
    assert protocol.closed
