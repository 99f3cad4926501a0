"""The sandbox launcher: the small trusted program that starts one untrusted test program.

``sandbox.py`` runs this file as ``python -I _launch.py CONFIG_JSON`` in a new
session. It is a separate, single-threaded process on purpose: dropping
privileges from a ``preexec_fn`` inside the multi-threaded evaluator could
deadlock the forked child, while here nothing else is running.

When it runs as root and the kernel allows namespaces (the "full" tier), it:

1. unshares the network, mount and PID namespaces: the program sees only a
   loopback device that is down, so every connect fails;
2. mounts fresh, size-capped tmpfs on /tmp, /var/tmp, /dev/shm and /run, so what
   the program writes vanishes with it and cannot fill the disk;
3. makes the interpreter reachable for an unprivileged user when it lives
   under a closed directory such as /root (pyenv), by mounting an empty tmpfs
   over that directory and binding only the interpreter back, read-only;
4. forks the program as PID 1 of the new PID namespace, with its own /proc,
   under a throwaway uid that owns nothing on the host, with rlimits and a
   parent-death signal. When the program (PID 1) or this launcher dies, the
   kernel kills every process left in the namespace, even ones that called
   ``setsid``.

Otherwise (the "basic" tier: not root, or namespaces refused) it only sets
rlimits and runs the program in the temp directory the evaluator made.
Before forking it writes what it achieved to ``status`` as JSON.

In both tiers it first joins the run's memory group (a cgroup the evaluator
made, ``memory_cap.py``), so every process of the program counts against one
cap, and the program runs under a seccomp filter that refuses new namespaces,
mounts, ptrace and other calls a test program never needs.

Only the standard library is used: this file runs outside the app's imports.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 32, 4096, 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
# The world-writable places a program could fill, or leave files in for later (/run/lock is on the host).
SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run")


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    def raw(text: str | None) -> bytes | None:
        return None if text is None else os.fsencode(text)

    _check(libc.mount(raw(source), raw(target), raw(fstype), ctypes.c_ulong(flags), raw(data)), f"mount {target}")


def _expose(libc: ctypes.CDLL, closed: str, inner: str, stash: str) -> None:
    """Hide ``closed`` behind an empty tmpfs, then bind ``inner`` (below it) back, read-only."""
    _mount(libc, inner, stash, None, MS_BIND | MS_REC)
    _mount(libc, "tmpfs", closed, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    os.makedirs(inner, mode=0o755, exist_ok=True)
    _mount(libc, stash, inner, None, MS_BIND | MS_REC)
    _mount(libc, None, inner, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    _check(libc.umount2(os.fsencode(stash), MNT_DETACH), f"umount {stash}")


def _isolate(libc: ctypes.CDLL, config: dict[str, Any], program: bytes) -> str:
    """Lay out the program's view of the filesystem in the new mount namespace; returns its home."""
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)  # nothing below leaks back to the host
    for closed, inner in config["expose"]:
        _expose(libc, closed, inner, config["stash"])
    size = f"size={config['scratch_bytes']}"
    for path in SCRATCH_DIRS:
        if os.path.isdir(path):
            _mount(libc, "tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,{size}")
    # Home works like /tmp: the program may create and delete its own files there, but home itself
    # and program.py belong to root, so `rm -rf ~` fails loudly instead of quietly succeeding.
    home = "/tmp/home"
    os.mkdir(home)
    os.chmod(home, 0o1777)
    with open(f"{home}/program.py", "wb") as copy:
        copy.write(program)
    return home


def _limit(config: dict[str, Any]) -> None:
    limits = {
        resource.RLIMIT_AS: config["memory_bytes"],
        resource.RLIMIT_CPU: config["cpu_seconds"],
        resource.RLIMIT_FSIZE: config["file_bytes"],
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_NOFILE: 256,
        resource.RLIMIT_NPROC: config["processes"],
    }
    for kind, value in limits.items():
        _, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)  # without root a limit can only be lowered
        resource.setrlimit(kind, (value, value))  # soft = hard: the program cannot raise them


# -- seccomp: the system calls a test program never needs, refused with EPERM ------------------------
# A HumanEval program computes and prints. These let a program build namespaces of its own (where it
# would be root again), mount, trace other processes, load kernel code or reach the kernel's keyrings.
# Numbers per architecture (asm/unistd.h); another architecture gets no filter, and the status says so.
_ARCHES = {
    "x86_64": (0xC000003E, 56, 435, {"unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155,
                                     "ptrace": 101, "bpf": 321, "perf_event_open": 298, "keyctl": 250,
                                     "add_key": 248, "request_key": 249, "userfaultfd": 323, "kexec_load": 246,
                                     "init_module": 175, "finit_module": 313, "delete_module": 176,
                                     "open_by_handle_at": 304, "open_tree": 428, "move_mount": 429, "fsopen": 430,
                                     "fsmount": 432, "mount_setattr": 442}),
    "aarch64": (0xC00000B7, 220, 435, {"unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41,
                                       "ptrace": 117, "bpf": 280, "perf_event_open": 241, "keyctl": 219,
                                       "add_key": 217, "request_key": 218, "userfaultfd": 282, "kexec_load": 104,
                                       "init_module": 105, "finit_module": 273, "delete_module": 106,
                                       "open_by_handle_at": 265, "open_tree": 428, "move_mount": 429, "fsopen": 430,
                                       "fsmount": 432, "mount_setattr": 442}),
}
_NEW_NAMESPACES = 0x10000000 | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | 0x04000000 | 0x08000000 | 0x02000000
_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _EPERM, _ENOSYS = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38


