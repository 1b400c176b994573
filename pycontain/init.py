"""The container's first process: a fresh interpreter that builds the container, then execs.

`runtime` starts `python -I -S -c <boot> SPEC_FD REPORT_FD` with `subprocess` (never from a
thread-unsafe fork of the notebook kernel: see DESIGN, "The process model"). This process

1. reads the spec, one message, from SPEC_FD (the same pipe later carries the parent's answers),
2. asks the kernel to kill it if its parent dies (PR_SET_PDEATHSIG),
3. with a user namespace, unshares it alone first and waits ({"sync": "userns"}) while the
   parent writes its uid_map and gid_map (lesson 09); then calls unshare(2) with every other
   requested CLONE_NEW* flag at once,
4. makes every mount private before it mounts anything (else mounts leak to the host, lesson 04),
5. writes the time namespace's offsets (lesson 11), then forks once when a PID or time
   namespace was asked for, because unshare(CLONE_NEWPID) moves only the
   caller's future children: the child is PID 1 inside; this process stays outside, reports the
   child's PID, waits, and exits the way the child did (like `unshare --fork`),
6. sets the hostname, enters the root filesystem, closes every inherited fd >= 3, and execs;
   with `init` (`pycontain run --init`) it forks once more first and stays PID 1, reaping and
   forwarding signals, while the command runs as PID 2 (`become_init`, lesson 03).
   A cgroup namespace is unshared last, after the parent's "created" step placed the process
   in its cgroup (lesson 10).

Everything it reports goes to REPORT_FD as messages (see `Channel`): `{"pid": N}`,
`{"sync": step}` (then it waits for the parent's `{"go": True}` on SPEC_FD), or
`{"error": ...}` (see `errors.to_wire`).
REPORT_FD is close-on-exec, so the parent sees EOF exactly when exec succeeded.

Imports are kept few on purpose: this module's start-up is most of a container's start-up time.
Runtimes do the same: runc re-executes itself as `runc init`, crun forks a C helper.
"""

from __future__ import annotations

# _signal is the C half of `signal`: the same functions and constants, without building the
# Signals/Handlers enums at import (~0.5 ms of every container start; bench/).
import _signal as signal
import marshal
import os
import sys

from pycontain import syscalls
from pycontain.errors import EXIT_RUNTIME_ERROR, ProcessError, SyscallError, exit_status, to_wire
from pycontain.syscalls import NAMESPACE_FLAGS, CloneFlag, MountFlag, PrctlOption

# Nothing may be imported late in this module: once the container's root is pivoted (that moves
# the root of every process in the mount namespace, the outer half of init too) the interpreter's
# library is out of reach.

# `typing` costs milliseconds in a fresh interpreter, and this is the module every container's
# first process runs; annotations are never evaluated at run time (PEP 563): only checkers need it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Channel:
    """One end of the conversation with the other side: messages in on `in_fd`, out on `out_fd`.

    A message is a dict of plain values (str, int, list, dict, None), framed as a 4-byte length
    and the bytes of marshal.dumps(). marshal rather than JSON: it is built into the interpreter,
    while `import json` (and the `re` it pulls in) costs milliseconds on every container start.
    Both ends are the same interpreter (`sys.executable`), so the format always matches.
    """

    def __init__(self, in_fd: int, out_fd: int) -> None:
        self.in_fd = in_fd
        self.out_fd = out_fd

    def _read_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = os.read(self.in_fd, size - len(data))
            if not chunk:
                if data:
                    raise EOFError("the other side closed the pipe in the middle of a message")
                return b""
            data += chunk
        return data

    def receive(self) -> dict[str, Any] | None:
        """The next message, or None when the other side closed its end (for init: exec'd)."""
        header = self._read_exactly(4)
        if not header:
            return None
        message: dict[str, Any] = marshal.loads(self._read_exactly(int.from_bytes(header, "big")))
        return message

    def send(self, **message: Any) -> None:
        data = marshal.dumps(message)
        os.write(self.out_fd, len(data).to_bytes(4, "big") + data)

    def sync(self, step: str, **details: Any) -> None:
        """Tell the parent we reached `step` and wait until it has done its part."""
        self.send(sync=step, **details)
        answer = self.receive()
        if not answer or not answer.get("go"):  # namespaces exist by now: not bad input
            raise ProcessError(f"the parent answered {answer!r} at the {step!r} step, not go",
                               hint="the process that starts the container failed or ended; "
                                    "its own error says why")


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
        # No core dump of this interpreter: it would hide the container's own. A process that is
        # not dumpable leaves none (prctl(2), PR_SET_DUMPABLE).
        syscalls.prctl(PrctlOption.PR_SET_DUMPABLE, 0)
        os.kill(os.getpid(), killer)
    os._exit(os.waitstatus_to_exitcode(status))


