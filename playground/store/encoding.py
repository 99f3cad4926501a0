"""Turn a Generation record into stored JSON text and back, exactly.

A Python string may hold lone surrogates (``"\\ud800"``) that UTF-8 cannot
encode; SQLite would reject the row. They are replaced by U+FFFD everywhere in
the record (keys included) before storing. Everything else round-trips: JSON
keeps every other code point, NUL included (escaped as ``\\u0000``), and floats
via their shortest repr. Tuples become lists, as JSON has no tuple.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def scrub_text(value: str) -> str:
    """``value`` with each surrogate code point (paired or not) replaced by U+FFFD."""
    return _SURROGATE.sub(REPLACEMENT, value)


def scrub(value: Any) -> Any:
    """A copy of a JSON-shaped value with every string scrubbed, recursively."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


def dump_record(record: dict[str, Any]) -> str:
    """JSON text for a record that has been scrubbed (``ensure_ascii=False`` keeps it readable)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def load_record(text: str) -> dict[str, Any]:
    record = json.loads(text)
    if not isinstance(record, dict):
        raise ValueError("stored record is not a JSON object")
    return record
