"""GGUF files for llama.cpp's server, made by llama.cpp's own ``convert_hf_to_gguf.py``.

The llama-cpp-python wheel has no converter; its sdist vendors llama.cpp with the script, so the
script is fetched once from the sdist of the installed version (``fetch_converter``) and run on a
model folder (``convert_to_gguf``), with the result cached under a hash of what it read. Measured
facts and the exact command are in ``docs/engines.md``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Literal

from support.engines import LLAMA_CPP_PYTHON_VERSION, EngineError, cache_dir

_CONVERTER_ENV = "LLAMA_CPP_CONVERTER"  # an existing convert_hf_to_gguf.py, used instead of fetching one
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
