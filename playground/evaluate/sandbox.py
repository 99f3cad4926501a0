"""Run one untrusted test program in a throwaway sandbox and report whether it passed.

Each call to ``Sandbox.run`` makes a private temp directory, starts the
launcher (``_launch.py``) in a new session, waits with a wall-clock limit,
then kills whatever is left and deletes the directory, on every path out:
pass, failure, timeout, cancellation and Ctrl-C alike.

The guarantees depend on what the machine allows; ``Sandbox.probe`` says
which tier a run gets:

- **full** (root, namespaces allowed): no network, a throwaway uid that owns
  nothing on the host, private size-capped /tmp, /var/tmp and /dev/shm, its
  own PID namespace (nothing survives the program), plus the rlimits below.
- **basic** (anything else): the rlimits, a fresh temp dir as cwd and HOME,
  a minimal environment, and killing the process group plus any process
  still carrying this run's token in its environment. The network is not
  isolated and the program runs as the evaluator's own user.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from playground.evaluate.errors import SandboxError
from playground.evaluate.memory_cap import memory_cap

LAUNCHER = Path(__file__).resolve().parent / "_launch.py"
PASS_MARK = "__playground_evaluate_passed__"  # printed after check(); an early exit(0) cannot fake a pass by accident
GiB, MiB = 1 << 30, 1 << 20
POLL_S = 0.02  # how often a waiting run looks at its cancel event


class Cancelled(Exception):
    """The run was cancelled (Ctrl-C); the program was killed and its files removed."""


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0  # wall clock per program, start-up included; HumanEval tests take well under 1 s
    memory_bytes: int = 1 * GiB  # RLIMIT_AS: address space per process
    file_bytes: int = 16 * MiB  # RLIMIT_FSIZE: largest file (and stdout/stderr capture) it may write
    processes: int = 16  # RLIMIT_NPROC: processes and threads of its uid (enforced only for non-root uids)
    scratch_bytes: int = 64 * MiB  # full tier: size of each private tmpfs (/tmp, /var/tmp, /dev/shm, /run)
    total_memory_bytes: int = 2 * GiB  # all its processes together (``memory_cap``)
    isolate: bool = True  # False forces the basic tier, for tests of the fallback
    cgroups: bool = True  # False counts the group's memory instead of asking the kernel, for tests of that

    @property
    def cpu_seconds(self) -> int:
        return math.ceil(self.timeout_s) + 1  # RLIMIT_CPU, a backstop behind the wall clock


@dataclass(frozen=True)
class Execution:
    """How one program ended. ``detail`` is a one-line reason, empty when it passed."""

    passed: bool
    outcome: str  # passed | failed | timeout | sandbox_error
    detail: str
    duration_s: float
    tier: str  # full | basic; empty when the launcher itself failed
    tier_reason: str = ""  # why the tier is basic


@dataclass(frozen=True)
class SandboxReport:
    tier: str
    reason: str  # why the tier is basic; empty for full

    def describe(self) -> str:
        if self.tier == "full":
            return ("full: no network, throwaway uid, private /tmp, own PID namespace, rlimits, "
                    "wall-clock limit")
        return (f"basic ({self.reason}): rlimits, temp dir, minimal env and wall-clock limit only; "
                "the network is NOT isolated and the program runs as this user")


def _unencodable(program: str) -> str | None:
    try:
        program.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"the program cannot be written as UTF-8: character {exc.start} is {program[exc.start]!r}, "
                "a lone surrogate")
    return None


class Sandbox:
    """Thread-safe: every ``run`` has its own directory, uid and process tree."""

    def __init__(self, limits: SandboxLimits | None = None):
        self.limits = limits or SandboxLimits()
        self._interpreter = os.path.realpath(sys.executable)
        self._expose = _closed_ancestors(Path(sys.base_prefix).resolve())

    def probe(self) -> SandboxReport:
        """Run a trivial program; raise SandboxError if even that cannot run."""
        result = self.run("pass")
        if not result.passed:
            raise SandboxError(
                f"The sandbox could not run a trivial Python program ({result.outcome}: {result.detail}). "
                "Check that the interpreter is readable and that /tmp is writable, then retry."
            )
        return SandboxReport(result.tier, result.tier_reason)

    def run(self, program: str, cancel: threading.Event | None = None) -> Execution:
        """Execute ``program``; raises Cancelled (after cleaning up) when ``cancel`` is set. A program that
        cannot be written as UTF-8 (a lone surrogate from a model) fails, as any broken program does."""
        unwritable = _unencodable(program)
        if unwritable is not None:
            return Execution(False, "failed", unwritable, 0.0, "")
        token = secrets.token_hex(8)
        root = Path(tempfile.mkdtemp(prefix="playground-eval-"))
        started = time.monotonic()
        cap = memory_cap(self.limits.total_memory_bytes, token, self.limits.cgroups)
        try:
            config = {**self._prepare(root, program, token), "cgroup_procs": cap.procs}
            cap.watch(token)
            with open(root / "out", "wb") as out, open(root / "err", "wb") as err:
                proc = subprocess.Popen(
                    [sys.executable, "-I", str(LAUNCHER), json.dumps(config)],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=root,
                    env=_minimal_env(str(root / "home"), token), start_new_session=True,
                )
                try:
                    code = self._wait(proc, started, cancel)
                finally:
                    _kill_group(proc)
            if cap.exceeded():  # whatever its exit code: a killed child need not fail its parent
                return Execution(False, "failed", f"its processes together used more than "
                                 f"{self.limits.total_memory_bytes // MiB} MiB of memory ({cap.how})",
                                 time.monotonic() - started, *_read_status(root / "status.json"))
            return self._classify(root, code, time.monotonic() - started)
        finally:
            _sweep(token)
            cap.close()
            shutil.rmtree(root, ignore_errors=True)

    def _prepare(self, root: Path, program: str, token: str) -> dict[str, object]:
        home = root / "home"
        home.mkdir(mode=0o700)
        (root / "stash").mkdir(mode=0o700)
        program_path = home / "program.py"
        program_path.write_text(f"{program}\nprint({PASS_MARK!r})\n", encoding="utf-8")
        limits = self.limits
        return {
            "isolate": limits.isolate, "uid": _throwaway_uid(), "python": self._interpreter,
            "home": str(home), "program": str(program_path), "status": str(root / "status.json"),
            "stash": str(root / "stash"), "expose": self._expose, "env": _minimal_env(str(home), token),
            "memory_bytes": limits.memory_bytes, "cpu_seconds": limits.cpu_seconds,
            "file_bytes": limits.file_bytes, "processes": limits.processes, "scratch_bytes": limits.scratch_bytes,
        }

    def _wait(self, proc: subprocess.Popen[bytes], started: float, cancel: threading.Event | None) -> int | None:
        """The exit code, or None on timeout."""
        deadline = started + self.limits.timeout_s
        while True:
            try:
                return proc.wait(timeout=max(0.0, min(POLL_S, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                if cancel is not None and cancel.is_set():
                    raise Cancelled() from None
                if time.monotonic() >= deadline:
                    return None

    def _classify(self, root: Path, code: int | None, duration_s: float) -> Execution:
        tier, reason = _read_status(root / "status.json")
        stderr = _tail(root / "err")
        if code is None:
            outcome, detail = "timeout", f"timed out after {self.limits.timeout_s:g} s"
        elif not tier or code == 125:
            outcome, detail = "sandbox_error", _last_line(stderr) or f"the launcher exited with {code}"
        elif code == 0 and PASS_MARK in _tail(root / "out"):
            outcome, detail = "passed", ""
        else:
            outcome, detail = "failed", _failure_detail(code, stderr)
        return Execution(outcome == "passed", outcome, detail, duration_s, tier, reason)


def _minimal_env(home: str, token: str) -> dict[str, str]:
    """No inherited variables: tokens and keys in the evaluator's environment stay there."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
            "PLAYGROUND_SANDBOX": token}


