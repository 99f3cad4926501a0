"""Streaming efficiency and time-to-first-token overhead on the shipped nano-starcoder, in one run.

These paths generate the same greedy continuation of the same prompt, interleaved round by round
(snippet, threaded, backend, REST, Gradio, [peers,] snippet, ...):
  snippet  the model card's snippet: plain model.generate(min_new_tokens = max_new_tokens = N) on the
           main thread of its own process, which does nothing else (it waits on stdin between runs).
           This is the baseline: what a user gets from the card.
  threaded the same call in this process on a fresh thread, as the in-process engine runs it
           (kept beside the baseline, labelled, so the gap of running off the main thread stays visible)
  backend  LocalBackend.stream through playground.stream.run_stream (same process, same model)
  rest     POST /api/generate {"stream": true} (SSE) on the real app (its engine process runs the
           model on its main thread)
  gradio   the app's /complete endpoint through gradio_client
  gradio-queue  the same endpoint read straight off Gradio's queue protocol (join, then its event
           stream), as the browser's own client does: gradio_client polls its message queue every
           50 ms, which adds up to that to the first output and to the last
  with --compile, the app (`--compile on`) and the backend path run their decode step compiled
  (playground.backends.local_compile); the warm-up round compiles the shapes the rounds use
  with --peers, on the same weights: transformers serve and llama.cpp's server (the f32 GGUF the
  real-engine tests convert), POST /v1/completions streamed, greedy, N tokens
tokens/s = each path's own token count (raw: output length; others: usage.completion_tokens,
or the stats line for Gradio) ÷ wall time measured by the caller, from request start to the last
byte / last output. The app paths cannot force N tokens, so a prompt is chosen on which greedy
decoding does not emit end-of-text within N tokens; the counts are printed so lengths can be checked.
Targets: REST >= 0.95 x snippet, Gradio >= 0.92 x snippet through either client, judged on the median of
each round's ratio to the same round's snippet (the ratio of the medians is printed beside it); and the client's
time to the first SSE delta minus the backend's own ttft <= 15 ms.

The app (--server process, the default) is `python app.py` in its own interpreter, loading the same
weights with the same thread count, and paused (SIGSTOP) while raw and backend run: Gradio's
queue polls every 1 ms when idle, taking CPU and the GIL from whatever shares the machine.
--server thread serves the app in this process instead (tests.conftest.serve, sharing the model).

    .venv/bin/python bench/bench_streaming.py [--tokens 200] [--rounds 5] [--threads 2] [--peers] [--server process|thread] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere without installing
os.chdir(ROOT)  # the registry's nano-starcoder source is relative to the repo
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
logging.getLogger("httpx").setLevel(logging.WARNING)

import httpx  # noqa: E402
import torch  # noqa: E402
from gradio_client import Client  # noqa: E402

from bench.app_clients import AppProcess, complete_endpoint, time_gradio, time_gradio_queue, time_rest  # noqa: E402
from playground.backends.local import LocalBackend  # noqa: E402
from playground.config import Settings  # noqa: E402
from playground.loading import load_model  # noqa: E402
from playground.params import GenerationParams  # noqa: E402
from playground.prompt import Prompt  # noqa: E402
from playground.registry import load_registry  # noqa: E402
from playground.service import Playground
from playground.slots import ModelSlot  # noqa: E402
from playground.stream import Outcome, run_stream  # noqa: E402
from playground.tech_assistant import load_tech_assistant  # noqa: E402
from support.servers import serve  # noqa: E402

CANDIDATE_PROMPTS = [
    "import os\nimport sys\n\n\ndef main():\n",
    "class Node:\n    def __init__(self, value):\n",
    "def fibonacci(n):\n",
]
PATHS = ("snippet", "threaded", "backend", "rest", "gradio", "gradio-queue")
PEERS = ("transformers-serve", "llama.cpp")
# The model card's snippet, in a process of its own: load, then one generate per line read, on the main thread.
SNIPPET = """
import json, sys, time, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
torch.set_num_threads(int(sys.argv[2]))
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
print("ready", flush=True)
for line in sys.stdin:
    ask = json.loads(line)
    inputs = tokenizer.encode(ask["prompt"], return_tensors="pt")
    start = time.perf_counter()
    outputs = model.generate(inputs, max_new_tokens=ask["n"], min_new_tokens=ask["n"], do_sample=False,
                             repetition_penalty=1.0, pad_token_id=tokenizer.eos_token_id)
    seconds = time.perf_counter() - start
    print(json.dumps({"tokens": outputs.shape[1] - inputs.shape[1], "seconds": seconds}), flush=True)
