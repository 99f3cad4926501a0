"""Install the nano-starcoder corpus packages, and summarise what an install holds.

    python -m training.packages fetch     # pip-installs the pinned list into the cache
    python -m training.packages summary   # files, bytes and licence per package

The list, its cache folder and how an install is read are defined in
``playground.attribution.corpus_packages`` (the list is
``playground/attribution/corpus-packages.txt``) and re-exported here for the
training scripts. pip installs the list with ``--no-deps --only-binary=:all:``
into that cache folder, outside the repository.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from playground.attribution.corpus_packages import (
    HELD_OUT_MARK,
    PACKAGE_LIST,
    Distribution,
    Pin,
    cache_base,
    canonical,
    default_cache,
    distributions,
    list_fingerprint,
    read_pins,
)

__all__ = [
    "HELD_OUT_MARK",
    "PACKAGE_LIST",
    "Distribution",
    "Pin",
    "cache_base",
    "canonical",
    "default_cache",
    "distributions",
    "fetch",
    "list_fingerprint",
    "main",
    "read_pins",
]


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
