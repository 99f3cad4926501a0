"""The editor routes on a remote backend: the app in front of llama.cpp's server serving nano-starcoder.

The same hole through every dialect must give the UI's fill byte for byte when
the model runs elsewhere too (the app's OpenAI-compatible backend, with its
own healing and end rules, between the editor and the engine).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from playground.bootstrap import build_playground
from playground.config import Settings
from support.engines import RunningEngine
from support.servers import LiveServer, serve
from tests.engines.test_real_engines_smoke import llama_engine  # noqa: F401 - fixture
from tests.web.test_editors import dialect_middles, ui_fill

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def remote_app(llama_engine: RunningEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:  # noqa: F811
    settings = Settings(backend="openai", endpoint=llama_engine.api_base, model="nano-starcoder",
                        data_dir=tmp_path_factory.mktemp("remote-editors"), attribution=False)
    playground, _ = build_playground(settings)
    server = serve(playground)
    yield server
    server.stop()


def test_every_dialect_gives_the_ui_fill_through_a_remote_engine(remote_app: LiveServer, tmp_path: Path):
    middle = ui_fill(remote_app.url)
    middles = dialect_middles(remote_app.url)
    assert middles == dict.fromkeys(middles, middle)
