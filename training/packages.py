"""Third-party packages for the nano-starcoder corpus: fetch them, then read their sources.

    python -m training.packages fetch     # pip-installs the pinned list into the cache
    python -m training.packages summary   # files, bytes and licence per package

The list is ``training/corpus-packages.txt`` (exact versions). pip installs it
with ``--no-deps --only-binary=:all:`` into a cache folder outside the
repository, named by a hash of the list, so a changed list never mixes with an
old install. Each ``.py`` file is attributed to its distribution through the
distribution's ``RECORD``, and carries that distribution's name, version and
licence (see ``training/licences.py``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from training.licences import permissive_licence, read_metadata

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
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def cache_base() -> Path:
    """The folder that holds package installs, one per list version; NANO_CORPUS_CACHE moves it."""
    return Path(os.environ.get("NANO_CORPUS_CACHE", Path.home() / ".cache" / "nano-starcoder"))


def default_cache(path: Path = PACKAGE_LIST) -> Path:
    return cache_base() / f"packages-{list_fingerprint(path)}"


def fetch(cache: Path | None = None, path: Path = PACKAGE_LIST) -> Path:
    """Install the pinned list into ``cache`` unless a finished install is already there."""
    cache = cache or default_cache(path)
    done = cache / ".complete"
    if done.exists():
        return cache
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--only-binary=:all:",
               "--no-compile", "--target", str(cache), "-r", str(path)]
    subprocess.run(command, check=True)
    done.write_text(list_fingerprint(path) + "\n")
    return cache


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
        found[canonical(metadata["Name"])] = (dist_info, metadata)
    out = []
    for pin in read_pins(path):
        if canonical(pin.name) not in found:
            raise FileNotFoundError(f"{pin.name}=={pin.version} is not in {cache}; "
                                    "run: python -m training.packages fetch")
        dist_info, metadata = found[canonical(pin.name)]
        if metadata["Version"] != pin.version:
            raise ValueError(f"{cache} has {pin.name} {metadata['Version']}, the list pins {pin.version}")
        out.append(Distribution(metadata["Name"], metadata["Version"], permissive_licence(metadata),
                                pin.held_out, tuple(_record_files(dist_info))))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("fetch", "summary"))
    parser.add_argument("--cache", type=Path, help="install folder (default: a hash-named cache folder)")
    args = parser.parse_args(argv)
    cache = fetch(args.cache)
    print(cache)
    if args.action == "summary":
        for dist in distributions(cache):
            size = sum((cache / f).stat().st_size for f in dist.files)
            mark = " held-out" if dist.held_out else ""
            print(f"{dist.name:24} {dist.version:12} {dist.licence or 'LEFT OUT':28} "
                  f"{len(dist.files):5} files {size / 1e6:6.2f} MB{mark}")


if __name__ == "__main__":
    main()
