"""The model registry: every promised entry, valid facts, and clear errors for broken files."""

from __future__ import annotations

import pytest

from playground.errors import ConfigError
from playground.registry import FimTokens, find_spec, load_registry

PROMISED = {
    "starcoder", "starcoderbase", "starcoderplus", "starcoderbase-1b", "starcoderbase-3b", "starcoderbase-7b",
    "tiny_starcoder_py", "starcoder2-3b", "starcoder2-7b", "starcoder2-15b", "nano-starcoder", "santacoder",
}


def test_every_promised_model_has_an_entry(registry):
    assert PROMISED <= set(registry)


@pytest.mark.parametrize("model_id", sorted(PROMISED))
def test_entries_are_complete(registry, model_id):
    spec = registry[model_id]
    assert spec.context_length > 0
    assert spec.fim is not None
    assert spec.license and spec.license_url
    assert spec.end_of_text == "<|endoftext|>"


def test_family_facts(registry):
    assert registry["starcoder"].gated and registry["starcoder"].context_length == 8192
    assert registry["starcoder"].defaults.temperature == 0.2
    assert registry["starcoder"].defaults.top_p == 0.9
    assert registry["starcoder"].defaults.max_new_tokens == 256
    assert registry["starcoder"].defaults.repetition_penalty == 1.2
    assert registry["santacoder"].fim == FimTokens.santacoder()
    assert "<file_sep>" in registry["starcoder2-15b"].stop_tokens
    assert registry["nano-starcoder"].context_length == 512
    # StarCoder's card prompts prefix first; nano-starcoder fills better suffix first (its model card).
    assert registry["starcoder"].fim.order == "psm" and registry["nano-starcoder"].fim.order == "spm"
    assert find_spec(registry, "bigcode/starcoderplus").id == "starcoderplus"


def test_nano_entry_points_at_the_shipped_folder(registry):
    source = registry["nano-starcoder"].resolved_source()
    assert source.endswith("models/nano-starcoder")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('id = "x"\nsource = "a/b"\n', "invalid"),  # no context_length
        ('id = "x"\nsource = "a/b"\ncontext_length = 10\nfim_style = "klingon"\n', "invalid"),
        ('id = "x"\nsource = "a/b"\ncontext_length = 10\nfim_style = "starcoder"\nfim_order = "mps"\n',
         "fim_order must be"),
        ('id = "x"\nsource = "a/b"\ncontext_length = 10\nfim_order = "spm"\n', "fim_order needs fim_style"),
        ('id = "x"\nsource = "a/b"\ncontext_length = 10\n[defaults]\ntemperature = 9\n', "invalid"),
        ("id = ", "not valid TOML"),
    ],
)
def test_broken_registry_files_are_named(tmp_path, content, needle):
    (tmp_path / "broken.toml").write_text(content)
    with pytest.raises(ConfigError, match=needle):
        load_registry(tmp_path)
