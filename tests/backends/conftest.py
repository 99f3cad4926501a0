"""A playground over the shipped nano-starcoder's local backend, for tests that run whole modes on it."""

from __future__ import annotations

import pytest

from playground.config import Settings
from playground.service import Playground
from playground.slots import ModelSlot
from playground.tech_assistant import load_tech_assistant


@pytest.fixture(scope="module")
def playground(tmp_path_factory, nano_backend):
    settings = Settings(data_dir=tmp_path_factory.mktemp("playground"), attribution=False)
    return Playground(settings, {nano_backend.spec.id: ModelSlot(nano_backend.spec, nano_backend)},
                      load_tech_assistant())