def _throwaway_uid() -> int:
    """A uid no account uses, so rlimits and file ownership are this run's alone."""
    return 1_500_000_000 + secrets.randbelow(500_000_000)


def _closed_ancestors(prefix: Path) -> list[tuple[str, str]]:
    """[(closed dir, prefix)] when an ancestor of the interpreter is not searchable by other users (pyenv in
    /root); the launcher then shows the program only ``prefix`` there."""
    for ancestor in reversed(prefix.parents):
        if ancestor != Path("/") and not os.stat(ancestor).st_mode & stat.S_IXOTH:
            return [(str(ancestor), str(prefix))]
    return []


def _kill_group(proc: subprocess.Popen[bytes], grace_s: float = 2.0) -> None:
    """Ask the launcher to kill and reap the program, then kill its whole session."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher's session: it and anything that did not setsid
    except ProcessLookupError:
        pass
    proc.wait()


def _sweep(token: str, rounds: int = 50) -> None:
    """Kill every process still carrying this run's token (basic tier: ones that escaped with setsid)."""
    needle = f"PLAYGROUND_SANDBOX={token}".encode()
    for _ in range(rounds):
        found = False
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and _environ_has(entry.name, needle):
                found = True
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if not found:
            return
        time.sleep(0.01)


def _environ_has(pid: str, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            return needle in environ.read()
    except OSError:  # gone, a zombie, or not ours to read
        return False


def _read_status(path: Path) -> tuple[str, str]:
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
        return str(status["tier"]), str(status["reason"])
    except (OSError, ValueError, KeyError):
        return "", ""


def _tail(path: Path, size: int = 4096) -> str:
    with open(path, "rb") as handle:
        handle.seek(max(0, os.fstat(handle.fileno()).st_size - size))
        return handle.read().decode("utf-8", "replace")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _failure_detail(code: int, stderr: str) -> str:
    """One line a reader can act on: the exception, else what killed it."""
    line = _last_line(stderr)
    if line:
        return line
    if code > 128:
        name = signal.Signals(code - 128).name if code - 128 in signal.valid_signals() else str(code - 128)
        hint = {"SIGKILL": " (killed: a limit was hit)", "SIGXCPU": " (CPU time limit)",
                "SIGXFSZ": " (file size limit)", "SIGSEGV": " (crashed)"}.get(name, "")
        return f"killed by {name}{hint}"
    if code == 0:
        return "exited before the tests ran to the end"
    return f"exit code {code}"
