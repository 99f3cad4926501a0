"""Which licences let a package's files into the nano-starcoder corpus, read from its metadata.

Only MIT, BSD, Apache-2.0, PSF and ISC are accepted, and only when the
metadata says so without room for doubt. The fields are tried from the most
precise to the least: ``License-Expression`` (SPDX), then the trove
classifiers, then a short ``License`` field. No licence, a copyleft one, or a
licence text that would need a human to read it, all mean "left out".
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import Parser
from pathlib import Path

# SPDX ids accepted, and the spellings that classifiers and License fields use for them.
PERMISSIVE = ("MIT", "BSD-2-Clause", "BSD-3-Clause", "BSD", "Apache-2.0", "PSF-2.0", "ISC")
_CLASSIFIERS = {
    "MIT License": "MIT",
    "BSD License": "BSD",
    "Apache Software License": "Apache-2.0",
    "Python Software Foundation License": "PSF-2.0",
    "ISC License (ISCL)": "ISC",
}
_SHORT_NAMES = {
    "mit": "MIT", "mit license": "MIT", "the mit license": "MIT",
    "bsd": "BSD", "bsd license": "BSD", "new bsd license": "BSD-3-Clause", "bsd-3-clause": "BSD-3-Clause",
    "3-clause bsd license": "BSD-3-Clause", "bsd 3-clause license": "BSD-3-Clause", "bsd-2-clause": "BSD-2-Clause",
    "apache 2.0": "Apache-2.0", "apache-2.0": "Apache-2.0", "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0", "apache software license": "Apache-2.0",
    "psf": "PSF-2.0", "psf-2.0": "PSF-2.0", "isc": "ISC", "isc license": "ISC",
}


def read_metadata(dist_info: Path) -> Message:
    return Parser().parsestr((dist_info / "METADATA").read_text(encoding="utf-8", errors="replace"))


def _from_expression(expression: str) -> str | None:
    # Every licence named in the expression must be permissive, whatever the
    # operators: "MIT OR Apache-2.0" and "Apache-2.0 AND BSD-3-Clause" both pass.
    names = [n for n in re.split(r"[\s()]+", expression) if n and n.upper() not in ("AND", "OR")]
    if names and all(n in PERMISSIVE for n in names):
        return " AND ".join(dict.fromkeys(names)) if " AND " in expression else expression.strip()
    return None


def _from_classifiers(classifiers: list[str]) -> str | None:
    found = [c.split(" :: ")[-1] for c in classifiers if c.startswith("License ::")]
    # A bare "OSI Approved" says nothing about which licence.
    found = [name for name in found if name != "OSI Approved"]
    if not found or not all(name in _CLASSIFIERS for name in found):
        return None
    return " OR ".join(dict.fromkeys(_CLASSIFIERS[name] for name in found))


def permissive_licence(metadata: Message) -> str | None:
    """The SPDX-style licence of a distribution, or None when it is not clearly permissive."""
    expression = metadata.get("License-Expression")
    if expression:
        return _from_expression(expression)
    from_classifiers = _from_classifiers(metadata.get_all("Classifier") or [])
    if from_classifiers:
        return from_classifiers
    short = (metadata.get("License") or "").strip().lower()
    return _SHORT_NAMES.get(short)
