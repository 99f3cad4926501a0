"""Real inference engines serving a local model, started as subprocesses for tests and benchmarks.

Two OpenAI-compatible engines run nano-starcoder on CPU here (measured facts in ``docs/engines.md``):

* ``start_transformers_serve(model_dir, port)``: ``python -m transformers.cli.transformers serve
  MODEL_DIR`` (the ``transformers serve`` CLI of transformers 5). It has ``/v1/completions`` and
  preloads the one model it is pinned to; requests must name that model exactly as it was given
  on the command line (or leave ``model`` out). It refuses fields outside the OpenAI schema with
  422 ``{"detail": "Unexpected fields in the request: {...}"}`` (``top_k``, ``repetition_penalty``).
* ``start_llama_cpp_server(gguf_path, port, n_ctx)``: ``python -m llama_cpp.server`` from
  ``llama-cpp-python[server]``, serving a GGUF made by ``convert_to_gguf(model_dir)`` with
  llama.cpp's own ``convert_hf_to_gguf.py`` (fetched once from the matching llama-cpp-python sdist).

Each ``start_*`` returns a ``RunningEngine`` once the engine answers (bounded by a timeout), with
``stop()``, ``kill()`` (SIGKILL, for "the engine crashed") and ``restart()`` (same port), its
output appended to a log file. ``engine_available(engine)`` gives a skip reason, or None::

    reason = engine_available("llama.cpp")
    if reason:
        pytest.skip(reason)
    with start_llama_cpp_server(convert_to_gguf(NANO), n_ctx=512) as engine:
        httpx.post(f"{engine.api_base}/completions", json={"prompt": "def f(", "max_tokens": 8})
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
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
_CONVERTER_ENV = "LLAMA_CPP_CONVERTER"  # an existing convert_hf_to_gguf.py, used instead of fetching one
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
# What the llama-cpp-python sdist holds of llama.cpp's converter: the script, its package, and the
# gguf-py it was written against (PyPI's gguf 0.19.0 lacks LazyChunkedTensor, which it needs).
_CONVERTER_SCRIPT = "convert_hf_to_gguf.py"
_CONVERTER_PACKAGES = ("conversion/", "gguf-py/")
# The tokenizers library's description of StarCoder's pre-tokenizer: digits split one by one, then
# GPT-2's byte-level regex. llama.cpp calls it "starcoder" (LLAMA_VOCAB_PRE_TYPE_STARCODER).
_STARCODER_PRE_TOKENIZER = {
    "type": "Sequence",
    "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    ],
}
# Runs convert_hf_to_gguf.py with one change. Its get_vocab_base_pre() identifies the pre-tokenizer
# by hashing the token ids of a fixed text against a table of known models' hashes, and refuses any
# tokenizer it has not seen ("BPE pre-tokenizer was not recognized"). nano-starcoder trained its own
# 4096-token vocabulary, so its hash is in no table, although its pre-tokenizer is StarCoder's
# exactly (checked by the caller against tokenizer.json). The table is an if-chain in the code, not
# data, so the method is wrapped instead: an unrecognised hash yields the pre-tokenizer named in argv.
_CONVERT_RUNNER = """
import runpy, sys
from pathlib import Path
converter, forced_pre = Path(sys.argv[1]), sys.argv[2]
sys.path[:0] = [str(converter.parent), str(converter.parent / "gguf-py")]
from conversion import base
original = base.TextModel.get_vocab_base_pre
def get_vocab_base_pre(self, tokenizer):
    try:
        return original(self, tokenizer)
    except NotImplementedError:
        if not forced_pre:
            raise
        print(f"pre-tokenizer hash unknown to the converter; using {forced_pre!r}", file=sys.stderr)
        return forced_pre