"""


class Snippet:
    """The model card's snippet in its own process, run on request."""

    def __init__(self, model_dir: Path, threads: int):
        self.proc = subprocess.Popen([sys.executable, "-c", SNIPPET, str(model_dir), str(threads)], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def run(self, text: str, n: int) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"prompt": text, "n": n}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def time_peer(http: httpx.Client, api_base: str, body: dict) -> dict:
    """One streamed /v1/completions; tokens are the chunks that carry text (one token each there)."""
    tokens, first = 0, None
    start = time.perf_counter()
    with http.stream("POST", api_base + "/completions", json={**body, "stream": True}, timeout=600) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or []
            if choices and choices[0].get("text"):
                tokens += 1
                first = first or time.perf_counter()
    return {"tokens": tokens, "seconds": time.perf_counter() - start,
            "client_ttft_ms": None if first is None else (first - start) * 1000}


def start_peers(model_dir: Path, text: str, n: int, http: httpx.Client) -> tuple[list, dict]:
    """transformers serve and llama.cpp's server on nano-starcoder's weights, with their timed runners."""
    from support.engines import start_llama_cpp_server, start_transformers_serve
    from support.gguf import convert_to_gguf

    serve_ = start_transformers_serve(model_dir)
    llama = start_llama_cpp_server(convert_to_gguf(model_dir), n_ctx=512)
    common = {"prompt": text, "max_tokens": n, "temperature": 0}
    runners = {  # llama.cpp: its own penalty name, neutral, as the app sends it; serve refuses unknown fields
        "transformers-serve": lambda: time_peer(http, serve_.api_base, {**common, "model": str(model_dir)}),
        "llama.cpp": lambda: time_peer(http, llama.api_base, {**common, "repeat_penalty": 1.0, "top_k": 0}),
    }
    return [serve_, llama], runners


def pick_prompt(model, backend, n: int) -> tuple[str, list[int]]:
    """The first candidate on which plain greedy generate runs n tokens without end-of-text."""
    for text in CANDIDATE_PROMPTS:
        ids = backend.encode(Prompt.of(text))
        out = raw_generate(model, backend, ids, n, force=False)
        if out == n:
            return text, ids
    raise SystemExit(f"no candidate prompt runs {n} greedy tokens without end-of-text; lower --tokens")


def raw_generate(model, backend, ids: list[int], n: int, force: bool = True) -> int:
    tensor = torch.tensor([ids])
    with torch.inference_mode():
        out = model.generate(
            input_ids=tensor, attention_mask=torch.ones_like(tensor), max_new_tokens=n,
            min_new_tokens=n if force else 0, eos_token_id=backend.eos_ids, pad_token_id=backend.eos_ids[0],
            do_sample=False, temperature=None, top_p=None, top_k=None, repetition_penalty=1.0,
        )
    return out.shape[1] - len(ids)


def time_threaded(model, backend, ids, n):
    """The plain call on a fresh thread of this process (not the baseline: see the module docstring)."""
    result: list[dict] = []

    def run() -> None:
        start = time.perf_counter()
        tokens = raw_generate(model, backend, ids, n)
        result.append({"tokens": tokens, "seconds": time.perf_counter() - start})

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    return result[0]


