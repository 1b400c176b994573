"""The container's first process: a fresh interpreter that builds the container, then execs.

`runtime` starts `python -I -S -c <boot> SPEC_FD REPORT_FD` with `subprocess` (never from a
thread-unsafe fork of the notebook kernel: see DESIGN, "The process model"). This process

1. reads the spec, one JSON line, from SPEC_FD (the same pipe later carries the parent's answers),
2. asks the kernel to kill it if its parent dies (PR_SET_PDEATHSIG),
3. calls unshare(2) with every requested CLONE_NEW* flag at once,
4. makes every mount private before it mounts anything (else mounts leak to the host, lesson 04),
5. forks once when a PID namespace was asked for, because unshare(CLONE_NEWPID) moves only the
   caller's future children: the child is PID 1 inside; this process stays outside, reports the
   child's PID, waits, and exits the way the child did (like `unshare --fork`),
6. sets the hostname, enters the root filesystem, closes every inherited fd >= 3, and execs.

Everything it reports goes to REPORT_FD as JSON lines: `{"pid": N}`, `{"sync": step}` (then it
waits for the parent's `{"go": true}` on SPEC_FD), or `{"error": ...}` (see `errors.to_wire`).
REPORT_FD is close-on-exec, so the parent sees EOF exactly when exec succeeded.

Imports are kept few on purpose: this module's start-up is most of a container's start-up time.
Runtimes do the same: runc re-executes itself as `runc init`, crun forks a C helper.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import warnings  # noqa: F401  (see below)

from pycontain import syscalls
from pycontain.errors import SpecError, SyscallError, to_wire
from pycontain.syscalls import NAMESPACE_FLAGS, CloneFlag, MountFlag, PrctlOption

# `resource` and `warnings` are imported up front, though used late: once the container's root
# is pivoted (that moves the root of every process in the mount namespace, the outer half of init
# too) the interpreter's library is out of reach. os.execvpe imports `warnings` on first use (in
# os.get_exec_path); mirror_exit needs `resource`.

# `typing` costs milliseconds in a fresh interpreter, and this is the module every container's
# first process runs; annotations are never evaluated at run time (PEP 563): only checkers need it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Exit statuses follow the shell (and `docker run`): 125 the runtime failed, 126 the command
# could not be executed, 127 it was not found.
EXIT_RUNTIME_ERROR = 125
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127


class Channel:
    """The two pipes to the parent: JSON lines out on `report_fd`, answers in on `spec_fd`."""

    def __init__(self, spec_fd: int, report_fd: int) -> None:
        self.spec_fd = spec_fd
        self.report_fd = report_fd
        self._buffer = b""

    def receive(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            chunk = os.read(self.spec_fd, 65536)
            if not chunk:
                raise EOFError("the parent closed the spec pipe")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def send(self, **message: Any) -> None:
        os.write(self.report_fd, json.dumps(message).encode() + b"\n")

    def sync(self, step: str) -> None:
        """Tell the parent we reached `step` and wait until it has done its part."""
        self.send(sync=step)
        answer = self.receive()
        if not answer.get("go"):
            raise SpecError("sync", "answered with go", answer)


def die_with_parent(parent_pid: int | None) -> None:
    """PR_SET_PDEATHSIG: SIGKILL this process when the process that started it exits.

    `parent_pid` guards the race where the parent died before prctl(2) took effect. PID 1 of a
    new PID namespace passes None: its parent lives outside, so getppid(2) returns 0 there.
    """
    syscalls.prctl(PrctlOption.PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(EXIT_RUNTIME_ERROR)


def flags_for(names: list[str]) -> CloneFlag:
    """The unshare(2) flags for a list of namespace names.

    >>> flags_for(["uts", "pid"]) == CloneFlag.CLONE_NEWUTS | CloneFlag.CLONE_NEWPID
    True
    """
    flags = CloneFlag(0)
    for name in names:
        flags |= NAMESPACE_FLAGS[name]
    return flags


def mirror_exit(child: int) -> None:
    """Wait for `child` and end this process the same way: same code, or same signal."""
    # Forward the signals a terminal or `Container.kill` may send us to the container.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, lambda signum, _frame: os.kill(child, signum))
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            os._exit(EXIT_RUNTIME_ERROR)
    if os.WIFSIGNALED(status):
        killer = os.WTERMSIG(status)
        if killer not in (signal.SIGKILL, signal.SIGSTOP):  # these two take no handler (EINVAL)
            signal.signal(killer, signal.SIG_DFL)
        # No core dump of this interpreter: it would hide the container's own.
        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
        os.kill(os.getpid(), killer)
    os._exit(os.waitstatus_to_exitcode(status))


def setup(spec: dict[str, Any], channel: Channel) -> None:
    """Build the container around this process, in the order the kernel requires."""
    names: list[str] = spec["namespaces"]
    if names:
        try:
            syscalls.unshare(flags_for(names))
        except SyscallError as e:
            e.add_note(f"while creating the namespaces {', '.join(names)}")
            raise
    if "mnt" in names:
        # unshare(CLONE_NEWNS) copies the mounts with their propagation: on a shared "/", a mount
        # made now would appear on the host too. Make them all private first (lesson 04).
        syscalls.mount(None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE)
    if "pid" in names:
        child = os.fork()  # safe: this interpreter runs one thread
        if child:
            channel.send(pid=child)
            os.close(channel.report_fd)  # the child's copy now decides when the parent sees EOF
            os.close(channel.spec_fd)
            mirror_exit(child)
        die_with_parent(None)  # the fork cleared PDEATHSIG
    else:
        channel.send(pid=os.getpid())
    if spec.get("hostname"):
        from pycontain.namespaces import uts

        uts.set_hostname(spec["hostname"])
    if spec.get("rootfs"):
        from pycontain import rootfs

        rootfs.enter(spec["rootfs"], mount_proc="pid" in names)
    elif "pid" in names and "mnt" in names:
        # A fresh /proc so that `ps` shows the container's processes only (lesson 03).
        syscalls.mount("proc", "/proc", "proc", MountFlag.MS_NOSUID | MountFlag.MS_NODEV
                       | MountFlag.MS_NOEXEC)
    if spec.get("sync_before_exec"):
        channel.sync("created")
    syscalls.chdir(spec.get("cwd") or "/")


def execute(spec: dict[str, Any], channel: Channel) -> None:
    """Close inherited descriptors and exec the command; return only by raising."""
    keep = channel.report_fd
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)
    os.set_inheritable(keep, False)  # close-on-exec: exec success = EOF for the parent
    argv: list[str] = spec["argv"]
    syscalls.execvpe(argv[0], argv, spec["env"])


def main(argv: list[str] | None = None) -> None:
    """Entry point: `python -m pycontain.init SPEC_FD REPORT_FD`."""
    args = sys.argv[1:] if argv is None else argv
    channel = Channel(int(args[0]), int(args[1]))
    code = EXIT_RUNTIME_ERROR
    try:
        spec = channel.receive()
        die_with_parent(spec["parent_pid"])
        setup(spec, channel)
        execute(spec, channel)
    except BaseException as exc:  # every failure crosses back to the parent, then we exit
        if isinstance(exc, SyscallError) and exc.call == "execve":
            code = EXIT_NOT_FOUND if exc.errno == 2 else EXIT_CANNOT_EXECUTE
        try:
            channel.send(error=to_wire(exc))
        except OSError:
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
