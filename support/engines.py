"""Real inference engines serving a local model, started as subprocesses for tests and benchmarks.

Two OpenAI-compatible engines run nano-starcoder on CPU here (measured facts in ``docs/engines.md``):

* ``start_transformers_serve(model_dir, port)``: ``python -m transformers.cli.transformers serve
  MODEL_DIR`` (the ``transformers serve`` CLI of transformers 5). It has ``/v1/completions`` and
  preloads the one model it is pinned to; requests must name that model exactly as it was given
  on the command line (or leave ``model`` out). It refuses fields outside the OpenAI schema with
  422 ``{"detail": "Unexpected fields in the request: {...}"}`` (``top_k``, ``repetition_penalty``).
* ``start_llama_cpp_server(gguf_path, port, n_ctx)``: ``python -m llama_cpp.server`` from
  ``llama-cpp-python[server]``, serving a GGUF made by ``support.gguf.convert_to_gguf(model_dir)``.

Each ``start_*`` returns a ``RunningEngine`` once the engine answers (bounded by a timeout), with
``stop()``, ``kill()`` (SIGKILL, for "the engine crashed") and ``restart()`` (same port), its
output appended to a log file. ``engine_available(engine)`` gives a skip reason, or None::

    reason = engine_available("llama.cpp")
    if reason:
        pytest.skip(reason)
    with start_llama_cpp_server(convert_to_gguf(NANO), n_ctx=512) as engine:  # support.gguf
        httpx.post(f"{engine.api_base}/completions", json={"prompt": "def f(", "max_tokens": 8})
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpx

from support.servers import free_port

Engine = Literal["transformers", "llama.cpp"]

LLAMA_CPP_PYTHON_VERSION = "0.3.36"  # the version these notes and docs/engines.md were measured with
STARTUP_TIMEOUT_S = 120.0  # measured: ~8 s (transformers serve), under 1 s (llama.cpp) on 2 busy cores
_POLL_S = 0.1
_CACHE_ENV = "PLAYGROUND_ENGINE_CACHE"  # where GGUF files and the converter are kept
_INSTALL_HINT = {
    "transformers": "pip install 'transformers[serving]' (fastapi, uvicorn, openai, pydantic)",
    "llama.cpp": (
        f"CMAKE_ARGS='-DGGML_NATIVE=OFF' pip install 'llama-cpp-python[server]=={LLAMA_CPP_PYTHON_VERSION}'"
        " (builds llama.cpp from source: about 5 minutes on 2 cores)"
    ),
}
_REQUIRED_MODULES: dict[Engine, tuple[str, ...]] = {
    "transformers": ("transformers", "torch", "fastapi", "uvicorn", "openai", "pydantic"),
    "llama.cpp": ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings"),
}
# Engines started by this process, killed at exit in case a script forgets (or crashes before) stop().
_LIVE: dict[int, RunningEngine] = {}


def _kill_leftovers() -> None:
    for engine in list(_LIVE.values()):
        engine.kill()


atexit.register(_kill_leftovers)


class EngineError(RuntimeError):
    """An engine did not start or answer in time, or a GGUF conversion failed; says where the log is."""


def engine_available(engine: Engine) -> str | None:
    """None when ``engine`` can be started here, else a reason fit for ``pytest.skip``."""
    missing = [name for name in _REQUIRED_MODULES[engine] if importlib.util.find_spec(name) is None]
    if missing:
        return f"{engine} engine not installed (missing {', '.join(missing)}): {_INSTALL_HINT[engine]}"
    return None


def cache_dir() -> Path:
    """Where GGUF files and the fetched converter live: ``$PLAYGROUND_ENGINE_CACHE`` or ~/.cache."""
    default = Path.home() / ".cache" / "starcoder-playground" / "engines"
    path = Path(os.environ.get(_CACHE_ENV) or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class RunningEngine:
    """One engine subprocess: where it listens, the model name it expects, and its log.

    ``model`` is the name to send in requests (transformers serve refuses any other with a 400;
    llama.cpp accepts any name and echoes it back). ``startup_s`` is the last start's time from
    spawning to the first successful ``ready_path`` answer.
    """

    engine: Engine
    command: list[str]
    host: str
    port: int
    model: str
    ready_path: str
    log_path: Path
    env: dict[str, str]
    cwd: Path
    startup_timeout_s: float = STARTUP_TIMEOUT_S
    startup_s: float = 0.0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        """The OpenAI base URL, ``.../v1``."""
        return f"{self.base_url}/v1"

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> RunningEngine:
        """Spawn the engine and wait until it answers; raises ``EngineError`` (with the log's tail)."""
        if self.is_running():
            raise EngineError(f"{self.engine} is already running on port {self.port}")
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} start: {' '.join(self.command)}\n".encode())
            log.flush()
            started = time.monotonic()
            # A session of its own: stop()/kill() signal the whole group, never this process.
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _LIVE[id(self)] = self
        self._wait_ready(started)
        self.startup_s = time.monotonic() - started
        return self

    def _wait_ready(self, started: float) -> None:
        deadline = started + self.startup_timeout_s
        url = self.base_url + self.ready_path
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise EngineError(
                    f"{self.engine} exited with {self.process.returncode} while starting:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            time.sleep(_POLL_S)
        self.kill()
        raise EngineError(f"{self.engine} did not answer {url} within {self.startup_timeout_s:g} s:\n{self.log_tail()}")

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL after ``timeout_s``."""
        if self.process is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        _LIVE.pop(id(self), None)

    def kill(self) -> None:
        """SIGKILL the engine's process group at once, as a crash would; open streams break."""
        if self.process is None:
            return
        self._signal(signal.SIGKILL)
        self.process.wait(10.0)
        _LIVE.pop(id(self), None)

    def restart(self) -> RunningEngine:
        """Start again on the same port and with the same model (stops it first if it still runs)."""
        self.stop()
        return self.start()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        return f"--- {self.log_path} (last {chars} characters) ---\n{text[-chars:]}"

    def __enter__(self) -> RunningEngine:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _log_path(log_dir: Path | None, name: str, port: int) -> Path:
    directory = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="engine-logs-"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{name}-{port}.log"


def start_transformers_serve(
    model_dir: str | Path,
    port: int | None = None,
    *,
    host: str = "127.0.0.1",
    cwd: str | Path | None = None,
    device: str = "cpu",
    log_dir: Path | None = None,
    hf_cache: Path | None = None,
    extra_args: Sequence[str] = (),
    timeout_s: float = STARTUP_TIMEOUT_S,
) -> RunningEngine:
    """``transformers serve MODEL_DIR`` pinned to the local folder ``model_dir``, once it answers.

    ``model_dir`` is passed verbatim (relative to ``cwd``, default the current directory) and is
    the only model name requests may use: our client sends the registry's ``source``
    ("models/nano-starcoder") when ``/v1/models`` lists nothing, which it always does here, so give
    the relative path from the repository root for the app to work unchanged. The Hub cache is
    pointed at an empty folder (``hf_cache``) and the Hub is off: ``GET /v1/models`` scans that
    cache and answers 500 when the folder does not exist.
    """
    reason = engine_available("transformers")
    if reason:
        raise EngineError(reason)
    workdir = Path(cwd) if cwd is not None else Path.cwd()
    if not (workdir / model_dir / "config.json").is_file():
        raise EngineError(f"no model folder {model_dir} (from {workdir})")
    port = port or free_port(host)
    log_path = _log_path(log_dir, "transformers-serve", port)
    cache = hf_cache or log_path.parent / "hf-cache-empty"
    cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "TOKENIZERS_PARALLELISM": "false"}
    serve = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(model_dir)]
    flags = ["--host", host, "--port", str(port), "--device", device, "--log-level", "info"]
    command = [*serve, *flags, *extra_args]
    engine = RunningEngine(
        engine="transformers",
        command=command,
        host=host,
        port=port,
        model=str(model_dir),
        ready_path="/health",
        log_path=log_path,
        env=env,
        cwd=workdir,
        startup_timeout_s=timeout_s,
    )
    return engine.start()


