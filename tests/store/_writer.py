"""Crash-test helper: write shares forever from a few threads, printing each id after its commit.

Run as ``python tests/store/_writer.py DB_PATH THREADS`` with the repo on
PYTHONPATH. A line on stdout means "this share was acknowledged"; the test
kills this process with SIGKILL at a random moment and then checks that every
printed id still resolves.
"""

from __future__ import annotations

import sys
import threading

from playground.store import ShareStore
from tests.store.store_factories import make_generation


def main(db_path: str, threads: int) -> None:
    store = ShareStore.open(db_path)
    out = threading.Lock()

    def write_forever(n: int) -> None:
        i = 0
        while True:
            text = f"writer {n} share {i} " + "z" * (i % 7 * 300)  # varied sizes span pages
            created = store.create(make_generation(text=text))
            with out:  # whole lines only, flushed only after the commit returned
                sys.stdout.write(f"{created.id} {n} {i}\n")
                sys.stdout.flush()
            i += 1

    for n in range(threads):
        threading.Thread(target=write_forever, args=(n,), daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
