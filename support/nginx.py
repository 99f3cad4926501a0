"""Debian's nginx running ``deploy/nginx/playground.conf`` in front of replicas on this machine.

The shipped file names the compose services (``replica1:7860``...) and listens
on 80; here those become the replicas' local addresses and a free port, and the
file is wrapped in the minimal main configuration the nginx image would give
it, with every path in a temporary folder::

    with running_nginx(["127.0.0.1:8001", "127.0.0.1:8002"]) as proxy:
        httpx.get(proxy.url + "/api/health")
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from support.servers import free_port

SHIPPED = Path(__file__).resolve().parents[1] / "deploy" / "nginx" / "playground.conf"
NGINX = "/usr/sbin/nginx"


def available() -> str | None:
    return None if Path(NGINX).exists() else "nginx is not installed (apt-get install nginx)"


@dataclass(frozen=True)
class RunningNginx:
    url: str
    folder: Path


def render(replicas: Sequence[str], port: int, folder: Path) -> str:
    """The shipped server configuration for these replicas and port, inside a main configuration."""
    server_conf = SHIPPED.read_text(encoding="utf-8")
    names = sorted(set(re.findall(r"server (replica\d+:7860)", server_conf)))
    if len(replicas) > len(names):
        raise ValueError(f"the shipped configuration names {len(names)} replicas")
    for name, address in zip(names, replicas, strict=False):
        server_conf = server_conf.replace(f"server {name} ", f"server {address} ")
    for name in names[len(replicas):]:  # fewer replicas here: leave the rest out
        server_conf = re.sub(rf"\n\s*server {re.escape(name)} [^\n]*", "", server_conf)
    server_conf = server_conf.replace("listen 80;", f"listen 127.0.0.1:{port};")
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                            "uwsgi", "scgi"))
    return (f"worker_processes 2;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} warn;\n"
            f"events {{ worker_connections 512; }}\nhttp {{\n    access_log off;\n{temp}\n{server_conf}\n}}\n")


@contextmanager
def running_nginx(replicas: Sequence[str]) -> Iterator[RunningNginx]:
    folder = Path(tempfile.mkdtemp(prefix="playground-nginx-"))
    folder.chmod(0o755)
    port = free_port()
    config = folder / "nginx.conf"
    config.write_text(render(replicas, port, folder), encoding="utf-8")
    process = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(config), "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited: {process.stderr.read().decode() if process.stderr else ''}")
            try:
                httpx.get(url + "/api/live", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield RunningNginx(url, folder)
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
