"""deploy/compose.yaml and deploy/nginx/playground.conf, checked without Docker (no daemon or registry here):
the services and their wiring, the replicas' settings as the app parses them, and the nginx file accepted by
Debian's nginx (``nginx -t``). The same nginx file runs in front of real replicas in tests/reliability."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from playground.config import load_settings
from support import nginx

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def test_three_replicas_one_database_nginx_and_an_engine(compose):
    services = compose["services"]
    assert {"postgres", "replica1", "replica2", "replica3", "nginx", "tgi", "standin"} <= set(services)
    assert services["replica1"] == services["replica2"] == services["replica3"]  # one definition, three copies
    assert services["replica1"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "./nginx/playground.conf:/etc/nginx/conf.d/default.conf:ro" in services["nginx"]["volumes"]
    assert services["standin"]["networks"]["default"]["aliases"] == ["tgi"]  # stands where TGI would


def test_the_replicas_settings_parse_as_the_app_reads_them(compose):
    environment = {key: str(value).replace("${POSTGRES_PASSWORD:-change-me}", "change-me")
                   .replace("${ENGINE_URL:-http://tgi:80}", "http://tgi:80")
                   .replace("${PLAYGROUND_BACKEND:-tgi}", "tgi").replace("${PLAYGROUND_MODEL:-starcoder}", "starcoder")
                   .replace("${PUBLIC_URL:-http://localhost:8080}", "http://localhost:8080")
                   for key, value in compose["services"]["replica1"]["environment"].items()}
    settings = load_settings([], environment)
    assert settings.backend == "tgi" and settings.endpoint == "http://tgi:80"
    assert settings.database.startswith("postgresql+psycopg://") and settings.limits_shared
    assert settings.forwarded_for.policy == "hops" and settings.forwarded_for.hops == 1


def test_nginx_accepts_the_shipped_file(tmp_path):
    reason = nginx.available()
    if reason:
        pytest.skip(reason)
    config = tmp_path / "nginx.conf"
    config.write_text(nginx.render(["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"], 9000, tmp_path))
    checked = subprocess.run([nginx.NGINX, "-t", "-p", str(tmp_path), "-c", str(config)], capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
