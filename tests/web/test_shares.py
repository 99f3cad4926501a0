"""Sharing over HTTP: only server-made generations, exact reopening, deletion, identical 404s, limits, faults."""

from __future__ import annotations

import sqlite3

import httpx

from playground.config_types import RateLimits


def generate(url: str, **body) -> dict:
    body.setdefault("mode", "complete")
    body.setdefault("prompt", "def f():\n")
    response = httpx.post(url + "/api/generate", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def share(url: str, generation_id: str) -> httpx.Response:
    return httpx.post(url + "/api/shares", json={"generation_id": generation_id}, timeout=30)


def test_share_round_trip_is_exact(nano_server):
    record = generate(nano_server.url, mode="fill", code="def f(x):\n    <FILL_HERE>\n", params={"max_new_tokens": 8})
    created = share(nano_server.url, record["id"])
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "url", "delete_token"}
    assert len(body["id"]) >= 22 and body["url"].endswith("/s/" + body["id"])  # 128 bits, URL-safe base64
    assert created.headers["x-robots-tag"].startswith("noindex")
    shared = httpx.get(f"{nano_server.url}/api/shares/{body['id']}")
    assert shared.status_code == 200 and shared.headers["x-robots-tag"].startswith("noindex")
    assert shared.json() == record
    record_fields = shared.json()
    assert record_fields["params"]["seed"] == record["params"]["seed"]
    assert record_fields["backend"]["revision"] and record_fields["raw_prompt"].startswith("<fim_prefix>")


def test_clients_cannot_share_arbitrary_content(nano_server):
    assert share(nano_server.url, "made-up-id").status_code == 404
    response = httpx.post(nano_server.url + "/api/shares", json={"text": "I am StarCoder and I say..."})
    assert response.status_code == 400 and "generation_id" in response.json()["error"]["message"]


def test_unknown_and_deleted_ids_get_identical_404s(nano_server):
    created = share(nano_server.url, generate(nano_server.url, params={"max_new_tokens": 4})["id"]).json()
    wrong = httpx.delete(f"{nano_server.url}/api/shares/{created['id']}", headers={"Authorization": "Bearer nope"})
    missing = httpx.delete(f"{nano_server.url}/api/shares/{created['id']}")
    assert wrong.status_code == 403 and missing.status_code == 403
    assert httpx.get(f"{nano_server.url}/api/shares/{created['id']}").status_code == 200
    right = httpx.delete(f"{nano_server.url}/api/shares/{created['id']}",
                         headers={"Authorization": f"Bearer {created['delete_token']}"})
    assert right.status_code == 204
    deleted = httpx.get(f"{nano_server.url}/api/shares/{created['id']}")
    unknown = httpx.get(f"{nano_server.url}/api/shares/AAAAAAAAAAAAAAAAAAAAAA")
    assert deleted.status_code == unknown.status_code == 404
    assert deleted.content == unknown.content
    assert deleted.headers["x-robots-tag"] == unknown.headers["x-robots-tag"]


def test_share_link_opens_the_app_with_noindex(nano_server):
    created = share(nano_server.url, generate(nano_server.url, params={"max_new_tokens": 4})["id"]).json()
    redirect = httpx.get(created["url"].replace("http://testserver", nano_server.url), follow_redirects=False)
    assert redirect.status_code == 303 and redirect.headers["location"] == f"/?share={created['id']}"
    page = httpx.get(f"{nano_server.url}/?share={created['id']}")
    assert page.status_code == 200 and page.headers["x-robots-tag"].startswith("noindex")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert httpx.get(f"{nano_server.url}/s/AAAAAAAAAAAAAAAAAAAAAA").status_code == 404


def test_an_unknown_share_opened_by_a_browser_is_a_page_with_the_same_404(nano_server):
    """A browser gets a page that says so; API clients keep the JSON error."""
    url = f"{nano_server.url}/s/AAAAAAAAAAAAAAAAAAAAAA"
    page = httpx.get(url, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Shared generation not found</h1>" in page.text and "script-src" not in page.headers[
        "content-security-policy"] and page.headers["x-robots-tag"].startswith("noindex")
    api = httpx.get(url, headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.json()["error"]["type"] == "not_found"


def test_public_url_builds_absolute_links(fake_server):
    server, _ = fake_server(public_url="https://playground.example")
    record = generate(server.url)
    assert share(server.url, record["id"]).json()["url"].startswith("https://playground.example/s/")


def test_rate_limits_answer_429_with_a_clear_message(fake_server):
    server, _ = fake_server(limits=RateLimits(share_create_per_minute=2, share_lookup_per_minute=3))
    ids = [generate(server.url)["id"] for _ in range(3)]
    assert [share(server.url, i).status_code for i in ids] == [201, 201, 429]
    limited = share(server.url, ids[2]).json()["error"]
    assert limited["type"] == "rate_limited" and "2 a minute" in limited["message"]
    statuses = [httpx.get(f"{server.url}/api/shares/AAAAAAAAAAAAAAAAAAAAAA").status_code for _ in range(4)]
    assert statuses == [404, 404, 404, 429]


def test_limits_can_be_turned_off(fake_server):
    server, _ = fake_server(limits=RateLimits(share_create_per_minute=0))
    ids = [generate(server.url)["id"] for _ in range(5)]
    assert all(share(server.url, i).status_code == 201 for i in ids)


def test_locked_database_fails_sharing_clearly_while_the_rest_works(fake_server):
    server, playground = fake_server()
    old = share(server.url, generate(server.url)["id"]).json()
    holder = sqlite3.connect(playground.settings.data_dir / "playground.db", timeout=0.1, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        record = generate(server.url)  # generation keeps working
        response = share(server.url, record["id"])
        assert response.status_code == 503
        assert "try again" in response.json()["error"]["message"].lower()
        assert httpx.get(f"{server.url}/api/shares/{old['id']}").status_code == 200  # old shares still open
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert share(server.url, record["id"]).status_code == 201  # and it recovers


def test_delete_page_uses_the_fragment_token(nano_server):
    created = share(nano_server.url, generate(nano_server.url, params={"max_new_tokens": 4})["id"]).json()
    page = httpx.get(f"{nano_server.url}/s/{created['id']}/delete")
    assert page.status_code == 200 and "location.hash" in page.text
    assert page.headers["x-robots-tag"].startswith("noindex")
    assert "default-src 'none'" in page.headers["content-security-policy"]
