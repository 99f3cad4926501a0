"""Hostile programs fail and harm nothing: loops, forks, memory, deletions, sockets, secrets.

The fork tests run only in the full tier, where a throwaway uid makes
RLIMIT_NPROC bite and a PID namespace takes every process down with the
program; the bounded fork loop runs before the unbounded one.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from playground.evaluate.memory_cap import memory_cap
from playground.evaluate.sandbox import MiB, Sandbox, SandboxLimits
from tests.evaluate.conftest import sandbox_processes


def test_probe_names_the_tier_and_its_guarantees(sandbox: Sandbox) -> None:
    report = sandbox.probe()
    assert report.tier in ("full", "basic")
    assert ("no network" in report.describe()) == (report.tier == "full")


def test_a_passing_program_and_a_failing_one(sandbox: Sandbox) -> None:
    assert sandbox.run("assert sum([1, 2]) == 3").passed
    failed = sandbox.run("def f():\n    return 2\nassert f() == 3, 'f is wrong'")
    assert (failed.passed, failed.outcome, failed.detail) == (False, "failed", "AssertionError: f is wrong")


def test_exiting_early_with_status_0_is_not_a_pass(sandbox: Sandbox) -> None:
    result = sandbox.run("import os\nos._exit(0)\nassert False")
    assert not result.passed and "before the tests ran to the end" in result.detail


def test_an_infinite_loop_times_out_and_leaves_nothing(sandbox: Sandbox) -> None:
    started = time.monotonic()
    result = sandbox.run("while True:\n    pass")
    assert result.outcome == "timeout" and not result.passed
    assert time.monotonic() - started < 2.0 + 3.0  # the limit, plus kill and clean-up
    assert sandbox_processes() == []


def test_a_memory_hog_hits_the_address_space_limit(sandbox: Sandbox) -> None:
    result = sandbox.run("chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 2**20))")
    assert result.outcome == "failed" and "MemoryError" in result.detail


def test_one_huge_allocation_fails_at_once(sandbox: Sandbox) -> None:
    result = sandbox.run("x = bytearray(64 * 2**30)")
    assert "MemoryError" in result.detail and result.duration_s < 2.0


def test_the_evaluators_secrets_are_not_in_the_environment(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("PLAYGROUND_ENDPOINT_TOKEN", "secret")
    program = "import os\nassert 'HF_TOKEN' not in os.environ and 'PLAYGROUND_ENDPOINT_TOKEN' not in os.environ"
    assert sandbox.run(program).passed


def test_home_is_a_fresh_directory_and_cwd(sandbox: Sandbox) -> None:
    program = ("import os\nhome = os.path.expanduser('~')\nassert os.getcwd() == home, (os.getcwd(), home)\n"
               f"assert home != {str(Path.home())!r}\nopen('scratch.txt', 'w').write('mine')")
    assert sandbox.run(program).passed


def test_bounded_fork_loop_is_capped_by_the_process_limit(sandbox: Sandbox, needs_full_tier: None) -> None:
    program = (
        "import os, time\nforked = refused = 0\nfor _ in range(200):\n    try:\n        pid = os.fork()\n"
        "    except OSError:\n        refused += 1\n        continue\n    if pid == 0:\n        time.sleep(30)\n"
        "        os._exit(0)\n    forked += 1\nraise SystemExit(f'forked {forked} refused {refused}')"
    )
    result = sandbox.run(program)
    forked = int(result.detail.split()[1])
    assert forked < sandbox.limits.processes, result.detail
    assert sandbox_processes() == []  # the sleeping children died with the program


def test_a_fork_bomb_is_contained_and_cleaned_up(sandbox: Sandbox, needs_full_tier: None) -> None:
    program = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = sandbox.run(program)
    assert result.outcome == "timeout"
    assert sandbox_processes() == []


def test_children_that_escape_with_setsid_die_with_the_program(sandbox: Sandbox) -> None:
    program = ("import os, time\nfor _ in range(3):\n    if os.fork() == 0:\n        os.setsid()\n"
               "        time.sleep(60)\n        os._exit(0)\nraise SystemExit('parent gives up')")
    assert not sandbox.run(program).passed
    deadline = time.monotonic() + 2.0
    while sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.05)  # the basic tier's sweep and init's reaping take a moment
    assert sandbox_processes() == []


def test_rm_rf_home_fails_and_touches_nothing_outside(sandbox: Sandbox, needs_full_tier: None) -> None:
    before = set(os.listdir(Path.home()))
    program = "import os, shutil\nshutil.rmtree(os.path.expanduser('~'))"
    result = sandbox.run(program)
    assert result.outcome == "failed" and "PermissionError" in result.detail
    assert set(os.listdir(Path.home())) == before


def test_deleting_files_outside_the_sandbox_fails(sandbox: Sandbox, needs_full_tier: None, outside_dir: Path,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(outside_dir)  # the evaluator's own working directory
    in_tmp = tmp_path / "sentinel"
    in_tmp.write_text("still here")
    for target in (outside_dir, tmp_path):
        result = sandbox.run(f"import shutil\nshutil.rmtree({str(target)!r})")
        assert not result.passed and ("PermissionError" in result.detail or "FileNotFoundError" in result.detail)
    assert (outside_dir / "sentinel").read_text() == "still here"
    assert in_tmp.read_text() == "still here"


def test_no_network_not_even_loopback(sandbox: Sandbox, needs_full_tier: None) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        result = sandbox.run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).close()")
        assert not result.passed and "OSError" in result.detail
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody ever connected


def test_basic_tier_when_isolation_is_off(tmp_path: Path) -> None:
    basic = Sandbox(SandboxLimits(timeout_s=2.0, isolate=False))
    report = basic.probe()
    assert report.tier == "basic" and "NOT isolated" in report.describe()
    assert basic.run("import os\nassert os.getcwd() == os.path.expanduser('~')").passed
    assert basic.run("while True:\n    pass").outcome == "timeout"


# -- the second red-team run ------------------------------------------------------------------

SIXTEEN_HOGS = """
import os, time
children = []
for _ in range(15):  # with the program itself, 16 processes, each well under its own address-space limit
    pid = os.fork()
    if pid == 0:
        block = b"x" * (120 * 2**20)  # touched, so resident: 1.8 GiB in all
        time.sleep(2)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""


