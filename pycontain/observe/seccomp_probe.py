"""One system call made in a container under a seccomp filter, and what came of it (lesson 21).

`try_call("mkdir", profile, directory)` starts a container under `profile` (Docker's JSON
format, as `security.seccomp.load` reads it) that makes one call and prints the kernel's
answer: `done`, or the errno (`EPERM Operation not permitted`); or it dies, and the container's
status says by which signal (SIGSYS: 128 + 31 = 159, a seccomp kill). The kernel's seccomp
records about it, if it logged any and the log can be read here, come with it
(`observe.kernel_log`). `profile_for(call, action)` is the smallest profile that gives one of
these calls one action and allows everything else.

The calls, as the probe makes them: `unshare` a user namespace (which needs no capability: only
a filter refuses it), `mkdir` in `directory`, `uname`, `sync`, `getpid`, `write` a file in
`directory`, `fork` a child and wait for it. And the other ways into a user namespace (lesson
21's stretch): `clone-newuser` and `clone3-newuser`, a child in a new user namespace made by
clone(2) and by clone3(2) (whose flags are in a struct in memory, out of a filter's sight);
`unshare-newuts`, a new UTS namespace only (root's, with CAP_SYS_ADMIN); `unshare-newuser-newuts`,
both at once; and `thread`, a thread started as the C library does it (clone3, and clone when
clone3 answers ENOSYS).

See also: seccomp(2), unshare(2), clone(2), mkdir(2), fork(2); signal(7) (SIGSYS).
"""

from __future__ import annotations

import sys
from collections import namedtuple
from typing import Any

from pycontain import runtime
from pycontain.observe import kernel_log

#: each call the probe makes -> the names a profile gives it (aarch64 has mkdirat only)
CALLS = {"unshare": ["unshare"], "mkdir": ["mkdir", "mkdirat"], "uname": ["uname"],
         "sync": ["sync"], "getpid": ["getpid"], "write": ["write"], "fork": ["clone", "fork"],
         "clone-newuser": ["clone"], "clone3-newuser": ["clone3"], "unshare-newuts": ["unshare"],
         "unshare-newuser-newuts": ["unshare"], "thread": ["clone3", "clone"]}
