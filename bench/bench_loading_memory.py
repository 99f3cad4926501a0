"""Loading memory: peak RSS while loading a sharded StarCoder-architecture checkpoint ÷ its size.

Builds, in a temp dir, a GPTBigCode checkpoint with multi-query attention and random weights
(default n_layer=8, n_embd=1024, n_head=16, vocab 49152: ~550 MB in float32), saved as
~100 MB safetensors shards plus an index and nano-starcoder's tokenizer files. Then, for each
of --runs fresh subprocesses: import everything loading needs, read the RSS (the baseline),
and call playground.loading.load_model(folder, registry, Settings(dtype="float32")) while a
thread samples RSS every 5 ms; ru_maxrss closes the gaps between samples. The weights are
memory-mapped, so the load alone leaves most of them unread: the child then reads every
weight once (as the first generation would) and the peak covers both phases.
Reported: checkpoint size, baseline, peak, peak - baseline (delta), delta ÷ size, and the
verdict against issue 2's target: delta <= 1.0 × size + 250 MB (checkpoint in the target dtype).

    .venv/bin/python bench/bench_loading_memory.py [--layers 8] [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NANO = ROOT / "models" / "nano-starcoder"
MB = 1e6
SLACK_MB = 250.0

CHILD = r"""
import json, os, resource, sys, threading, time
sys.path.insert(0, sys.argv[2])
os.chdir(sys.argv[2])
import psutil, torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from transformers.models.gpt_bigcode import modeling_gpt_bigcode  # noqa: F401 - imported before the baseline
import accelerate, safetensors.torch  # noqa: F401
from playground.config import Settings
from playground.loading import load_model
from playground.registry import load_registry

registry = load_registry()
proc = psutil.Process()
peak = [0]
done = threading.Event()

def sample():
    while not done.is_set():
        peak[0] = max(peak[0], proc.memory_info().rss)
        time.sleep(0.005)

maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
baseline = proc.memory_info().rss
sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
start = time.perf_counter()
loaded = load_model(sys.argv[1], registry, Settings(dtype="float32"))
seconds = time.perf_counter() - start
after = proc.memory_info().rss
load_peak = max(peak[0], after)
# safetensors are memory-mapped: untouched weights are not resident yet. Read every weight once
# (what the first generation does) so the figure is the memory of a model ready to serve.
with torch.inference_mode():
    for p in loaded.model.parameters():
        p.float().sum()
done.set()
sampler.join()
touched = proc.memory_info().rss
maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
# ru_maxrss is the lifetime peak: if it rose after the baseline, it is the exact peak.
peak_bytes = max(peak[0], maxrss_after if maxrss_after > maxrss_before else 0, touched)
status = dict(l.split(":", 1) for l in open("/proc/self/status") if l.startswith(("RssAnon", "RssFile")))
rss_kinds = {k: int(v.split()[0]) * 1024 for k, v in status.items()}
params = sum(p.numel() for p in loaded.model.parameters())
dtype = str(next(loaded.model.parameters()).dtype)
print(json.dumps({"baseline": baseline, "peak": peak_bytes, "sampled_peak": peak[0], "ru_maxrss": maxrss_after,
                  "after": after, "load_peak": load_peak, "touched": touched,
                  "rss_anon": rss_kinds.get("RssAnon"), "rss_file": rss_kinds.get("RssFile"), "seconds": seconds, "params": params, "dtype": dtype}))
"""


def build_checkpoint(folder: Path, layers: int, embd: int, heads: int, vocab: int, shard: str) -> int:
    """Save a random-weight GPTBigCode model as float32 safetensors shards; returns the bytes on disk."""
    import torch
    from transformers import GPTBigCodeConfig, GPTBigCodeForCausalLM

    torch.manual_seed(0)
    config = GPTBigCodeConfig(n_layer=layers, n_embd=embd, n_head=heads, multi_query=True, vocab_size=vocab,
                              n_positions=2048, bos_token_id=0, eos_token_id=0)
    model = GPTBigCodeForCausalLM(config).to(torch.float32)
    model.save_pretrained(folder, max_shard_size=shard)
    del model
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(NANO / name, folder / name)
    return sum(f.stat().st_size for f in folder.glob("*.safetensors"))


def measure(folder: Path) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PLAYGROUND_LOG_LEVEL="WARNING")
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(ROOT)], capture_output=True, text=True,
                         env=env, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"the loader subprocess failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--embd", type=int, default=1024)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--vocab", type=int, default=49152)
    parser.add_argument("--shard", default="100MB", help="max_shard_size for save_pretrained")
    parser.add_argument("--runs", type=int, default=3, help="fresh loader subprocesses")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-loading-memory-"))
    try:
        folder = tmp / "starcoder-shaped"
        size = build_checkpoint(folder, args.layers, args.embd, args.heads, args.vocab, args.shard)
        shards = sorted(folder.glob("*.safetensors"))
        print(f"checkpoint: {size / MB:.1f} MB float32 in {len(shards)} shards "
              f"(n_layer={args.layers}, n_embd={args.embd}, n_head={args.heads}, MQA, vocab {args.vocab})")
        runs = []
        for i in range(args.runs):
            r = measure(folder)
            r["delta"] = r["peak"] - r["baseline"]
            runs.append(r)
            print(f"run {i + 1}: baseline {r['baseline'] / MB:.1f} MB, load_model peak {r['load_peak'] / MB:.1f} MB, "
                  f"after reading every weight {r['touched'] / MB:.1f} MB (anon {r['rss_anon'] / MB:.0f}, "
                  f"file {r['rss_file'] / MB:.0f}), overall peak {r['peak'] / MB:.1f} MB; "
                  f"delta {r['delta'] / MB:.1f} MB = {r['delta'] / size:.3f} × size; load {r['seconds']:.1f} s",
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    worst = max(runs, key=lambda r: r["delta"])
    median_delta = statistics.median(r["delta"] for r in runs)
    limit = size + SLACK_MB * MB
    ok = worst["delta"] <= limit
    print(f"\n{'checkpoint size':<26} {size / MB:9.1f} MB  ({runs[0]['params'] / 1e6:.1f}M params, {runs[0]['dtype']})")
    print(f"{'baseline RSS (imports)':<26} {statistics.median(r['baseline'] for r in runs) / MB:9.1f} MB  (median)")
    print(f"{'load_model peak (worst)':<26} {max(r['load_peak'] for r in runs) / MB:9.1f} MB  (weights mmapped, mostly unread)")
    print(f"{'peak RSS (worst run)':<26} {worst['peak'] / MB:9.1f} MB  (load + every weight read)")
    print(f"{'delta (worst / median)':<26} {worst['delta'] / MB:9.1f} MB  / {median_delta / MB:.1f} MB")
    print(f"{'delta ÷ size':<26} {worst['delta'] / size:9.3f}     (median {median_delta / size:.3f})")
    print(f"{'target':<26} {limit / MB:9.1f} MB  (1.0 × size + {SLACK_MB:.0f} MB): {'PASS' if ok else 'FAIL'}")
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "loading_memory", "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
            "config": {k: getattr(args, k) for k in ("layers", "embd", "heads", "vocab", "shard")},
            "checkpoint_bytes": size, "shards": len(shards), "limit_bytes": limit,
            "worst_delta_bytes": worst["delta"], "median_delta_bytes": median_delta,
            "ratio_delta_over_size": worst["delta"] / size, "pass": ok, "runs": runs,
        }, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
