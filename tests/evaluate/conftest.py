"""Fixtures for the evaluation tests: small sandboxes, probes of what is left running, fake generators."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from playground.evaluate.sandbox import MiB, Sandbox, SandboxLimits

THROWAWAY_UIDS = range(1_500_000_000, 2_000_000_000)  # sandbox._throwaway_uid's range
# A command that a shell starts in the background without job control (`cmd &` in a script) starts
# with SIGINT ignored, and Python then installs no KeyboardInterrupt handler at all. The Ctrl-C tests
# run this first in their child, or under such a shell they would wait out the whole run and fail.
RESTORE_CTRL_C = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    """Tight limits keep the hostile programs short and small on a shared machine."""
    return Sandbox(SandboxLimits(timeout_s=2.0, memory_bytes=256 * MiB, processes=16))


@pytest.fixture(scope="session")
def full_tier(sandbox: Sandbox) -> bool:
    return sandbox.probe().tier == "full"


@pytest.fixture
def needs_full_tier(full_tier: bool) -> None:
    if not full_tier:
        pytest.skip("needs the full sandbox tier (root and namespaces); the basic tier does not contain this")


def sandbox_processes() -> list[int]:
    """Processes of any sandbox still alive: a throwaway uid, or a run token in the environment."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            uid = os.stat(entry.path).st_uid
            with open(f"{entry.path}/environ", "rb") as environ:
                tagged = b"PLAYGROUND_SANDBOX=" in environ.read()
            with open(f"{entry.path}/stat", "rb") as stat:
                zombie = stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
        except OSError:
            continue
        if (uid in THROWAWAY_UIDS or tagged) and not zombie:
            found.append(int(entry.name))
    return found


@pytest.fixture
def outside_dir() -> Iterator[Path]:
    """A normal 0755 folder outside /tmp, owned by this user: what a completion must not be able to touch."""
    path = Path(tempfile.mkdtemp(prefix=".sentinel-", dir=Path(__file__).parent))
    path.chmod(0o755)
    (path / "sentinel").write_text("still here")
    yield path
    shutil.rmtree(path, ignore_errors=True)


GenerateFn = Callable[..., str]


def answering(answers: dict[str, str]) -> GenerateFn:
    """A fake deployment: each prompt gets the completion mapped to it."""
    def generate(prompt: str, *, stop: list[str], temperature: float, seed: int | None, max_new_tokens: int) -> str:
        return answers[prompt]

    return generate


def kill_sandbox_processes() -> None:
    """After a test that failed: end what it left running, so the failure does not spread to later tests."""
    for pid in sandbox_processes():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
