"""Shared fixtures: the shipped nano-starcoder, tiny random models, and a real server on a free port.

Everything runs offline: HF_HUB_OFFLINE is set for the whole session, and
each test's state lives in its own temp dir.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.servers import LiveServer, serve

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    # Offline for the whole session: nothing may reach a hub, and tokenizers must not fork threads.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test that measures this process's memory runs before the rest: after them the heap is hundreds of
    # MiB and glibc's arenas grow with any burst of threads, which blurs a leak check.
    items.sort(key=lambda item: item.get_closest_marker("memory") is None)


NANO = REPO / "models" / "nano-starcoder"


@pytest.fixture(scope="session")
def registry():
    from playground.registry import load_registry

    return load_registry()


@pytest.fixture(scope="session")
def nano(registry):
    """nano-starcoder loaded once through the real loading path."""
    from playground.config import Settings
    from playground.loading import load_model

    return load_model("nano-starcoder", registry, Settings())


@pytest.fixture(scope="session")
def nano_backend(nano):
    from playground.backends.local import LocalBackend

    return LocalBackend(nano)


@pytest.fixture(scope="session")
def sharded_nano(tmp_path_factory) -> Path:
    """A copy of nano-starcoder saved as several safetensors shards plus an index."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("sharded-nano")
    model = AutoModelForCausalLM.from_pretrained(NANO, dtype=torch.float32)
    model.save_pretrained(folder, max_shard_size="4MB")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(NANO / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def nano_playground(nano, nano_backend, tmp_path_factory):
    from playground.config import Settings
    from playground.service import Playground
    from playground.slots import ModelSlot
    from playground.store import ShareStore
    from playground.tech_assistant import load_tech_assistant

    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), generation_timeout_s=60)
    slot = ModelSlot(nano.spec, nano_backend)
    slot.progress.step("ready", "loaded by the test session")
    return Playground(settings, {nano.spec.id: slot}, load_tech_assistant(), ShareStore.open(settings.database))


@pytest.fixture(scope="session")
def nano_server(nano_playground) -> Iterator[LiveServer]:
    """The real app over HTTP, serving the shipped nano-starcoder."""
    server = serve(nano_playground)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres():
    """Debian's PostgreSQL in a temporary folder, for the whole session (each test makes its own database)."""
    from support.postgres import available, start_postgres

    reason = available()
    if reason:
        pytest.skip(reason)
    with start_postgres() as running:
        yield running


@pytest.fixture
def postgres_url(postgres, request):
    """The URL of a fresh, empty database on the session's PostgreSQL."""
    import re

    import sqlalchemy

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    admin = sqlalchemy.create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return postgres.url.rsplit("/", 1)[0] + "/" + name


def fake_playground(settings, backend=None):
    """A Playground over a FakeBackend, with a real share store under ``settings.data_dir``."""
    from playground.backends.fake import FakeBackend
    from playground.registry import ModelSpec
    from playground.service import Playground
    from playground.slots import ModelSlot
    from playground.store import ShareStore
    from playground.tech_assistant import load_tech_assistant

    backend = backend or FakeBackend(outputs=["print('hi')\n"] * 200)
    slot = ModelSlot(ModelSpec("fake", "fake", backend.context_length), backend, max_queue=settings.max_queue)
    return Playground(settings, {"fake": slot}, load_tech_assistant(), ShareStore.open(settings.database))


@pytest.fixture
def fake_server(tmp_path):
    """``fake_server(backend=None, **settings) -> (server, playground)``: the real app over a fake backend."""
    from playground.config import Settings

    servers = []

    def start(backend=None, **settings):
        playground = fake_playground(Settings(data_dir=tmp_path, **settings), backend)
        servers.append(serve(playground))
        return servers[-1], playground

    yield start
    for server in servers:
        server.stop()


def as_json(record):
    """A record as clients get it (its JSON form), read by attribute: tests of the wire shape use it."""
    from types import SimpleNamespace

    return SimpleNamespace(**record.to_dict())