base.TextModel.get_vocab_base_pre = get_vocab_base_pre
sys.argv = [str(converter), *sys.argv[3:]]
runpy.run_path(str(converter), run_name="__main__")
"""


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


# -- GGUF conversion -------------------------------------------------------------------------


def installed_llama_cpp_python() -> str:
    """The installed llama-cpp-python version, else the one these helpers were written for."""
    try:
        return importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return LLAMA_CPP_PYTHON_VERSION


def find_converter(root: Path | None = None) -> Path | None:
    """``$LLAMA_CPP_CONVERTER``, else a converter fetched earlier into the cache, else None."""
    explicit = os.environ.get(_CONVERTER_ENV)
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    script = (root or cache_dir()) / f"llama.cpp-{installed_llama_cpp_python()}" / "convert_hf_to_gguf.py"
    return script if script.is_file() else None


def fetch_converter(root: Path | None = None, timeout_s: float = 600.0) -> Path:
    """Find the converter, or extract it from the llama-cpp-python sdist of the installed version.

    The wheel has no converter; the sdist vendors llama.cpp with ``convert_hf_to_gguf.py``, its
    ``conversion`` package and its ``gguf-py``. ``pip download`` needs PyPI (or pip's cache) once.
    """
    found = find_converter(root)
    if found is not None:
        return found
    version = installed_llama_cpp_python()
    target = (root or cache_dir()) / f"llama.cpp-{version}"
    with tempfile.TemporaryDirectory(prefix="llama-sdist-") as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
        command = [*pip, f"llama-cpp-python=={version}", "--dest", tmp]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        sdists = sorted(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if done.returncode != 0 or not sdists:
            raise EngineError(f"could not download the llama-cpp-python {version} sdist: {done.stderr[-2000:]}")
        _extract_converter(sdists[0], target)
    return target / "convert_hf_to_gguf.py"


def _extract_converter(sdist: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".converter-", dir=target.parent))
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            parts = member.name.split("/", 3)  # llama_cpp_python-X/vendor/llama.cpp/<rest>
            if len(parts) < 4 or parts[1:3] != ["vendor", "llama.cpp"] or not member.isfile():
                continue
            if parts[3] == _CONVERTER_SCRIPT or parts[3].startswith(_CONVERTER_PACKAGES):
                member.name = parts[3]
                archive.extract(member, staging, filter="data")
    if not (staging / _CONVERTER_SCRIPT).is_file():
        shutil.rmtree(staging, ignore_errors=True)
        raise EngineError(f"{sdist.name} holds no vendor/llama.cpp/convert_hf_to_gguf.py")
    staging.chmod(0o755)  # mkdtemp makes it private
    try:
        staging.rename(target)  # atomic: a concurrent fetch either wins or finds a complete folder
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


def starcoder_pre_tokenizer(model_dir: Path) -> bool:
    """Whether the model's tokenizer.json pre-tokenizes exactly as StarCoder's does."""
    try:
        tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(tokenizer.get("pre_tokenizer") == _STARCODER_PRE_TOKENIZER)


def _model_key(model_dir: Path, outtype: str, converter: Path) -> str:
    """A content hash of what the converter reads (weights, configs, tokenizer) and of the converter."""
    digest = hashlib.sha256(f"{outtype}\n".encode())
    digest.update(hashlib.sha256(converter.read_bytes()).digest())
    for path in sorted(model_dir.iterdir()):
        if path.is_file() and path.suffix in {".json", ".safetensors", ".bin", ".model", ".txt"}:
            digest.update(path.name.encode() + b"\0")
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def convert_to_gguf(
    model_dir: str | Path,
    out_path: str | Path | None = None,
    *,
    outtype: Literal["f32", "f16", "bf16", "q8_0"] = "f32",
    cache: Path | None = None,
    converter: Path | None = None,
    timeout_s: float = 600.0,
) -> Path:
    """A GGUF of ``model_dir`` made by llama.cpp's ``convert_hf_to_gguf.py``; returns its path.

    Cached in ``cache`` (default ``cache_dir()/gguf``) under a hash of the model's files, the
    outtype and the converter, so a second call costs one hash of the weights. With ``out_path``
    the cached file is copied there. f32 keeps greedy output token-for-token equal to transformers.
    """
    model = Path(model_dir).resolve()
    script = converter or fetch_converter()
    store = cache or cache_dir() / "gguf"
    store.mkdir(parents=True, exist_ok=True)
    cached = store / f"{model.name}-{_model_key(model, outtype, script)}-{outtype}.gguf"
    if not cached.is_file():
        _run_converter(script, model, cached, outtype, timeout_s)
    if out_path is None:
        return cached
    target = Path(out_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, target)
    return target


def _run_converter(script: Path, model: Path, out: Path, outtype: str, timeout_s: float) -> None:
    forced_pre = "starcoder" if starcoder_pre_tokenizer(model) else ""
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    log_path = out.with_suffix(".convert.log")
    runner = [sys.executable, "-c", _CONVERT_RUNNER, str(script), forced_pre, str(model)]
    command = [*runner, "--outfile", str(partial), "--outtype", outtype]
    with log_path.open("w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s, check=False)
    if done.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise EngineError(
            f"convert_hf_to_gguf.py failed ({done.returncode}); log: {log_path}\n"
            f"{log_path.read_text(errors='replace')[-3000:]}"
        )
    os.replace(partial, out)


__all__ = [
    "Engine",
    "EngineError",
    "RunningEngine",
    "cache_dir",
    "convert_to_gguf",
    "engine_available",
    "fetch_converter",
    "find_converter",
    "start_llama_cpp_server",
    "start_transformers_serve",
]
