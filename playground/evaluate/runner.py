"""The evaluation loop: generate a completion per problem and sample, run its tests, score.

It knows nothing about the app: it takes a plain ``generate`` callable, so
the CLI can hand it the real serving path (``service_adapter``) and tests can
hand it a function. The prompt is the problem's prompt and nothing else;
completions are cut at the Codex/StarCoder stop sequences.

Work runs on a thread pool of ``workers``: each task generates, then starts
its test program in the sandbox. On Ctrl-C (or a failing deployment) the
pool stops taking work, every running program is killed and its files
removed before the exception leaves ``evaluate``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from tqdm import tqdm  # type: ignore[import-untyped]

from playground.errors import InputError
from playground.evaluate.card import card_score
from playground.evaluate.errors import EvaluationError
from playground.evaluate.passk import ks_for, mean_pass_at_k
from playground.evaluate.problems import Problem
from playground.evaluate.results import EvaluationResult, ProblemResult
from playground.evaluate.sandbox import Cancelled, Sandbox

# Stop sequences of the Codex paper (Chen et al. 2021), also used for StarCoder's HumanEval figures:
# a new top-level statement means the function body is over.
STOP_SEQUENCES = ("\ndef", "\nclass", "\nif", "\nprint", "\n#")
CLEANUP_WAIT_S = 30.0  # after Ctrl-C: how long to wait for running programs to be killed and removed


class Generate(Protocol):
    """What the runner needs from a deployment: prompt in, continuation out."""

    def __call__(self, prompt: str, *, stop: list[str], temperature: float, seed: int | None,
                 max_new_tokens: int) -> str: ...


@dataclass(frozen=True)
class Deployment:
    """What is being evaluated, as recorded in the result."""

    model: str
    backend: str = "unknown"
    dtype: str | None = None
    quantization: str | None = None
    revision: str | None = None


@dataclass(frozen=True)
class EvaluationConfig:
    samples: int = 1  # completions per problem; the StarCoder paper uses 1 greedy, or 20 at temperature 0.2
    temperature: float = 0.0  # 0 = greedy
    max_new_tokens: int = 512  # the bigcode harness's budget for HumanEval completions
    seed: int = 0  # base seed for sampled completions, so a run can be repeated
    workers: int = 2  # concurrent generate-then-execute tasks
    stop: tuple[str, ...] = STOP_SEQUENCES
    progress: bool = True  # a tqdm bar on stderr

    def check(self) -> None:
        if self.samples < 1 or self.workers < 1 or self.max_new_tokens < 1:
            raise EvaluationError("--samples, --workers and --max-new-tokens must each be at least 1.")
        if self.temperature < 0:
            raise EvaluationError("--temperature must be 0 (greedy) or more.")
        if self.samples > 1 and self.temperature == 0:
            raise EvaluationError(
                "Greedy decoding gives the same completion every time, so --samples above 1 needs sampling: "
                "add --temperature 0.2 (the StarCoder paper's setting)."
            )


@dataclass
class _Sample:
    completion: str
    error: str | None  # None: passed
    generation_s: float
    execution_s: float


def truncate(completion: str, stops: Sequence[str]) -> str:
    """Cut at the first stop sequence; engines that already stopped are unaffected."""
    cut = min((i for i in (completion.find(s) for s in stops if s) if i >= 0), default=len(completion))
    return completion[:cut]


def seed_for(base: int, problem: int, sample: int) -> int:
    return (base + 1_000_003 * problem + sample) % 2**32


@dataclass
class _Job:
    """Shared state of one run: the abort flag, and how many programs are running right now."""

    generate: Generate
    sandbox: Sandbox
    config: EvaluationConfig
    abort: threading.Event = field(default_factory=threading.Event)
    executing: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def one(self, index: int, problem: Problem, sample: int) -> _Sample:
        if self.abort.is_set():
            raise Cancelled()
        config = self.config
        started = time.perf_counter()
        try:
            raw = self.generate(problem.prompt, stop=list(config.stop), temperature=config.temperature,
                                seed=None if config.temperature == 0 else seed_for(config.seed, index, sample),
                                max_new_tokens=config.max_new_tokens)
        except InputError as exc:  # the deployment refused this prompt (e.g. too long): the problem fails
            return _Sample("", f"generation refused: {exc.message}", time.perf_counter() - started, 0.0)
        generated = time.perf_counter()
        completion = truncate(raw, config.stop)
        with self.lock:
            if self.abort.is_set():
                raise Cancelled()
            self.executing += 1
        try:
            execution = self.sandbox.run(problem.program(completion), self.abort)
        finally:
            with self.lock:
                self.executing -= 1
        error = None if execution.passed else (
            execution.detail if execution.outcome == "failed" else f"{execution.outcome}: {execution.detail}")
        return _Sample(completion, error, generated - started, time.perf_counter() - generated)

    def stop(self) -> None:
        """Abort, then wait until no program is running (each one kills and removes its own)."""
        self.abort.set()
        deadline = time.monotonic() + CLEANUP_WAIT_S
        while self.executing and time.monotonic() < deadline:
            time.sleep(0.01)


def evaluate(problems: Sequence[Problem], generate: Generate, config: EvaluationConfig | None = None, *,
             deployment: Deployment | None = None, sandbox: Sandbox | None = None, dataset: str = "HumanEval",
             complete_set: bool = True) -> EvaluationResult:
    """Run every problem ``config.samples`` times and score it. Raises KeyboardInterrupt after cleaning up."""
    config = config or EvaluationConfig()
    config.check()
    if not problems:
        raise EvaluationError("No problems to evaluate. Check --problems and --limit.")
    sandbox = sandbox or Sandbox()
    report = sandbox.probe()
    deployment = deployment or Deployment(model="unknown")
    job = _Job(generate, sandbox, config)
    started = time.perf_counter()
    samples = _run_all(job, problems)
    wall_s = time.perf_counter() - started
    per_problem = [
        ProblemResult(problem.task_id, sum(s.error is None for s in runs), len(runs),
                      [s.completion for s in runs], [s.error for s in runs])
        for problem, runs in zip(problems, samples, strict=True)
    ]
    counts = [(p.samples, p.passed) for p in per_problem]
    flat = [s for runs in samples for s in runs]
    return EvaluationResult(
        model=deployment.model, backend=deployment.backend, dtype=deployment.dtype,
        quantization=deployment.quantization, revision=deployment.revision, dataset=dataset,
        complete_set=complete_set, samples=config.samples, temperature=config.temperature,
        pass_at={k: mean_pass_at_k(counts, k) for k in ks_for(config.samples)},
        card=card_score(deployment.model), per_problem=per_problem,
        timings={"wall_s": round(wall_s, 3),
                 "generation_s": round(sum(s.generation_s for s in flat), 3),
                 "execution_s": round(sum(s.execution_s for s in flat), 3)},
        settings=_settings(config, sandbox), sandbox=report.describe(),
    )


def _run_all(job: _Job, problems: Sequence[Problem]) -> list[list[_Sample]]:
    """Every (problem, sample) on the pool, in order; any failure or Ctrl-C stops the lot cleanly."""
    samples = job.config.samples
    results: list[list[_Sample | None]] = [[None] * samples for _ in problems]
    pool = ThreadPoolExecutor(max_workers=job.config.workers, thread_name_prefix="evaluate")
    bar = tqdm(total=len(problems) * samples, unit="sample", disable=not job.config.progress, dynamic_ncols=True)
    try:
        futures: dict[Future[_Sample], tuple[int, int]] = {
            pool.submit(job.one, index, problem, sample): (index, sample)
            for index, problem in enumerate(problems) for sample in range(samples)
        }
        pending: set[Future[_Sample]] = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            for future in done:
                index, sample = futures[future]
                results[index][sample] = future.result()  # re-raises a deployment failure here
                bar.update(1)
    except BaseException:
        job.stop()  # Ctrl-C, or generate() failed: kill running programs before leaving
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        bar.close()
    pool.shutdown(wait=True)
    return [[s for s in runs if s is not None] for runs in results]


def _settings(config: EvaluationConfig, sandbox: Sandbox) -> dict[str, Any]:
    limits = sandbox.limits
    return {"max_new_tokens": config.max_new_tokens, "stop": list(config.stop), "seed": config.seed,
            "workers": config.workers, "timeout_s": limits.timeout_s,
            "sandbox_limits": {**asdict(limits), "cpu_seconds": limits.cpu_seconds}}