#: the actions whose result the kernel logs when actions_logged lists them (an ERRNO, a TRAP
#: or a TRACE only with SECCOMP_FILTER_FLAG_LOG, which pycontain does not set)
LOGGED = ("SCMP_ACT_LOG", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL")
#: how long to wait for a record the kernel will write (kauditd prints it a moment later)
LOG_WAIT_S = 2.0

#: what the container runs: make one call, print `done` or the errno's name and text
_PROBE = r"""
import ctypes, errno, os, sys, time
call, directory = sys.argv[1], sys.argv[2]
NEWUSER, NEWUTS, SIGCHLD = 0x10000000, 0x04000000, 17  # CLONE_NEWUSER, CLONE_NEWUTS
CLONE, CLONE3 = {"x86_64": 56, "aarch64": 220}[os.uname().machine], 435
libc = ctypes.CDLL(None, use_errno=True)

def unshare(flags):
    if libc.unshare(flags) == -1:
        raise OSError(ctypes.get_errno(), "unshare")

def reap(pid):  # what clone(2) or clone3(2) returned, as fork(2) would: the child exits 7
    if pid == 0:
        os._exit(7)
    if pid == -1:
        raise OSError(ctypes.get_errno(), "clone")
    if os.waitpid(pid, 0)[1] != 7 << 8:
        raise OSError(errno.ECHILD, "the child did not exit 7")

try:
    if call == "unshare":
        unshare(NEWUSER)
    elif call == "unshare-newuts":
        unshare(NEWUTS)
    elif call == "unshare-newuser-newuts":
        unshare(NEWUSER | NEWUTS)
    elif call == "clone-newuser":  # no new stack: the child goes on from here, as after fork
        reap(libc.syscall(CLONE, ctypes.c_ulong(NEWUSER | SIGCHLD), 0, 0, 0, 0))
    elif call == "clone3-newuser":  # struct clone_args: flags, pidfd, child_tid, parent_tid,
        arguments = (ctypes.c_uint64 * 8)(NEWUSER, 0, 0, 0, SIGCHLD, 0, 0, 0)  # exit_signal...
        reap(libc.syscall(CLONE3, arguments, ctypes.c_size_t(ctypes.sizeof(arguments))))
    elif call == "thread":
        import threading
        try:
            started = threading.Thread(target=lambda: None)
            started.start()
            started.join()
        except RuntimeError:  # "can't start new thread": pthread_create's errno is gone
            raise OSError(errno.EAGAIN, "pthread_create") from None
    elif call == "mkdir":
        os.mkdir(os.path.join(directory, f"made-{time.time_ns()}"))
    elif call == "uname":
        os.uname()
    elif call == "sync":
        os.sync()
    elif call == "getpid":
        os.getpid()
    elif call == "write":
        fd = os.open(os.path.join(directory, "written"), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"hello")
        os.close(fd)
    elif call == "fork":
        reap(os.fork())
    print("done", flush=True)
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)), os.strerror(e.errno), flush=True)
"""


class CallAnswer(namedtuple("CallAnswer", "call answer result records")):
    """What one call got: `answer` as the process saw it (`done`, `EPERM Operation not
    permitted`, or how it ended: `killed by signal 31 (SIGSYS)`), the container's `result`,
    and the seccomp `records` the kernel logged for it (None: the log cannot be read here)."""

    __slots__ = ()

    @property
    def errno_name(self) -> str | None:
        """`EPERM` and the like when the call failed, else None."""
        words = self.answer.split()
        return words[0] if words and words[0].startswith("E") else None

    def __str__(self) -> str:
        logged = ("the log cannot be read here" if self.records is None else
                  "; ".join(f"{r.action} syscall={r.syscall} sig={r.signal}"
                            for r in self.records) or "nothing")
        return f"{self.call}: {self.answer} (status {self.result.status}; logged: {logged})"


def profile_for(call: str, action: str, errno: int = 1) -> dict[str, Any]:
    """The profile that gives `call` (a key of CALLS) `action`, and allows the rest.

    >>> profile_for("unshare", "SCMP_ACT_ERRNO")["syscalls"]
    [{'names': ['unshare'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 1}]
    """
    if call not in CALLS:
        raise ValueError(f"`call` must be one of {', '.join(CALLS)}, got {call!r}")
    rule: dict[str, Any] = {"names": CALLS[call], "action": action}
    if action == "SCMP_ACT_ERRNO":
        rule["errnoRet"] = errno
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}


def argv(call: str, directory: str) -> list[str]:
    """The command that makes `call` (with this interpreter: the container has no rootfs)."""
    if call not in CALLS:
        raise ValueError(f"`call` must be one of {', '.join(CALLS)}, got {call!r}")
    return [sys.executable, "-I", "-S", "-c", _PROBE, call, directory]


def try_call(call: str, seccomp: object, directory: str, **options: Any) -> CallAnswer:
    """Run the probe of `call` in a container with `seccomp=` (any form Spec takes) and the
    other `options` of `pycontain.run`; return what it saw, and what the kernel logged."""
    with kernel_log.KernelLog() as log:
        result = runtime.run(argv(call, directory), seccomp=seccomp, timeout_s=30, **options)
        if result.signal is not None:
            answer = result.reason
        else:
            answer = result.stdout.strip() or f"exited {result.status}: {result.stderr.strip()}"
        logged = _expects_a_record(seccomp, call)
        records = (log.seccomp(result.pid, wait_s=LOG_WAIT_S if logged else 0.0)
                   if log.readable else None)
    return CallAnswer(call, answer, result, records)


def _expects_a_record(seccomp: object, call: str) -> bool:
    """Whether a rule for `call` in a dict profile has an action the kernel logs."""
    if not isinstance(seccomp, dict):
        return False
    return any(rule.get("action") in LOGGED and set(rule.get("names") or ()) & set(CALLS[call])
               for rule in seccomp.get("syscalls") or ())
