"""Three `python app.py` replicas on one PostgreSQL, behind Debian's nginx running the shipped config,
in front of a remote engine (the TGI STAND-IN in its own process: TGI itself cannot run here).

A generation made on one replica is shared from another, read from a third and deleted from the first,
directly and through nginx; forty concurrent cross-replica shares are readable everywhere; streaming,
the editor routes and gradio_client work through nginx; a replica killed mid-stream leaves its client
an error with the partial text and loses nothing acknowledged; PostgreSQL restarted under load gives
clear 503s and the replicas recover by themselves.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from support import nginx
from support.replicas import Replica, running_replicas
from support.standins.fixtures import subprocess_tgi

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
GENERATE = {"mode": "complete", "prompt": "def add(a, b):\n", "params": {"max_new_tokens": 8}}


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    with subprocess_tgi(args=["--rate", "40"]) as standin:
        yield standin


@pytest.fixture(scope="module")
def database(postgres) -> str:
    import sqlalchemy

    admin = sqlalchemy.create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text('DROP DATABASE IF EXISTS "replicas" WITH (FORCE)'))
        conn.execute(sqlalchemy.text('CREATE DATABASE "replicas"'))
    admin.dispose()
    return postgres.url.rsplit("/", 1)[0] + "/replicas"


@pytest.fixture(scope="module")
def replicas(engine, database) -> Iterator[list[Replica]]:
    reason = nginx.available()
    if reason:
        pytest.skip(reason)
    flags = ["--backend", "tgi", "--endpoint", engine.url, "--model", "starcoder", "--database-url", database,
             "--attribution", "off", "--forwarded-for", "1", "--generate-per-minute", "0",
             "--share-create-per-minute", "0", "--share-lookup-per-minute", "0"]
    with running_replicas(3, flags) as started:
        yield started


@pytest.fixture(scope="module")
def proxy(replicas) -> Iterator[nginx.RunningNginx]:
    with nginx.running_nginx([r.address for r in replicas]) as running:
        yield running


def generate(url: str, **extra: Any) -> dict[str, Any]:
    response = httpx.post(url + "/api/generate", json={**GENERATE, **extra}, timeout=60)
    assert response.status_code == 200, response.text
    return dict(response.json())


def share(url: str, generation_id: str) -> dict[str, Any]:
    response = httpx.post(url + "/api/shares", json={"generation_id": generation_id}, timeout=30)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def test_made_on_one_shared_on_another_read_on_a_third_deleted_on_the_first(replicas, proxy):
    one, two, three = (r.url for r in replicas)
    record = generate(one)
    shared = share(two, record["id"])
    assert httpx.get(f"{three}/api/generations/{record['id']}").json()["text"] == record["text"]
    assert httpx.get(f"{three}/api/shares/{shared['id']}").json()["text"] == record["text"]
    assert share(three, record["id"])["id"] == shared["id"]  # one share per generation, whoever asks
    deleted = httpx.request("DELETE", f"{one}/api/shares/{shared['id']}",
                            headers={"Authorization": f"Bearer {shared['delete_token']}"})
    assert deleted.status_code in (200, 204), deleted.text
    assert httpx.get(f"{two}/api/shares/{shared['id']}").status_code == 404
    through = generate(proxy.url)
    again = share(proxy.url, through["id"])
    assert httpx.get(f"{proxy.url}/api/shares/{again['id']}").json()["text"] == through["text"]
    page = httpx.get(f"{proxy.url}/s/{again['id']}", follow_redirects=True)  # the link, opened: the UI's page
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    gone = httpx.request("DELETE", f"{proxy.url}/api/shares/{again['id']}",
                         headers={"Authorization": f"Bearer {again['delete_token']}"})
    assert gone.status_code == 204 and all(httpx.get(f"{r.url}/api/shares/{again['id']}").status_code == 404
                                           for r in replicas)


def test_forty_concurrent_cross_replica_shares_are_readable_everywhere(replicas, proxy):
    urls = [r.url for r in replicas]
    with ThreadPoolExecutor(8) as pool:
        records = list(pool.map(lambda i: generate(urls[i % 3]), range(40)))
        shares = list(pool.map(lambda i: share(urls[(i + 1) % 3], records[i]["id"]), range(40)))
    assert len({s["id"] for s in shares}) == 40
    for shared, record in zip(shares, records, strict=True):
        for url in [*urls, proxy.url]:
            assert httpx.get(f"{url}/api/shares/{shared['id']}").json()["id"] == record["id"]


def test_streaming_and_editors_through_nginx(proxy):
    with httpx.stream("POST", proxy.url + "/api/generate", json={**GENERATE, "stream": True}, timeout=60) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    deltas = "".join(e.get("delta", "") for e in events[:-1])
    assert events[-1]["done"] is True and deltas and deltas == events[-1]["text"]
    client = OpenAI(base_url=proxy.url + "/v1", api_key="unused", max_retries=0)
    parts = list(client.completions.create(model="starcoder", prompt="def f(", max_tokens=6, stream=True))
    assert "".join(p.choices[0].text for p in parts)


def test_gradio_client_through_nginx(proxy):
    gradio_client = pytest.importorskip("gradio_client")
    client = gradio_client.Client(proxy.url + "/", verbose=False,
                                  httpx_kwargs={"timeout": httpx.Timeout(60.0, read=8.0)})
    outputs = client.predict("def add(a, b):\n", "starcoder", 8, 0, 0.9, 0, 1.0, "", "7", api_name="/complete")
    client.close()
    assert any(isinstance(o, str) and "finish: " in o for o in outputs)


@pytest.mark.browser
def test_the_ui_in_chromium_through_nginx(proxy):
    pytest.importorskip("playwright.sync_api")
    from playwright.sync_api import sync_playwright

    from tests.web.browser_support import CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.skip("needs chromium: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(proxy.url + "/")
        page.get_by_role("tab", name="Complete").click()
        page.locator("#complete-run").click()
        page.locator("#complete-stats").get_by_text(re.compile("finish: ")).wait_for(timeout=60_000)
        generation_id = page.locator("#complete-stats").inner_text().split("id ")[-1].split()[0]
        browser.close()
    # Made through the sticky pool, readable from the API pool: any replica holds it.
    assert httpx.get(f"{proxy.url}/api/generations/{generation_id}").status_code == 200


def generate_requests(replica: Replica) -> int:
    metrics = httpx.get(replica.url + "/metrics").text
    return sum(int(float(m)) for m in re.findall(r'route="api/generate",status="200"} (\S+)', metrics))


def test_postgres_restarted_under_load_gives_clear_503s_then_recovers(replicas, proxy, postgres):
    made = generate(proxy.url)
    statuses: list[int] = []
    messages: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            response = httpx.post(proxy.url + "/api/shares", json={"generation_id": made["id"]}, timeout=30)
            statuses.append(response.status_code)
            if response.status_code >= 500:
                messages.append(response.json()["error"]["message"])

    workers = [threading.Thread(target=load) for _ in range(3)]
    for worker in workers:
        worker.start()
    postgres.restart(down_s=1.0)
    stop.set()
    for worker in workers:
        worker.join()
    assert set(statuses) <= {200, 201, 503}, statuses
    assert all("database server cannot be reached" in m for m in messages), messages
    for replica in replicas:  # every replica serves again without a restart
        assert share(replica.url, made["id"])["id"]


def test_a_replica_killed_mid_stream_loses_nothing_acknowledged(replicas, proxy):
    acknowledged = generate(proxy.url)
    kept = share(proxy.url, acknowledged["id"])
    before = {r.port: generate_requests(r) for r in replicas}
    body = {**GENERATE, "stream": True, "params": {"max_new_tokens": 200}}
    received: list[str] = []
    error: list[BaseException] = []
    with httpx.stream("POST", proxy.url + "/api/generate", json=body, timeout=60) as response:
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("data: ") and "delta" in line:
                received.append(json.loads(line[6:])["delta"])
                break
        serving = next(r for r in replicas if generate_requests(r) > before[r.port])
        serving.kill()
        try:
            for line in lines:
                if line.startswith("data: "):
                    received.append(json.loads(line[6:]).get("delta", ""))
        except httpx.HTTPError as exc:  # the connection cut under the stream: the client is told
            error.append(exc)
    assert received and received[0]  # the partial text reached the client
    assert error, "the stream ended as if it had finished"
    survivors = [r for r in replicas if r is not serving]
    for replica in survivors:
        assert httpx.get(f"{replica.url}/api/shares/{kept['id']}").status_code == 200
        assert httpx.get(f"{replica.url}/api/generations/{acknowledged['id']}").status_code == 200
    for _ in range(6):  # nginx skips the dead replica: every request is served
        assert generate(proxy.url)["finish_reason"]


def test_a_rate_limit_holds_for_all_replicas_together(postgres_url, tmp_path):
    from playground.config import Settings
    from playground.config_types import RateLimits
    from support.servers import serve
    from tests.conftest import fake_playground

    settings = [Settings(data_dir=tmp_path / name, database_url=postgres_url,
                         limits=RateLimits(generate_per_minute=4)) for name in ("a", "b")]
    servers = [serve(fake_playground(s)) for s in settings]
    try:
        body = {"mode": "complete", "prompt": "x"}
        codes = [httpx.post(servers[i % 2].url + "/api/generate", json=body, timeout=30).status_code
                 for i in range(6)]
        assert codes.count(200) == 4 and codes[4:] == [429, 429], codes  # four in all, not four each
    finally:
        for server in servers:
            server.stop()
