"""The third-party half of the nano-starcoder corpus: the pinned package list and where its install lives.

``corpus-packages.txt`` (next to this module) pins exact versions; a line whose
comment says ``held-out`` names a package kept out of training for evaluation.
The packages are installed (by ``python -m training.packages fetch``) into a
cache folder outside the repository whose name carries a hash of the list, so
an edited list never reads an old install. Each ``.py`` file belongs to the
distribution whose ``RECORD`` lists it, and carries that distribution's name,
version and licence (see ``_licences``).

This module only describes and reads the corpus; installing it is the
training scripts' business. The attribution index reads the same cache to
show which training file a generation copies.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from playground.attribution._licences import permissive_licence, read_metadata

PACKAGE_LIST = Path(__file__).with_name("corpus-packages.txt")
HELD_OUT_MARK = "held-out"


@dataclass(frozen=True)
class Pin:
    name: str  # as written in the list, e.g. "markdown-it-py"
    version: str
    held_out: bool


@dataclass(frozen=True)
class Distribution:
    name: str  # as its metadata spells it
    version: str
    licence: str | None  # None: not clearly permissive, so left out
    held_out: bool
    files: tuple[str, ...]  # .py files relative to the install folder, sorted


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def read_pins(path: Path = PACKAGE_LIST) -> list[Pin]:
    pins = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        requirement, _, comment = raw.partition("#")
        if not requirement.strip():
            continue
        name, _, version = requirement.strip().partition("==")
        pins.append(Pin(name.strip(), version.strip(), HELD_OUT_MARK in comment))
    return pins


def list_fingerprint(path: Path = PACKAGE_LIST) -> str:
    """A hash of the list's bytes: it names the cache folder, and training logs record it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def cache_base() -> Path:
    """The folder that holds package installs, one per list version; NANO_CORPUS_CACHE moves it."""
    return Path(os.environ.get("NANO_CORPUS_CACHE", Path.home() / ".cache" / "nano-starcoder"))


def default_cache(path: Path = PACKAGE_LIST) -> Path:
    return cache_base() / f"packages-{list_fingerprint(path)}"


def _record_files(dist_info: Path) -> list[str]:
    with (dist_info / "RECORD").open(encoding="utf-8", newline="") as handle:
        paths = [row[0] for row in csv.reader(handle) if row]
    # Scripts land outside the target ("../../bin/..."): not package sources.
    return sorted(p for p in paths if p.endswith(".py") and not p.startswith(".."))


def distributions(cache: Path, path: Path = PACKAGE_LIST) -> list[Distribution]:
    """Every pinned distribution found in ``cache``, in list order; a missing one is an error."""
    found = {}
    for dist_info in cache.glob("*.dist-info"):
        metadata = read_metadata(dist_info)
        found[canonical(str(metadata["Name"]))] = (dist_info, metadata)
    out = []
    for pin in read_pins(path):
        if canonical(pin.name) not in found:
            raise FileNotFoundError(f"{pin.name}=={pin.version} is not in {cache}; "
                                    "run: python -m training.packages fetch")
        dist_info, metadata = found[canonical(pin.name)]
        name, version = str(metadata["Name"]), str(metadata["Version"])
        if version != pin.version:
            raise ValueError(f"{cache} has {pin.name} {version}, the list pins {pin.version}")
        out.append(Distribution(name, version, permissive_licence(metadata), pin.held_out,
                                tuple(_record_files(dist_info))))
    return out
