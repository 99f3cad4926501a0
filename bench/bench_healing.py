"""Token healing on nano-starcoder: do prompts that end where people stop typing get a body?

Ten prompts end right after a block opener's newline, or after the indentation of the body's first
line. Each runs greedy and with three seeds, at the model's default parameters, with token healing
on and off, through the service: as a completion (the Complete tab), and as a fill with its hole
where the prompt ends (the Fill tab; the code after the hole is one line break). A run counts as a body
when the first line the model writes (after the prompt's text) is indented deeper than the opener
and holds code, and as one level in when that line is indented exactly four spaces deeper (what the
prompts that end on indentation already typed).

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


def one_level_in(prompt: str, opener_indent: int, continuation: str) -> bool:
    """Whether the first line written is a body indented exactly one level (four spaces) past the opener."""
    line = (prompt.rsplit("\n", 1)[-1] + continuation).split("\n", 1)[0]
    return opens_body(prompt, opener_indent, continuation) and len(line) - len(line.lstrip(" ")) == opener_indent + 4


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
    inputs = {"complete": lambda prompt: {"prompt": prompt}, "fill": lambda prompt: {"code": f"{prompt}<FILL_HERE>\n"}}
    results: dict[str, list[dict]] = {}
    for mode, heal in [(mode, heal) for mode in inputs for heal in ("on", "off")]:
        rows = results[f"{mode}, healing {heal}"] = []
        for (prompt, indent), extra in [(case, extra) for case in PROMPTS for extra in runs]:
            run = playground.start(mode, None, inputs[mode](prompt),
                                   {**extra, "max_new_tokens": args.tokens, "heal": heal == "on"})
            for _ in run:
                pass
            assert run.record is not None
            text = run.record.generated
            rows.append({"prompt": prompt, **extra, "continuation": text, "body": opens_body(prompt, indent, text),
                         "one_level_in": one_level_in(prompt, indent, text)})
        bodies, level = (sum(r[key] for r in rows) for key in ("body", "one_level_in"))
        print(f"{mode}, token healing {heal}: {bodies} of {len(rows)} runs continue with the block's body, "
              f"{level} of them one level in")
    for prompt, _ in PROMPTS[:3]:
        example = next(r for r in results["complete, healing on"] if r["prompt"] == prompt)
        print(f"  e.g. {prompt!r} -> {example['continuation'][:40]!r}")
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "healing", "date": datetime.now(UTC).isoformat(timespec="seconds"),
                                         "tokens": args.tokens, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
