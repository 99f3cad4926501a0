"""Settings: flags over env vars over defaults, and a clear error for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.config import Settings, load_settings
from playground.config_types import DeviceMap, ExtraModel, ForwardedFor, RateLimits, RemoteTimeouts
from playground.errors import ConfigError


def test_defaults_serve_nano_starcoder_locally():
    settings = load_settings([], {})
    assert settings == Settings()
    assert settings.model == "nano-starcoder" and settings.backend == "local"


def test_flags_win_over_env():
    settings = load_settings(["--port", "9000", "--max-memory", "0=20GiB,cpu=64GiB"],
                             {"PLAYGROUND_PORT": "8000", "PLAYGROUND_MODEL": "starcoder", "HF_TOKEN": "hf_x"})
    assert settings.port == 9000
    assert settings.model == "starcoder"
    assert settings.hf_token == "hf_x"
    assert settings.max_memory == {"0": "20GiB", "cpu": "64GiB"}


def test_space_environment():
    settings = load_settings([], {"SPACE_ID": "me/playground", "SPACE_HOST": "me-playground.hf.space"})
    assert settings.host == "0.0.0.0"
    assert settings.public_url == "https://me-playground.hf.space"
    # The entry a Space's proxy appends, which a client cannot forge: a forged first entry changes nothing.
    assert settings.forwarded_for == ForwardedFor("hops", 1)
    assert settings.forwarded_for.client("10.16.3.80", ["6.6.6.6", "1.2.3.4"]) == "1.2.3.4"
    assert str(load_settings([], {}).forwarded_for) == "ignore"


@pytest.mark.parametrize("value", ["0", "-1", "last", "1.5", "", "²"])
def test_forwarded_for_must_be_ignore_first_or_a_proxy_count(value):
    with pytest.raises(ConfigError, match="--forwarded-for must be ignore, first, or the number of proxies"):
        load_settings(["--forwarded-for", value], {})


def test_data_dir_and_database():
    settings = load_settings(["--data-dir", "/tmp/pg"], {})
    assert settings.data_dir == Path("/tmp/pg")
    assert settings.database.endswith("/tmp/pg/playground.db")


@pytest.mark.parametrize(
    ("argv", "env", "needle"),
    [
        (["--port", "eighty"], {}, "--port must be a whole number"),
        (["--port", "70000"], {}, "between 1 and 65535"),
        (["--backend", "vllm"], {}, "--backend must be one of local, tgi, openai, fake"),
        (["--backend", "tgi"], {}, "needs --endpoint"),
        (["--backend", "tgi", "--endpoint", "localhost:8080"], {}, "must start with http"),
        (["--dtype", "fp8"], {}, "--dtype must be one of"),
        (["--device-map", "everywhere"], {}, "or a JSON object"),
        (["--max-memory", "gpu0=20GiB"], {}, "could not read 'gpu0=20GiB'"),
        (["--max-memory", "0=20 gigs"], {}, "0=20GiB,1=20GiB,cpu=64GiB"),
        ([], {"PLAYGROUND_QUANTIZE": "3bit"}, "PLAYGROUND_QUANTIZE must be one of none, 8bit, 4bit"),
        (["--backend", "tgi", "--endpoint", "http://x", "--quantize", "8bit"], {}, "applies to --backend local"),
        (["--generation-timeout", "0"], {}, "must be positive"),
    ],
)
def test_bad_settings_are_named(argv, env, needle):
    with pytest.raises(ConfigError) as info:
        load_settings(argv, env)
    assert needle in info.value.message


def test_device_map_accepts_a_json_mapping():
    settings = load_settings(["--device-map", '{"transformer.h.0": 0, "lm_head": "cpu"}'], {})
    assert settings.device_map == DeviceMap(mapping={"transformer.h.0": 0, "lm_head": "cpu"})
    assert settings.device_map.names_gpu()


def test_extra_remote_models():
    settings = load_settings(["--extra-models", "starcoder=tgi:http://tgi:80, starcoder2-15b=openai:http://vllm:8000/v1"], {})
    assert settings.extra_models == (ExtraModel("starcoder", "tgi", "http://tgi:80"),
                                     ExtraModel("starcoder2-15b", "openai", "http://vllm:8000/v1"))
    with pytest.raises(ConfigError, match="starcoder=tgi:http://host:8080"):
        load_settings(["--extra-models", "starcoder=grpc:x"], {})


def test_grouped_values_are_parsed_once_into_their_objects():
    settings = load_settings(["--first-token-timeout", "5", "--generate-per-minute", "7", "--forwarded-for", "2"],
                             {"PLAYGROUND_IDLE_TIMEOUT": "3"})
    assert settings.timeouts == RemoteTimeouts(first_token_s=5.0, idle_s=3.0)
    assert settings.limits == RateLimits(generate_per_minute=7)
    assert settings.forwarded_for == ForwardedFor("hops", 2)
    assert settings.forwarded_for.client("10.0.0.9", ["1.2.3.4", "5.6.7.8", "10.0.0.1"]) == "5.6.7.8"


def test_help_shows_each_default_from_its_field():
    from playground.config import build_parser

    text = build_parser().format_help()
    assert "(default: 60.0)" in text and "(default: 120)" in text and "(default: ignore)" in text


def test_api_keys_from_flags_env_and_a_file_never_in_the_repr(tmp_path):
    key_file = tmp_path / "keys.txt"
    key_file.write_text("# editors\nfile-key-0123456789abcdef\n\nflag-key-0123456789abcdef\n", encoding="utf-8")
    settings = load_settings(["--api-key", "flag-key-0123456789abcdef", "--api-key", "second-key-0123456789abc",
                              "--api-key-file", str(key_file), "--key-requests-per-minute", "30"], {})
    assert settings.editor_keys() == ("flag-key-0123456789abcdef", "second-key-0123456789abc",
                                      "file-key-0123456789abcdef")
    assert settings.limits.per_key_per_minute == 30
    assert "key-0123456789" not in repr(settings)
    from_env = load_settings([], {"PLAYGROUND_API_KEYS": "env-key-0123456789abcdef,env-key-2-0123456789abcdef"})
    assert len(from_env.editor_keys()) == 2


@pytest.mark.parametrize(("argv", "needle"), [
    (["--api-key", "short"], "at least 16 characters"),
    (["--key-requests-per-minute", "-1"], "--key-requests-per-minute must be 0"),
])
def test_bad_api_key_settings_are_named(argv, needle):
    with pytest.raises(ConfigError, match=needle):
        load_settings(argv, {})


def test_an_unreadable_or_empty_key_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        Settings(api_key_file=tmp_path / "missing.txt").editor_keys()
    (tmp_path / "empty.txt").write_text("# none yet\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="holds no key"):
        Settings(api_key_file=tmp_path / "empty.txt").editor_keys()


def test_retention_and_where_limits_count():
    assert Settings().limits_shared is False  # SQLite: one process, limits in memory
    assert Settings(database_url="postgresql+psycopg://u:p@db/playground").limits_shared is True
    assert load_settings(["--limits-store", "memory", "--database-url", "postgresql+psycopg://u:p@db/p"],
                         {}).limits_shared is False
    assert load_settings(["--generation-retention", "0.5"], {}).generation_retention_h == 0.5
    with pytest.raises(ConfigError, match="--generation-retention must be 0"):
        load_settings(["--generation-retention", "-1"], {})