def start_llama_cpp_server(
    gguf_path: str | Path,
    port: int | None = None,
    n_ctx: int = 512,
    *,
    host: str = "127.0.0.1",
    model_alias: str | None = None,
    interrupt_requests: bool = False,
    n_threads: int | None = None,
    log_dir: Path | None = None,
    extra_args: Sequence[str] = (),
    timeout_s: float = STARTUP_TIMEOUT_S,
) -> RunningEngine:
    """``python -m llama_cpp.server --model GGUF --n_ctx N``, once ``/v1/models`` answers.

    The served name is ``model_alias``, else the ``--model`` path as given (absolute here).
    ``interrupt_requests`` is off by default: llama-cpp-python's own default (on) makes a second
    request cut a running stream short, which ends with ``data: [DONE]`` but no finish_reason.
    """
    reason = engine_available("llama.cpp")
    if reason:
        raise EngineError(reason)
    gguf = Path(gguf_path).resolve()
    if not gguf.is_file():
        raise EngineError(f"no GGUF file at {gguf}")
    port = port or free_port(host)
    args = ["--model", str(gguf), "--n_ctx", str(n_ctx), "--host", host, "--port", str(port)]
    args += ["--interrupt_requests", str(interrupt_requests)]
    if model_alias:
        args += ["--model_alias", model_alias]
    if n_threads:
        args += ["--n_threads", str(n_threads)]
    log_path = _log_path(log_dir, "llama-cpp-server", port)
    engine = RunningEngine(
        engine="llama.cpp",
        command=[sys.executable, "-m", "llama_cpp.server", *args, *extra_args],
        host=host,
        port=port,
        model=model_alias or str(gguf),
        ready_path="/v1/models",
        log_path=log_path,
        env=dict(os.environ),
        cwd=gguf.parent,
        startup_timeout_s=timeout_s,
    )
    return engine.start()

__all__ = [
    "Engine",
    "EngineError",
    "RunningEngine",
    "cache_dir",
    "engine_available",
    "start_llama_cpp_server",
    "start_transformers_serve",
]
