"""GPU check: StarCoder-shaped models on the card this runs on, in one command under 5 minutes.

Needs only torch, transformers and accelerate (what a bare GPU machine has); no Gradio, no weights
download. It builds random-weight GPTBigCode models (multi-query attention) with the shapes of
starcoderbase-1b and -7b, in bf16, and measures:

1. the memory bandwidth the card reaches (a large device-to-device copy), and from it the batch-1
   decode limit: tokens/s <= bandwidth / bytes of weights;
2. batch-1 greedy decode with plain ``generate`` (dynamic cache), against that limit;
3. the same with a static cache, and with ``torch.compile`` of the decode step on top;
4. a ``device_map`` split between the GPU and the CPU, forced by ``max_memory`` (accelerate), as a
   model too big for one card would load;
5. the project's local backend streaming (``LocalBackend.generate_into``, as the engine process
   runs it) against plain ``generate`` on the same model.

    python bench/gpu_check.py [--json gpu.json]        # on a CUDA machine
    python bench/gpu_check.py --dry-run                # tiny shapes on the CPU: the test suite runs this

Shapes are those of the published config.json files (starcoderbase-1b: 24 layers, 2048 wide, 16 heads;
-7b: 42 layers, 4096 wide, 32 heads; both 49,152 tokens, multi-query); the context length is the
registry's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere without installing

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, GPTBigCodeConfig, PreTrainedTokenizerFast  # noqa: E402

SHAPES = {  # name -> (layers, width, heads)
    "starcoderbase-1b": (24, 2048, 16),
    "starcoderbase-7b": (42, 4096, 32),
}
TINY = {"tiny": (2, 64, 4)}
VOCAB = 49152


def context_length(name: str) -> int:
    from playground.registry import load_registry

    spec = load_registry().get(name)
    return spec.context_length if spec else 8192


def make_model(layers: int, width: int, heads: int, positions: int, dtype: torch.dtype, device: str) -> Any:
    config = GPTBigCodeConfig(vocab_size=VOCAB, n_positions=positions, n_embd=width, n_layer=layers, n_head=heads,
                              n_inner=4 * width, multi_query=True, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def weight_bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def bandwidth(device: str, size_mb: int) -> float:
    """Bytes/s of a device-to-device copy (read + write), the best of a few."""
    source = torch.empty(size_mb * 2**20, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    best = 0.0
    for _ in range(5):
        sync(device)
        start = time.perf_counter()
        target.copy_(source)
        sync(device)
        best = max(best, 2 * source.numel() / (time.perf_counter() - start))
    return best


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def decode_rate(model: Any, device: str, tokens: int, **kwargs: Any) -> float:
    """Greedy batch-1 decode tokens/s after the first token (prefill excluded), best of two."""
    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]], device=device)
    common = {"do_sample": False, "pad_token_id": 0, "eos_token_id": None, **kwargs}
    best = 0.0
    for _ in range(2):
        with torch.inference_mode():
            sync(device)
            start = time.perf_counter()
            model.generate(ids, max_new_tokens=1, min_new_tokens=1, **common)
            sync(device)
            first = time.perf_counter() - start
            start = time.perf_counter()
            model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, **common)
            sync(device)
            total = time.perf_counter() - start
        best = max(best, (tokens - 1) / max(total - first, 1e-9))
    return best


def compiled_rate(model: Any, device: str, tokens: int) -> float | None:
    """The static cache with the decode step compiled; None where compiling fails (said in the output)."""
    try:
        model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=False)
        return decode_rate(model, device, tokens, cache_implementation="static")
    except Exception as exc:  # noqa: BLE001 - a check, not the app: report and go on
        print(f"  torch.compile failed: {type(exc).__name__}: {str(exc)[:200]}", flush=True)
        return None


def split_rate(model: Any, device: str, tokens: int, gpu_share: float) -> dict[str, Any]:
    """Save the model, load it back with max_memory that leaves part of it on the CPU, and decode."""
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        size = weight_bytes(model)
        if device.startswith("cuda"):
            budget = {0: f"{max(1, int(size * gpu_share / 2**20))}MiB", "cpu": "256GiB"}
        else:
            budget = {"cpu": "256GiB"}
        loaded = AutoModelForCausalLM.from_pretrained(folder, dtype=model.dtype, device_map="auto",
                                                      max_memory=budget).eval()
        placement: dict[str, int] = {}
        for where in (getattr(loaded, "hf_device_map", None) or {"": device}).values():
            placement[str(where)] = placement.get(str(where), 0) + 1
        rate = decode_rate(loaded, device, tokens)
        del loaded
    return {"max_memory": {str(k): v for k, v in budget.items()}, "modules_per_device": placement,
            "decode_tokens_per_s": rate}


def backend_vs_raw(model: Any, device: str, tokens: int, positions: int) -> dict[str, float]:
    """The project's local backend, run as the engine process runs it, against plain generate."""
    from playground.backends.local import LocalBackend
    from playground.loading import LoadedModel, PlacementPlan
    from playground.params import GenerationParams
    from playground.prompt import Prompt
    from playground.registry import ModelSpec

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=_tiny_tokenizer(), eos_token="<|endoftext|>")
    spec = ModelSpec("gpu-check", "random weights", positions)
    plan = PlacementPlan({"": device}, {device: []}, {device: weight_bytes(model)}, str(model.dtype))
    backend = LocalBackend(LoadedModel(spec, model, tokenizer, plan, model.dtype, "none", None))
    params = GenerationParams(max_new_tokens=tokens, temperature=0, repetition_penalty=1.0, seed=0)
    prompt = Prompt.of("a b c d e f g h")
    events: list[Any] = []
    backend.generate_into(prompt, params, threading.Event(), events.append)  # warm-up
    start = time.perf_counter()
    events.clear()
    backend.generate_into(prompt, params, threading.Event(), events.append)
    sync(device)
    made = events[-1].completion_tokens or 0
    return {"backend_tokens_per_s": made / (time.perf_counter() - start),
            "raw_tokens_per_s": decode_rate(model, device, tokens), "backend_tokens": made}