def _seccomp_program(arch: int, clone: int, clone3: int, denied: list[int]) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jump if true, jump if false, k). Another ABI (i386's int 0x80, x32's high
    numbers) is refused outright: its numbers differ, so this list would not hold there."""
    body: list[tuple[int, str | int, str | int, int]] = [
        (_LD_ABS, 0, 0, 4), (_JEQ, 0, "deny", arch), (_LD_ABS, 0, 0, 0), (_JGE, "deny", 0, 0x40000000),
        *[(_JEQ, "deny", 0, number) for number in denied],
        (_JEQ, "nosys", 0, clone3),  # clone3 hides its flags in memory: "not here" makes libc use clone
        (_JEQ, 0, "allow", clone), (_LD_ABS, 0, 0, 16), (_JSET, "deny", "allow", _NEW_NAMESPACES),
    ]
    labels = {"allow": len(body), "deny": len(body) + 1, "nosys": len(body) + 2}
    program = [(code, _offset(jt, i, labels), _offset(jf, i, labels), k) for i, (code, jt, jf, k) in enumerate(body)]
    return [*program, (_RET, 0, 0, _ALLOW), (_RET, 0, 0, _EPERM), (_RET, 0, 0, _ENOSYS)]


def _offset(target: str | int, at: int, labels: dict[str, int]) -> int:
    return target if isinstance(target, int) else labels[target] - at - 1


def _seccomp(libc: ctypes.CDLL) -> bool:
    """Install the filter on this process (and so on all it starts); False where the architecture has none."""
    arch = _ARCHES.get(os.uname().machine)
    if arch is None:
        return False
    program = _seccomp_program(arch[0], arch[1], arch[2], list(arch[3].values()))

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(program))(*[Filter(*instruction) for instruction in program])
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    fprog = Program(len(program), filters)
    _check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "prctl(SECCOMP)")
    return True


def _become_program(libc: ctypes.CDLL, config: dict[str, Any], home: str, full: bool) -> None:
    """In the forked child: finish the set-up, drop privileges and exec the interpreter."""
    try:
        if full:
            _mount(libc, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV)  # only this namespace's processes
        os.chdir(home)
        _limit(config)
        if full:
            os.setgroups([])
            os.setgid(config["uid"])
            os.setuid(config["uid"])
        # Set after the uid change (which clears it): the program dies with this launcher.
        _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
        _seccomp(libc)  # last: nothing of the set-up above is a system call the filter refuses
        env = {**config["env"], "HOME": home, "TMPDIR": home}
        os.execve(config["python"], [config["python"], "-I", f"{home}/program.py"], env)
    except BaseException as exc:  # anything at all: never fall through into the launcher's own code
        os.write(2, f"sandbox set-up failed: {exc}\n".encode())
    os._exit(125)


def main(argv: list[str]) -> int:
    config: dict[str, Any] = json.loads(argv[1])
    libc = _libc()
    if config.get("cgroup_procs"):  # join the run's memory group first: whatever forks later is in it
        with open(config["cgroup_procs"], "w", encoding="ascii") as procs:
            procs.write(str(os.getpid()))
    full, reason, home = False, "", config["home"]
    status = open(config["status"], "w", encoding="utf-8")  # opened first: its folder is hidden below
    with open(config["program"], "rb") as source:
        program = source.read()  # likewise
    if not config["isolate"]:
        reason = "isolation turned off"
    elif os.geteuid() != 0:
        reason = "not running as root"
    elif libc.unshare(CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID) != 0:
        reason = f"the kernel refused new namespaces ({os.strerror(ctypes.get_errno())})"
    else:
        # Past this point a failure is fatal (exit 1): a half-built view must not run the program.
        home, full = _isolate(libc, config, program), True
    with status:
        json.dump({"tier": "full" if full else "basic", "reason": reason}, status)
    child: list[int] = []

    def stop(signum: int, frame: object) -> None:
        # The evaluator's timeout or Ctrl-C: kill the program and still reap it below, so nothing
        # is left for init to collect. Without a child yet, just leave.
        if not child:
            os._exit(128 + signum)
        os.kill(child[0], signal.SIGKILL)

    signal.signal(signal.SIGTERM, stop)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _become_program(libc, config, home, full)
    child.append(pid)
    _, wait_status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(wait_status)
    return code if code >= 0 else 128 - code  # like a shell: 128 + the signal number


if __name__ == "__main__":
    sys.exit(main(sys.argv))
