"""Several remote models in one selector: each request reaches its own engine (TGI stand-ins)."""

from __future__ import annotations

import httpx

from playground.bootstrap import build_playground
from playground.config import Settings
from tests.conftest import serve
from tests.standins.fixtures import running_tgi


def test_two_remote_models_each_reach_their_engine(tmp_path):
    with running_tgi() as first, running_tgi() as second:
        settings = Settings(backend="tgi", endpoint=first.url, model="starcoder", data_dir=tmp_path,
                            extra_models=(f"starcoder2-15b=tgi:{second.url}",))
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