def _tiny_tokenizer() -> Any:
    """A word-level tokenizer over the model's vocabulary size: the backend needs one to encode and decode."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<|endoftext|>", *"abcdefgh"]
    vocab = {word: i for i, word in enumerate(words)}
    vocab.update({f"w{i}": i for i in range(len(words), VOCAB)})
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def check(name: str, shape: tuple[int, int, int], device: str, dtype: torch.dtype, tokens: int,
          bytes_per_s: float) -> dict[str, Any]:
    layers, width, heads = shape
    positions = 512 if name == "tiny" else min(context_length(name), 2048)
    model = make_model(layers, width, heads, positions, dtype, device)
    size = weight_bytes(model)
    limit = bytes_per_s / size
    print(f"{name}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters, {size / 2**30:.2f} GiB; "
          f"bandwidth limit {limit:.0f} tok/s", flush=True)
    result: dict[str, Any] = {"weight_bytes": size, "bandwidth_limit_tokens_per_s": limit}
    result["dynamic_cache"] = decode_rate(model, device, tokens)
    result["static_cache"] = decode_rate(model, device, tokens, cache_implementation="static")
    result["backend_vs_raw"] = backend_vs_raw(model, device, tokens, positions)
    result["split"] = split_rate(model, device, tokens, gpu_share=0.5)
    result["static_cache_compiled"] = None if device == "cpu" else compiled_rate(model, device, tokens)
    for key in ("dynamic_cache", "static_cache", "static_cache_compiled"):
        rate = result[key]
        if rate is not None:
            print(f"  {key}: {rate:.1f} tok/s = {rate / limit:.2f} of the bandwidth limit", flush=True)
    both = result["backend_vs_raw"]
    print(f"  local backend {both['backend_tokens_per_s']:.1f} tok/s vs raw {both['raw_tokens_per_s']:.1f} "
          f"({both['backend_tokens_per_s'] / both['raw_tokens_per_s']:.2f})", flush=True)
    print(f"  split {result['split']['modules_per_device']}: {result['split']['decode_tokens_per_s']:.1f} tok/s",
          flush=True)
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU, float32 (for the tests)")
    parser.add_argument("--tokens", type=int, default=128, help="new tokens per decode measurement")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run for the CPU check of this script", file=sys.stderr)
        return 2
    device = "cpu" if args.dry_run else "cuda"
    dtype = torch.float32 if args.dry_run else torch.bfloat16
    tokens = 8 if args.dry_run else args.tokens
    card = "cpu" if args.dry_run else torch.cuda.get_device_name(0)
    bytes_per_s = bandwidth(device, 64 if args.dry_run else 2048)
    print(f"{card}: copy bandwidth {bytes_per_s / 1e9:.0f} GB/s, torch {torch.__version__}", flush=True)
    shapes = TINY if args.dry_run else SHAPES
    results = {name: check(name, shape, device, dtype, tokens, bytes_per_s) for name, shape in shapes.items()}
    report = {"check": "gpu", "date": datetime.now(UTC).isoformat(timespec="seconds"), "card": card,
              "machine": f"{platform.machine()} {os.cpu_count()} CPUs", "torch": torch.__version__,
              "dtype": str(dtype), "tokens": tokens, "copy_bandwidth_bytes_per_s": bytes_per_s, "models": results}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