def setup(spec: dict[str, Any], channel: Channel) -> None:
    """Build the container around this process, in the order the kernel requires."""
    names: list[str] = spec["namespaces"]
    if spec.get("init"):
        # Imported now, not where it runs: PID 1 runs its loop after pivot_root, when the
        # interpreter's library is out of reach (see the top of this module).
        from pycontain.namespaces import pid  # noqa: F401
    # The cgroup namespace comes last (below): its root is the cgroup the process is in when
    # it unshares, and the parent places it in the container's cgroup only at "created".
    if "user" in names:
        # The user namespace first, alone: it grants the capabilities the others need. Its maps
        # are written from outside, by the parent, while we wait (lesson 09).
        from pycontain.namespaces import user

        user.drop_groups()
        syscalls.unshare(CloneFlag.CLONE_NEWUSER)
        channel.sync("userns", userns_pid=os.getpid())
        user.become_root()
    unshare_namespaces([name for name in names if name not in ("cgroup", "user")])
    if "mnt" in names:
        # unshare(CLONE_NEWNS) copies the mounts with their propagation: on a shared "/", a mount
        # made now would appear on the host too. Make them all private first (lesson 04).
        syscalls.mount(None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE)
    if "time" in names:
        # Only this process's children enter the new time namespace, and its offsets can be set
        # only until the first one has (lesson 11): now, then fork below.
        from pycontain.namespaces import time

        time.write_offsets(spec.get("time_offsets") or {})
    if "pid" in names or "time" in names:
        # Both namespaces take only the caller's future children: the child is the container.
        child = os.fork()  # safe: this interpreter runs one thread
        if child:
            channel.send(pid=child)
            os.close(channel.out_fd)  # the child's copy now decides when the parent sees EOF
            os.close(channel.in_fd)
            mirror_exit(child)
        die_with_parent(None)  # the fork cleared PDEATHSIG
    else:
        channel.send(pid=os.getpid())
    apply_hostname(spec.get("hostname"))
    if spec.get("rootfs"):
        from pycontain.fs import rootfs

        root = spec["rootfs"]
        if spec.get("overlay"):  # the image stays read-only under a writable layer (lesson 06)
            from pycontain.fs import layers

            overlay = spec["overlay"]
            layers.mount_overlay(overlay["merged"], overlay["lowers"], overlay["upper"],
                                 overlay["work"], volatile=overlay.get("volatile", False))
            root = overlay["merged"]
        rootfs.enter(root, mount_proc="pid" in names, own_net="net" in names,
                     read_only=spec.get("read_only", False),
                     switch=spec.get("root_switch") or "pivot_root")
    elif "pid" in names and "mnt" in names:
        # A fresh /proc so that `ps` shows the container's processes only (lesson 03).
        syscalls.mount("proc", "/proc", "proc", MountFlag.MS_NOSUID | MountFlag.MS_NODEV
                       | MountFlag.MS_NOEXEC)
    if spec.get("sync_before_exec"):
        channel.sync("created")
    if "cgroup" in names:
        # After "created": with limits the parent has moved us into the container's cgroup by
        # now, so that cgroup becomes `/` inside (lesson 10); without, the caller's cgroup does.
        try:
            syscalls.unshare(CloneFlag.CLONE_NEWCGROUP)
        except SyscallError as e:
            e.add_note("while creating the cgroup namespace")
            raise
    syscalls.chdir(spec.get("cwd") or "/")


def unshare_namespaces(names: list[str]) -> None:
    """Move this process into a new namespace of each type in `names`, with one unshare(2)
    (lesson 02). It is this process's own namespaces that change: it becomes the container."""
    if not names:
        return
    try:
        syscalls.unshare(flags_for(names))  # "uts" -> CLONE_NEWUTS, "mnt" -> CLONE_NEWNS, ...
    except SyscallError as e:
        e.add_note(f"while creating the namespaces {', '.join(names)}")
        raise


def apply_hostname(hostname: str | None) -> None:
    """sethostname(2), once this process is in its own UTS namespace: only the copy of the
    name that unshare(CLONE_NEWUTS) made changes, the host keeps its own (lesson 02)."""
    if not hostname:
        return
    from pycontain.namespaces import uts

    uts.set_hostname(hostname)


def become_init() -> None:
    """`--init`: fork the command as PID 2 and stay PID 1, a minimal init (lesson 03).

    Returns in the child, which goes on to exec the command. The parent never returns: it
    reaps every child and forwards signals until the command ends, then exits as it did.
    """
    from pycontain.namespaces import pid  # already loaded by setup, before pivot_root

    # Blocked from before the fork until reap_until has its handlers: PID 1 would drop a signal
    # that came in between, while the kernel keeps a blocked one pending (tini does the same).
    unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, pid.FORWARDED_SIGNALS)
    child = os.fork()  # safe: this interpreter runs one thread
    if child == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)  # a mask survives execve(2)
        return
    os.closerange(3, 1 << 16)  # the report pipe too: the command's exec alone now means EOF
    os._exit(pid.exit_status(pid.reap_until(child)))


def execute(spec: dict[str, Any], channel: Channel) -> None:
    """Close inherited descriptors and exec the command; return only by raising."""
    # The interpreter ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across
    # execve(2): give the command the default dispositions, as subprocess (restore_signals) does.
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    keep = channel.out_fd
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)
    os.set_inheritable(keep, False)  # close-on-exec: exec success = EOF for the parent
    argv: list[str] = spec["argv"]
    syscalls.execve(spec["executable"], argv, spec["env"])


def main(argv: list[str] | None = None) -> None:
    """Entry point: `python -m pycontain.init SPEC_FD REPORT_FD`."""
    args = sys.argv[1:] if argv is None else argv
    channel = Channel(int(args[0]), int(args[1]))
    try:
        spec = channel.receive()
        if spec is None:
            raise EOFError("the parent closed the spec pipe before sending the spec")
        die_with_parent(spec["parent_pid"])
        setup(spec, channel)
        if spec.get("init"):
            become_init()
        execute(spec, channel)
    except BaseException as exc:  # every failure crosses back to the parent, then we exit
        try:
            channel.send(error=to_wire(exc))
        except OSError:
            pass
        os._exit(exit_status(exc))  # 125, 126 or 127, as the command's exit status would be
    os._exit(EXIT_RUNTIME_ERROR)


if __name__ == "__main__":
    main()