def time_backend(backend, text, n):
    # heal=False: the snippet has no token healing, and every path must do the same work; stop_loops=False:
    # the snippet writes its n tokens whatever they are
    params = GenerationParams(temperature=0.0, max_new_tokens=n, repetition_penalty=1.0, seed=0, heal=False,
                              stop_loops=False)
    outcome = Outcome()
    start = time.perf_counter()
    for _ in run_stream(backend, Prompt.of(text), params, threading.Event(), outcome, time_limit_s=600):
        pass
    return {"tokens": outcome.completion_tokens, "seconds": time.perf_counter() - start,
            "ttft_ms": outcome.ttft_ms, "finish": outcome.finish_reason}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=200, help="N new tokens per generation (prompt + N < 512)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the four paths")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the snippet and the in-process paths")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    parser.add_argument("--server", choices=("process", "thread"), default="process",
                        help="the app in its own `python app.py` process (default) or in this one")
    parser.add_argument("--no-pause", action="store_true", help="leave the app process running during in-process paths")
    parser.add_argument("--peers", action="store_true", help="also time transformers serve and llama.cpp's server")
    parser.add_argument("--compile", action="store_true",
                        help="the app and the in-process backend with their decode step compiled (--compile on)")
    parser.add_argument("--app-threads", type=int, default=None,
                        help="the app's --cpu-threads (default: the app's own, every core but one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model("nano-starcoder", load_registry(), Settings(cpu_threads=args.threads))
    model, backend = loaded.model, LocalBackend(loaded, compile_steps=args.compile)
    text, ids = pick_prompt(model, backend, args.tokens)
    load_before = os.getloadavg()
    print(f"prompt {text!r}: {len(ids)} tokens, N = {args.tokens}, torch threads {torch.get_num_threads()}")

    pause = resume = lambda: None  # noqa: E731
    if args.server == "thread":
        settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-")), generation_timeout_s=600)
        slot = ModelSlot(loaded.spec, backend)
        slot.progress.step("ready", "loaded by the benchmark")
        server = serve(Playground(settings, {loaded.spec.id: slot}, load_tech_assistant()))
    else:
        server = AppProcess(args.app_threads, ("--compile", "on") if args.compile else ())
        if not args.no_pause:
            pause, resume = server.pause, server.resume
    client, http = Client(server.url + "/", verbose=False), httpx.Client()
    endpoint = complete_endpoint(http, server.url)
    print(f"app: {'python app.py, paused during raw/backend' if args.server == 'process' and not args.no_pause else args.server}")
    n = args.tokens
    snippet = Snippet(ROOT / "models" / "nano-starcoder", args.threads)
    runners = {  # an in-process path pauses the app process first, an app path resumes it
        "snippet": lambda: (pause(), snippet.run(text, n))[1],
        "threaded": lambda: (pause(), time_threaded(model, backend, ids, n))[1],
        "backend": lambda: (pause(), time_backend(backend, text, n))[1],
        "rest": lambda: (resume(), time_rest(http, server.url, text, n))[1],
        "gradio": lambda: (resume(), time_gradio(client, text, n))[1],
        "gradio-queue": lambda: (resume(), time_gradio_queue(http, server.url, endpoint, text, n))[1],
    }
    paths, engines = PATHS, []
    if args.peers:
        engines, peer_runners = start_peers(ROOT / "models" / "nano-starcoder", text, n, http)
        runners.update({name: (lambda run=run: (pause(), run())[1]) for name, run in peer_runners.items()})
        paths = PATHS + PEERS
    for name in paths:  # warm-up, discarded
        runners[name]()
    runs: dict[str, list[dict]] = {name: [] for name in paths}
    for r in range(args.rounds):
        for name in paths:
            result = runners[name]()
            result["tokens_per_s"] = result["tokens"] / result["seconds"]
            runs[name].append(result)
        print(f"round {r + 1}: " + "  ".join(f"{p} {runs[p][-1]['tokens_per_s']:.1f} tok/s ({runs[p][-1]['tokens']})"
                                             for p in paths), flush=True)
    client.close()
    http.close()
    server.stop()
    snippet.stop()
    for engine in engines:
        engine.stop()

    tps = {p: median(x["tokens_per_s"] for x in runs[p]) for p in paths}
    baseline = tps["snippet"]
    ratios = {p: tps[p] / baseline for p in paths}
    # Each round's ratio to the snippet's run of the same round: the machine's drift between rounds
    # (the snippet alone swung 163-343 tok/s in one run) moves both sides of a pair alike.
    paired = {p: sorted(x["tokens_per_s"] / s["tokens_per_s"] for x, s in zip(runs[p], runs["snippet"], strict=True))
              for p in paths}
    backend_ttft = median(x["ttft_ms"] for x in runs["backend"])
    rest_ttft = median(x["client_ttft_ms"] for x in runs["rest"])
    gradio_ttft = median(x["client_ttft_ms"] for x in runs["gradio"])
    queue_ttft = median(x["client_ttft_ms"] for x in runs["gradio-queue"])
    rest_server_ttft = median(x["server_ttft_ms"] for x in runs["rest"])
    rest_server_tps = median(x["tokens"] / x["server_total_ms"] * 1000 for x in runs["rest"])
    targets = {"rest": 0.95, "gradio": 0.92, "gradio-queue": 0.92}
    peer_ttft = {p: median(x["client_ttft_ms"] for x in runs[p]) for p in paths if p in PEERS}
    print(f"\n{'path':<19} {'tok/s':>8} {'tokens':>7} {'÷ snippet':>9} {'paired (range)':>22}  target (paired)")
    for p in paths:
        counts = "/".join(map(str, sorted({x["tokens"] for x in runs[p]})))
        pair = f"{median(paired[p]):.3f} ({paired[p][0]:.2f}-{paired[p][-1]:.2f})"
        verdict = (f">={targets[p]} " + ("ok" if median(paired[p]) >= targets[p] else "MISS")) if p in targets else ""
        print(f"{p:<19} {tps[p]:>8.1f} {counts:>7} {ratios[p]:>9.3f} {pair:>22}  {verdict}")
    overhead = rest_ttft - backend_ttft
    print(f"REST, the app's own record: {rest_server_tps:.1f} tok/s ({rest_server_tps / baseline:.3f} of the snippet)")
    print(f"\nTTFT (medians): backend's own {backend_ttft:.1f} ms, REST client {rest_ttft:.1f} ms "
          f"(the server's record says {rest_server_ttft:.1f} ms), Gradio client {gradio_ttft:.1f} ms, "
          f"Gradio's queue read directly {queue_ttft:.1f} ms"
          + "".join(f", {p} {t:.1f} ms" for p, t in peer_ttft.items()))
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min; this run alone adds ~1-1.5)")
    print(f"TTFT overhead REST - backend: {overhead:.1f} ms (target <= 15 ms: {'ok' if overhead <= 15 else 'MISS'}); "
          f"Gradio - backend: {gradio_ttft - backend_ttft:.1f} ms (its queue read directly: {queue_ttft - backend_ttft:.1f} ms)")

    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "streaming", "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch threads {args.threads}, "
                       f"torch {torch.__version__}",
            "server": args.server, "app_paused_during_in_process_paths": args.server == "process" and not args.no_pause,
            "loadavg_before_after": [load_before, load_after], "prompt": text, "prompt_tokens": len(ids), "tokens": args.tokens, "rounds": args.rounds,
            "median_tokens_per_s": tps, "ratio_vs_raw": ratios, "targets": targets,
            "paired_ratios": paired, "paired_median": {p: median(paired[p]) for p in paths},
            "rest_server_record_tokens_per_s": rest_server_tps,
            "ttft_ms": {"backend": backend_ttft, "rest_client": rest_ttft, "rest_server_record": rest_server_ttft,
                        "gradio_client": gradio_ttft, "gradio_queue": queue_ttft, "rest_overhead": overhead, "gradio_overhead": gradio_ttft - backend_ttft},
            "peer_ttft_ms": peer_ttft,
            "pass": {**{p: median(paired[p]) >= targets[p] for p in targets}, "ttft_overhead": overhead <= 15},
            "runs": runs,
        }, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
