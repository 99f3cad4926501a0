"""Several models in one selector: each request reaches its own engine (TGI stand-ins), and each
model keeps its own turn-taking in the UI as well as over REST."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from playground.backends.fake import FakeBackend
from playground.backends.tgi import TgiBackend
from playground.bootstrap import build_playground
from playground.config import Settings
from playground.config_types import ExtraModel, RateLimits
from playground.registry import ModelSpec, load_registry
from playground.service import Playground
from playground.slots import ModelSlot
from playground.store import ShareStore
from playground.tech_assistant import load_tech_assistant
from support.servers import serve
from support.standins.common import StandinConfig
from support.standins.fixtures import running_tgi

gradio_client = pytest.importorskip("gradio_client")


def test_two_remote_models_each_reach_their_engine(tmp_path):
    with running_tgi() as first, running_tgi() as second:
        settings = Settings(backend="tgi", endpoint=first.url, model="starcoder", data_dir=tmp_path,
                            extra_models=(ExtraModel("starcoder2-15b", "tgi", second.url),))
        playground, _ = build_playground(settings)
        server = serve(playground)
        try:
            models = {m["id"]: m for m in httpx.get(server.url + "/api/models").json()}
            assert set(models) == {"starcoder", "starcoder2-15b"}
            assert models["starcoder2-15b"]["endpoint"] == second.url
            body = {"mode": "complete", "prompt": "def f():", "model": "starcoder2-15b", "params": {"max_new_tokens": 5}}
            record = httpx.post(server.url + "/api/generate", json=body, timeout=30).json()
            assert record["model"] == "starcoder2-15b" and record["backend"]["kind"] == "tgi"
            assert len(second.state.requests) == 1 and not first.state.requests
        finally:
            server.stop()


def test_an_extra_model_that_takes_the_main_models_id_is_refused(tmp_path):
    from playground.errors import ConfigError

    settings = Settings(backend="fake", model="starcoder", data_dir=tmp_path,
                        extra_models=(ExtraModel("starcoder", "tgi", "http://127.0.0.1:9"),))
    with pytest.raises(ConfigError, match="give each model its own id"):
        build_playground(settings)


def test_a_remote_extra_model_serves_ui_users_at_once_behind_a_one_at_a_time_default(tmp_path):
    """The UI's queue used to take the default model's concurrency (1 for a local model) for every model."""
    with running_tgi(StandinConfig(rate=20)) as engine:
        settings = Settings(data_dir=tmp_path, limits=RateLimits(0, 0, 0))
        local_like = ModelSlot(ModelSpec("fake", "fake", 2048), FakeBackend(), concurrency=1)
        remote = ModelSlot(load_registry()["starcoder"], TgiBackend(load_registry()["starcoder"], engine.url),
                           concurrency=8)
        playground = Playground(settings, {"fake": local_like, "starcoder": remote}, load_tech_assistant(),
                                ShareStore.open(settings.database))
        server = serve(playground)
        peak = 0
        try:
            client = gradio_client.Client(server.url + "/", verbose=False)
            args = ("def f():", "starcoder", 30, 0, 0.9, 0, 1.0, "", "1")
            jobs = [client.submit(*args, api_name="/complete") for _ in range(3)]
            deadline = time.monotonic() + 30
            while not all(job.done() for job in jobs) and time.monotonic() < deadline:
                peak = max(peak, engine.state.active())
                time.sleep(0.05)
            assert all(job.done() for job in jobs)
            client.close()
        finally:
            server.stop()
        assert peak >= 2, "the remote model served UI users one at a time"
        assert threading.active_count() < 200
