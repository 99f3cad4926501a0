"""Token healing on nano-starcoder: do prompts that end where people stop typing get a body?

Ten prompts end right after a block opener's newline, or after the indentation of the body's first
line. Each runs greedy and with three seeds, at the model's default parameters, with token healing
on and off, through the service (the same path as the app's Complete tab). A run counts as a body
when the first line the model writes (after the prompt's text) is indented deeper than the opener
and holds code.

    python bench/bench_healing.py [--seeds 1 2 3] [--tokens 32] [--json healing.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere without installing
os.chdir(ROOT)  # the registry's nano-starcoder source is relative to the repo
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from playground.backends.local import LocalBackend  # noqa: E402
from playground.config import Settings  # noqa: E402
from playground.loading import load_model  # noqa: E402
from playground.registry import load_registry  # noqa: E402
from playground.service import Playground  # noqa: E402
from playground.slots import ModelSlot  # noqa: E402
from playground.tech_assistant import load_tech_assistant  # noqa: E402

PROMPTS = [  # (prompt, the opener's indentation)
    ("def quicksort(items):\n", 0),
    ("class LRUCache:\n    def __init__(self, capacity: int):\n", 4),
    ("def fibonacci(n):\n", 0),
    ("import json\n\n\ndef load(path):\n    with open(path) as handle:\n", 4),
    ("for name in sorted(names):\n", 0),
    ("def is_prime(n: int) -> bool:\n    ", 0),
    ("class Stack:\n    def push(self, item):\n        ", 4),
    ("def read_lines(path):\n    try:\n", 4),
    ("if __name__ == \"__main__\":\n", 0),
    ("def mean(values):\n    if not values:\n        ", 4),
]


def opens_body(prompt: str, opener_indent: int, continuation: str) -> bool:
    """Whether the first line written continues the block: deeper than the opener, and not empty."""
    line = (prompt.rsplit("\n", 1)[-1] + continuation).split("\n", 1)[0]
    indent = len(line) - len(line.lstrip(" "))
    return indent > opener_indent and bool(line.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3], help="sampled runs besides greedy")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-healing-")), attribution=False)
    loaded = load_model("nano-starcoder", load_registry(), settings)
    slot = ModelSlot(loaded.spec, LocalBackend(loaded))
    playground = Playground(settings, {loaded.spec.id: slot}, load_tech_assistant())
    runs = [{"temperature": 0}] + [{"seed": seed} for seed in args.seeds]  # the model's defaults otherwise
    results: dict[str, list[dict]] = {"on": [], "off": []}
    for heal in ("on", "off"):
        for prompt, indent in PROMPTS:
            for extra in runs:
                run = playground.start("complete", None, {"prompt": prompt},
                                       {**extra, "max_new_tokens": args.tokens, "heal": heal == "on"})
                for _ in run:
                    pass
                assert run.record is not None
                text = run.record.text
                results[heal].append({"prompt": prompt, **extra, "continuation": text,
                                      "body": opens_body(prompt, indent, text)})
        bodies = sum(r["body"] for r in results[heal])
        print(f"token healing {heal}: {bodies} of {len(results[heal])} runs continue with the block's body")
    for prompt, _ in PROMPTS[:3]:
        example = next(r for r in results["on"] if r["prompt"] == prompt)
        print(f"  e.g. {prompt!r} -> {example['continuation'][:40]!r}")
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "healing", "date": datetime.now(UTC).isoformat(timespec="seconds"),
                                         "tokens": args.tokens, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
