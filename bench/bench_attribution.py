"""Attribution benchmark: build speed, index size, check latency, recall and false positives.

A synthetic corpus is made on the fly from the running interpreter's standard
library: each document is a slice of a real module with some identifiers
renamed, some number literals changed and some blocks swapped, so it reads like
code, compresses like code, and repeats across documents about as much as a
deduplicated code corpus does. It is written as a JSONL dump with The Stack's
column names and indexed through the CLI's code path.

Then, with w the window: 1,000 texts of 2,000 chars with a planted span of
2w-1 chars from a random document (recall must be 100%), and 1,000 texts of
2,000 random code-like chars (no match allowed). Every reported match is
re-read from the dump and compared, so a false positive cannot hide.

    .venv/bin/python bench/bench_attribution.py [--size-mb 100] [--queries 1000] [--dir /tmp] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import keyword
import os
import pstats
import random
import re
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from playground.attribution import DEFAULT_WINDOW, BuildOptions, Match, SqliteIndex, build_index  # noqa: E402

TEXT_CHARS = 2000  # the length of each checked text, about one long generation
IDENTIFIER = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]{3,}\b")
NUMBER = re.compile(r"\b\d+\b")
RESERVED = set(keyword.kwlist) | set(dir(__builtins__)) | {"self", "cls"}


@dataclass
class Corpus:
    path: Path
    documents: int = 0
    text_bytes: int = 0
    offsets: list[int] = field(default_factory=list)  # where each document's line starts in the dump
    sample: dict[int, str] = field(default_factory=dict)  # documents to plant spans from


def stdlib_modules() -> list[list[str]]:
    """Lines of every module of the standard library, tests included: about 50 MB of varied Python."""
    root = Path(sysconfig.get_paths()["stdlib"])
    modules = []
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts:
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        except (UnicodeDecodeError, OSError):
            continue
        if len(lines) >= 40:
            modules.append(lines)
    return modules


def mutated_document(modules: list[list[str]], chooser: random.Random) -> str:
    """A slice of a real module with a few identifiers renamed, numbers changed and blocks swapped."""
    lines = chooser.choice(modules)
    size = chooser.randint(30, 500)
    start = chooser.randrange(max(1, len(lines) - size))
    text = "".join(lines[start : start + size])
    names = sorted({name for name in IDENTIFIER.findall(text) if name not in RESERVED})
    if names:
        renamed = {name: f"{name[:3]}_{chooser.getrandbits(24):06x}" for name in chooser.sample(names,
                                                                                             min(6, len(names)))}
        pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, renamed)) + r")\b")
        text = pattern.sub(lambda found: renamed[found.group(0)], text)
    text = NUMBER.sub(lambda found: str(chooser.randrange(10_000)) if chooser.random() < 0.5 else found.group(0),
                      text)
    blocks = text.split("\n\n")
    for _ in range(min(2, len(blocks) // 2)):
        a, b = chooser.randrange(len(blocks)), chooser.randrange(len(blocks))
        blocks[a], blocks[b] = blocks[b], blocks[a]
    return "\n\n".join(blocks)


def make_corpus(folder: Path, size_mb: int, chooser: random.Random, samples: int) -> Corpus:
    modules = stdlib_modules()
    corpus = Corpus(folder / "corpus.jsonl")
    target = size_mb * 1_000_000
    with corpus.path.open("wb") as dump:
        while corpus.text_bytes < target:
            text = mutated_document(modules, chooser)
            number = corpus.documents
            row = {"content": text, "max_stars_repo_path": f"synthetic/{number:07d}.py",
                   "max_stars_repo_name": f"bench/repo{number % 997}", "max_stars_repo_licenses": ["MIT"]}
            corpus.offsets.append(dump.tell())
            dump.write(json.dumps(row).encode() + b"\n")
            corpus.text_bytes += len(text.encode())
            corpus.documents += 1
            if len(text) >= 2 * DEFAULT_WINDOW and len(corpus.sample) < samples:
                corpus.sample[number] = text
            elif len(text) >= 2 * DEFAULT_WINDOW and chooser.random() < samples / corpus.documents:
                corpus.sample.pop(chooser.choice(list(corpus.sample)))  # reservoir: a uniform sample of the corpus
                corpus.sample[number] = text
    return corpus


def noise(chooser: random.Random, length: int) -> str:
    """Code-shaped text no corpus holds: made-up names, calls and numbers on indented lines."""
    lines: list[str] = []
    size = 0
    while size < length:
        words = ["".join(chooser.choices("abcdefghijklmnopqrstuvwxyz", k=chooser.randint(2, 7)))
                 for _ in range(4)]
        line = (" " * chooser.choice((0, 4, 8)) + f"{words[0]} = {words[1]}({words[2]}, {chooser.randrange(999)})"
                f".{words[3]}\n")
        lines.append(line)
        size += len(line)
    return "".join(lines)[:length]


def planted_texts(corpus: Corpus, chooser: random.Random, count: int) -> list[tuple[str, int, int]]:
    """(text, where the span starts, document number) with one span of 2w-1 chars from a sampled document."""
    span = 2 * DEFAULT_WINDOW - 1
    texts = []
    for _ in range(count):
        number = chooser.choice(list(corpus.sample))
        source = corpus.sample[number]
        start = chooser.randrange(len(source) - span + 1)
        before = chooser.randrange(TEXT_CHARS - span)
        texts.append((noise(chooser, before) + source[start : start + span] + noise(chooser, TEXT_CHARS - span -
                                                                                    before), before, number))
    return texts


def verified(corpus: Corpus, match: Match) -> bool:
    """Re-read the named document from the dump and look for the match at the lines it gives."""
    number = int(match.source.path.split("/")[1].split(".")[0])
    with corpus.path.open("rb") as dump:
        dump.seek(corpus.offsets[number])
        text = json.loads(dump.readline())["content"]
    region = "".join(text.splitlines(keepends=True)[match.source.start_line - 1 : match.source.end_line])
    return match.text in region


def run_checks(index: SqliteIndex, corpus: Corpus, chooser: random.Random, count: int) -> dict[str, Any]:
    planted = planted_texts(corpus, chooser, count)
    random_texts = [noise(chooser, TEXT_CHARS) for _ in range(count)]
    latencies: dict[str, list[float]] = {"planted": [], "random": []}
    cpu: list[float] = []  # on a shared machine, CPU time shows what a check costs apart from waiting
    found = random_matches = false_positives = 0
    queue = [("planted", item) for item in planted] + [("random", (text, -1, -1)) for text in random_texts]
    chooser.shuffle(queue)  # interleaved, so a slow spell on a shared machine hits both kinds alike
    for kind, (text, at, _number) in queue:
        started, cpu_started = time.perf_counter(), time.thread_time()
        matches = index.check(text)
        latencies[kind].append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - cpu_started) * 1000)
        false_positives += sum(not verified(corpus, match) for match in matches)
        if kind == "random":
            random_matches += len(matches)
        elif any(m.start <= at and m.end >= at + 2 * DEFAULT_WINDOW - 1 for m in matches):
            found += 1
    every = latencies["planted"] + latencies["random"]
    return {"recall": found / count, "random_matches": random_matches, "false_positives": false_positives,
            "p50_ms": percentile(every, 50), "p95_ms": percentile(every, 95), "p99_ms": percentile(every, 99),
            "planted_p95_ms": percentile(latencies["planted"], 95),
            "random_p95_ms": percentile(latencies["random"], 95), "mean_ms": statistics.fmean(every),
            "cpu_p50_ms": percentile(cpu, 50), "cpu_p95_ms": percentile(cpu, 95)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def profiled(enabled: bool, label: str, work: Any) -> Any:
    if not enabled:
        return work()
    profile = cProfile.Profile()
    result = profile.runcall(work)
    print(f"\n--- profile: {label} ---")
    pstats.Stats(profile).sort_stats("tottime").print_stats(12)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=100, help="corpus size in MB of text (default 100)")
    parser.add_argument("--queries", type=int, default=1000, help="texts of each kind to check (default 1000)")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()), help="where to put the files")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions for each phase")
    parser.add_argument("--keep", action="store_true", help="keep the corpus and index afterwards")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    chooser = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="bench-attribution-", dir=args.dir))
    try:
        started = time.perf_counter()
        corpus = make_corpus(folder, args.size_mb, chooser, samples=2000)
        generated_s = time.perf_counter() - started
        out = folder / "index.sqlite"
        cpu_started = time.process_time()
        summary = profiled(args.profile, "build", lambda: build_index(out, [corpus.path], BuildOptions()))
        build_cpu_s = time.process_time() - cpu_started
        index = SqliteIndex.open(out)
        index.check(noise(chooser, TEXT_CHARS))  # the first check maps the file; count steady state only
        checks = profiled(args.profile, "checks", lambda: run_checks(index, corpus, chooser, args.queries))
        index.close()
        figures = {
            "corpus_mb": corpus.text_bytes / 1e6, "documents": corpus.documents, "generate_s": generated_s,
            "build_s": summary.seconds, "build_mb_per_s": corpus.text_bytes / 1e6 / summary.seconds,
            "build_cpu_mb_per_s": corpus.text_bytes / 1e6 / build_cpu_s, "load_average": os.getloadavg(),
            "index_mb": summary.index_bytes / 1e6, "index_ratio": summary.index_bytes / corpus.text_bytes, **checks,
        }
        report(figures, args.queries)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def report(figures: dict[str, Any], queries: int) -> None:
    print(f"corpus        {figures['corpus_mb']:,.0f} MB of text in {figures['documents']:,} documents "
          f"(generated in {figures['generate_s']:,.0f} s)")
    print(f"build         {figures['build_s']:,.1f} s = {figures['build_mb_per_s']:.1f} MB/s "
          f"({figures['build_cpu_mb_per_s']:.1f} MB per CPU second)      target >= 10 MB/s")
    print(f"index         {figures['index_mb']:,.0f} MB = {figures['index_ratio']:.2f} x corpus      target <= 0.6")
    print(f"check         p50 {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} "
          f"ms (planted p95 {figures['planted_p95_ms']:.1f}, random p95 {figures['random_p95_ms']:.1f})"
          "      target p95 <= 20 ms")
    print(f"check CPU     p50 {figures['cpu_p50_ms']:.1f} ms, p95 {figures['cpu_p95_ms']:.1f} ms "
          f"(load average {', '.join(f'{load:.1f}' for load in figures['load_average'])})")
    print(f"recall        {figures['recall']:.1%} of {queries:,} planted spans of {2 * DEFAULT_WINDOW - 1} chars"
          "      target 100%")
    print(f"random texts  {figures['random_matches']} matches in {queries:,} texts; "
          f"false positives (re-read from the dump) {figures['false_positives']}      target 0")


if __name__ == "__main__":
    sys.exit(main())