@pytest.mark.parametrize("cgroups", [True, False])
def test_sixteen_processes_together_stay_under_the_total_memory_cap(cgroups: bool) -> None:
    """The red team's input: memory was capped per process only, so 16 processes had 16 times the cap. The
    kernel's cgroup (where the evaluator may make one) or the counting fallback caps them together."""
    sandbox = Sandbox(SandboxLimits(timeout_s=8.0, memory_bytes=256 * MiB, processes=16,
                                    total_memory_bytes=512 * MiB, cgroups=cgroups))
    how = memory_cap(512 * MiB, "probe", cgroups)
    how.close()  # which kind of cap this machine gives: the result names it
    result = sandbox.run(SIXTEEN_HOGS)
    assert not result.passed and "together used more than 512 MiB" in result.detail and how.how in result.detail
    assert cgroups or how.how == "counted"


def test_no_user_namespace_mount_or_ptrace_inside(sandbox: Sandbox) -> None:
    """The red team's input: unshare(CLONE_NEWUSER) succeeded inside. A seccomp filter refuses it, and
    the other calls a test program never needs; fork, threads and subprocesses still work."""
    program = """
import ctypes, os, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
assert libc.unshare(0x10000000) == -1 and ctypes.get_errno() == 1, "unshare(CLONE_NEWUSER) succeeded"
assert libc.syscall(56 if os.uname().machine == "x86_64" else 220, 0x10000000 | 17, 0, 0, 0, 0) == -1
assert libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) == -1 and libc.ptrace(0, 0, 0, 0) == -1
pid = os.fork()
if pid == 0:
    os._exit(7)
assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7
assert subprocess.run(["true"]).returncode == 0
worker = threading.Thread(target=lambda: None)
worker.start()
worker.join()
"""
    result = sandbox.run(program)
    assert result.passed, result.detail


def test_run_is_private_so_nothing_is_left_on_the_host(sandbox: Sandbox, needs_full_tier: None) -> None:
    """The red team's input: files written to /run/lock landed on the host and stayed there."""
    marker = f"playground-{os.getpid()}"
    result = sandbox.run(f"import os\nos.makedirs('/run/lock', exist_ok=True)\n"
                         f"open('/run/lock/{marker}', 'w').write('x')\n")
    assert result.passed, result.detail
    assert not os.path.exists(f"/run/lock/{marker}")
