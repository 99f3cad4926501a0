"""What transformers offers against per-token overhead, on the shipped model: a static KV cache and
``torch.compile`` of the forward pass (with ``--cpp-wrapper``, inductor's C++ wrapper, which calls the
compiled kernels without Python), each against plain ``generate`` (the model card's call).

Beside them, the floor under any ``generate`` option: the model's forward pass alone, called in a
greedy loop with its KV cache and nothing else, and how many torch operators one such step runs. What
``generate`` costs above that loop is its own per-step work (logits processors, stopping criteria,
cache bookkeeping); the rest is the eager forward pass itself. And the engine's own decode loop
(``playground.backends.local_decode``, what the app runs), which writes generate's tokens without its
per-step bookkeeping.

Greedy, a fixed number of new tokens, the same prompt, rounds interleaved so that the machine's drift
hits every variant alike. With compilation, the compiled forward pass also runs alone in the same
greedy loop on a static cache the size of the run (the floor of a compiled engine), and the engine's
loop runs as ``--compile on`` runs it (its cache rounded up to a power of two, its per-step work eager). Compilation happens once, before the rounds, and its time is printed apart.

    python bench/bench_decode_options.py --tokens 128 --rounds 4 [--cpp-wrapper] [--no-compile]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere without installing
MODEL = ROOT / "models" / "nano-starcoder"
PROMPT = "def fibonacci(n):\n    "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the app's default on 2 cores)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (it takes a minute)")
    parser.add_argument("--cpp-wrapper", action="store_true",
                        help="compile with inductor's C++ wrapper, which calls the compiled kernels without Python")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids

    def speed(**options: Any) -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(ids, max_new_tokens=args.tokens, min_new_tokens=args.tokens, do_sample=False,
                                 **options)
        return float(out.shape[1] - ids.shape[1]) / (time.perf_counter() - started)

    def forward_loop() -> float:
        """Greedy decoding with the forward pass alone: no generate, no processors, no stopping checks."""
        started = time.perf_counter()
        with torch.inference_mode():
            out = model(ids, use_cache=True)
            for _ in range(args.tokens - 1):
                step = out.logits[:, -1:].argmax(-1)
                out = model(step, past_key_values=out.past_key_values, use_cache=True)
        return args.tokens / (time.perf_counter() - started)

    def engine_loop(steps: Any = None) -> float:
        """The app's decode loop, greedy, with no end token so that it writes all its tokens; with
        ``steps`` (``CompiledSteps``) its passes compiled, as ``--compile on`` runs them."""
        from playground.backends.local_decode import decode, processors
        from playground.params import GenerationParams

        scores = processors(GenerationParams(temperature=0.0, repetition_penalty=1.0), [])
        passes = steps.passes(ids.shape[1] + args.tokens) if steps is not None else None
        started = time.perf_counter()
        with torch.inference_mode():
            decode(model, ids, args.tokens, scores, greedy=True, end_ids=[], pad_id=0,
                   steps=SimpleNamespace(put=lambda tokens: None), cancel=threading.Event(), passes=passes)
        return args.tokens / (time.perf_counter() - started)

    def static_loop() -> float:
        """The forward-pass-alone loop on a static cache, for the compiled forward (its shapes never change)."""
        from transformers import StaticCache

        cache = StaticCache(config=model.config, max_cache_len=ids.shape[1] + args.tokens)
        started = time.perf_counter()
        with torch.inference_mode():
            position = torch.arange(ids.shape[1])
            logits = model(ids, past_key_values=cache, use_cache=True, cache_position=position).logits
            for index in range(args.tokens - 1):
                position = torch.tensor([ids.shape[1] + index])
                step = logits[:, -1:].argmax(-1)
                logits = model(step, past_key_values=cache, use_cache=True, cache_position=position).logits
        return args.tokens / (time.perf_counter() - started)

    eager = model.forward
    variants = {"plain generate (dynamic cache)": {}, "static cache": {"cache_implementation": "static"}}
    compiled = engine_steps = None
    if not args.no_compile:
        import torch._inductor.config

        from playground.backends.local_compile import CompiledSteps

        torch._inductor.config.cpp_wrapper = args.cpp_wrapper
        started = time.perf_counter()
        compiled = torch.compile(eager, dynamic=False)
        model.forward = compiled
        speed(cache_implementation="static")  # compiles
        static_loop()  # and again for the bare loop's cache length
        print(f"torch.compile + first run: {time.perf_counter() - started:.1f} s")
        model.forward = eager
        engine_steps = CompiledSteps(model, model.config.n_positions)  # the engine's own, C++ wrapper always
        engine_loop(engine_steps)  # compiles for its cache length (a power of two)
    loop, engine = "forward pass alone, greedy loop", "the engine's decode loop"
    compiled_loop, compiled_engine = "compiled forward alone, static", "the engine's loop, --compile on"
    figures: dict[str, list[float]] = {name: [] for name in [
        *variants, loop, engine, *(["compiled, static cache", compiled_loop, compiled_engine] * bool(compiled))]}
    for _ in range(args.rounds):
        for name, options in variants.items():
            figures[name].append(speed(**options))
        figures[loop].append(forward_loop())
        figures[engine].append(engine_loop())
        if compiled is not None:
            model.forward = compiled
            figures["compiled, static cache"].append(speed(cache_implementation="static"))
            figures[compiled_loop].append(static_loop())
            model.forward = eager
            figures[compiled_engine].append(engine_loop(engine_steps))
    print(f"one decoding step: {step_profile(model, ids)}")
    base = statistics.median(figures["plain generate (dynamic cache)"])
    for name, values in figures.items():
        median = statistics.median(values)
        print(f"{name:32s} median {median:6.1f} tok/s  ({median / base:.3f} x plain)  rounds: "
              + ", ".join(f"{v:.0f}" for v in values))


def step_profile(model: Any, ids: Any, steps: int = 32) -> str:
    """What one cached single-token forward pass runs, over ``steps`` greedy steps: how many torch
    operators a step dispatches (nested calls included) and their self time a step, the matrix products
    apart. Compare with a step's unprofiled time (1 / the loop's tok/s): the rest is Python around them."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        out = model(ids, use_cache=True)
        with profile(activities=[ProfilerActivity.CPU]) as trace:
            for _ in range(steps):
                out = model(out.logits[:, -1:].argmax(-1), past_key_values=out.past_key_values, use_cache=True)
    events = [e for e in trace.key_averages() if e.key.startswith("aten::")]
    operators = sum(e.count for e in events) // steps
    matmul_ms = sum(e.self_cpu_time_total for e in events if e.key in ("aten::addmm", "aten::mm")) / steps / 1e3
    all_ms = sum(e.self_cpu_time_total for e in events) / steps / 1e3
    return f"{operators} torch operators, self time {all_ms:.2f} ms a step, of it matrix products {matmul_ms:.2f} ms"


if __name__ == "__main__":
    main()
