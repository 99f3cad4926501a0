"""Hardening from the second red-team run, each defect with its literal input: liveness that busy
worker threads cannot starve, bodies refused before they are read, and service files that other
users cannot read."""

from __future__ import annotations

import os
import socket
import stat
import statistics
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from playground.backends.fake import FakeBackend
from playground.config_types import RateLimits
from playground.private_files import private_dir, private_file
from playground.store import ShareStore

NO_LIMITS = RateLimits(0, 0, 0)


@dataclass
class SlowCounting(FakeBackend):
    """Counting a prompt while a request is prepared takes a second, as a long fill's counting once did
    on the engine; the generation itself (which counts too, in the model's own turn) stays fast."""

    def count_tokens(self, prompt):
        if not threading.current_thread().name.startswith("api-generation"):  # a web worker thread
            time.sleep(1.0)
        return super().count_tokens(prompt)


def test_live_and_health_answer_while_every_worker_thread_is_busy(fake_server):
    server, _ = fake_server(SlowCounting(outputs=["x"] * 500), limits=NO_LIMITS, max_queue=500)

    def hammer() -> None:  # 48 clients, each holding a worker thread for a second per request, 3 times
        with httpx.Client(timeout=60) as client:
            for _ in range(3):
                client.post(server.url + "/api/generate", json={"mode": "complete", "prompt": "x"})

    clients = [threading.Thread(target=hammer, daemon=True) for _ in range(48)]
    for client in clients:
        client.start()
    time.sleep(1.0)
    times = []
    try:
        for _ in range(20):
            started = time.perf_counter()
            assert httpx.get(server.url + "/api/live", timeout=10).status_code == 200
            assert httpx.get(server.url + "/api/health", timeout=10).status_code == 200
            times.append(time.perf_counter() - started)
    finally:
        for client in clients:
            client.join(30)
    # Behind the busy workers every answer would take a second or more; one scheduler hiccup on two shared
    # cores (seen in CI at 1.2 s) is not that, so the 90th percentile of the twenty is what must stay fast.
    assert statistics.quantiles(times, n=10, method="inclusive")[8] < 0.25, times


def test_a_declared_200_mib_body_is_refused_before_it_is_sent(fake_server):
    server, _ = fake_server(limits=NO_LIMITS)
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 209715200\r\n\r\n{")  # one byte of the 200 MiB it announces
        answer = b""
        while b"the limit is" not in answer:  # the head and the body may come in separate segments
            piece = sock.recv(4096)
            if not piece:
                break
            answer += piece
    assert answer.startswith(b"HTTP/1.1 413") and b"the limit is" in answer


def test_a_chunked_body_over_the_limit_is_cut_off_while_it_streams(fake_server):
    server, _ = fake_server(limits=NO_LIMITS)

    def chunks():
        for _ in range(64):  # 8 MiB in all, no length declared
            yield b" " * (128 * 1024)

    response = httpx.post(server.url + "/api/generate", content=chunks(), timeout=30)
    assert response.status_code == 413 and response.json()["error"]["type"] == "prompt_too_long"


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_share_database_is_made_readable_by_its_owner_only(tmp_path):
    os.umask(0o022)
    store = ShareStore.open(tmp_path / "data" / "shares.db")
    try:
        assert mode(tmp_path / "data" / "shares.db") == 0o600
    finally:
        store.close()


def test_existing_wide_files_and_folders_are_tightened_and_logged(tmp_path, caplog):
    folder, db = tmp_path / "data", tmp_path / "data" / "playground.db"
    folder.mkdir(mode=0o755)
    db.write_bytes(b"")
    os.chmod(db, 0o644)
    (tmp_path / "data" / "playground.db-wal").write_bytes(b"")
    private_dir(folder)
    private_file(db)
    assert mode(folder) == 0o700 and mode(db) == 0o600 and mode(tmp_path / "data" / "playground.db-wal") == 0o600
    assert sum("readable by other users" in r.getMessage() for r in caplog.records) == 3


def test_a_folder_that_cannot_be_tightened_is_reported_and_served_anyway(tmp_path, caplog, monkeypatch):
    folder = tmp_path / "volume"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)

    def refused(path, mode):  # what a mounted volume owned by another user answers (root never gets it)
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("playground.private_files.os.chmod", refused)
    private_dir(folder)
    assert mode(folder) == 0o755
    assert any("cannot be tightened" in r.getMessage() for r in caplog.records)


def _trickle(url: str, declared: int = 100) -> socket.socket:
    """A POST whose headers promise a body that never fully comes: the red team's slow-body input."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    sock.sendall(f"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {declared}\r\n\r\n{{".encode())
    return sock


def _answer(sock: socket.socket) -> bytes:
    answer = b""
    while piece := sock.recv(4096):
        answer += piece
        if b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}"):
            break
    return answer


def test_a_body_trickled_in_is_cut_off_with_408(fake_server, monkeypatch):
    monkeypatch.setattr("playground.web.bodies.BODY_READ_TIMEOUT_S", 1.0)
    server, _ = fake_server(limits=NO_LIMITS)
    sock = _trickle(server.url)
    started = time.monotonic()
    try:
        for _ in range(3):  # a byte now and then, never the whole body
            time.sleep(0.4)
            sock.sendall(b" ")
        answer = _answer(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408") and b"body_timeout" in answer
    assert time.monotonic() - started < 5


def test_one_address_cannot_hold_every_connection(fake_server):
    server, _ = fake_server(limits=RateLimits(0, 0, 0, open_per_client=3))
    held = [_trickle(server.url) for _ in range(3)]
    try:
        time.sleep(0.3)  # the three are open and waiting for their bodies
        refused = httpx.get(server.url + "/api/models", timeout=10)
        assert refused.status_code == 429 and refused.json()["error"]["type"] == "too_many_open"
        assert httpx.get(server.url + "/api/live", timeout=10).status_code == 200  # probes always answer
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10
    while httpx.get(server.url + "/api/models", timeout=10).status_code == 429:
        assert time.monotonic() < deadline, "closed connections were never let go"
        time.sleep(0.1)


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_96_mib_body_raises_the_servers_memory_by_less_than_8_mib(fake_server):
    """The red team's input: a 200 MiB POST once raised the web process by 376 MiB before its 413. Here
    a 96 MiB chunked body (no length declared) is sent to the app, served in this process."""
    server, _ = fake_server(limits=NO_LIMITS)
    piece = b" " * (1024 * 1024)

    def chunks():
        for _ in range(96):
            yield piece

    httpx.post(server.url + "/api/generate", content=b"{}", timeout=30)  # warm: buffers and pools exist
    before, peak, done = _rss(), [0], threading.Event()

    def sample() -> None:  # the peak, not the end: a freed large buffer leaves no trace in the RSS after
        while not done.wait(0.002):
            peak[0] = max(peak[0], _rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        response = httpx.post(server.url + "/api/generate", content=chunks(), timeout=60)
        assert response.status_code == 413
    except httpx.RemoteProtocolError:
        pass  # the server may close the connection while the rest of the body is still being sent
    finally:
        done.set()
        sampler.join()
    assert peak[0] - before < 8 * 2**20, (peak[0] - before) / 2**20
