"""The container's first process: a fresh interpreter that builds the container, then execs.

`runtime` has the caller's fork server (`pycontain.forkserver`, a lean `python -I -S` that has
imported this module) fork it and call `main([SPEC_FD, REPORT_FD])`, never a thread-unsafe
fork of the notebook kernel (DESIGN, "The process model"); the `pycontain` command forks it
itself. This process reads
the spec, one message, from SPEC_FD (the same pipe later carries the parent's answers), then
runs `STEPS`, in the order the kernel requires, each a function of the spec (and the channel
to the parent) that does nothing unless the spec asks for it:

- the user namespace first, alone, since it grants the capabilities the others need; the
  parent writes its uid_map and gid_map while we wait ({"sync": "userns"}, lesson 09);
- one unshare(2) with every other requested CLONE_NEW* flag (lesson 02);
- every mount private before anything is mounted (else mounts leak to the host, lesson 04);
- the time namespace's offsets (lesson 11), then one fork when a PID or time namespace was asked
  for, because both take only the caller's future children: the child is PID 1 inside; this
  process stays outside, reports the child's PID, waits, and exits the way the child did (like
  `unshare --fork`, lesson 03);
- the hostname (lesson 02), the root filesystem (lessons 05-06) or a fresh /proc (lesson 03);
- the parent's "created" step (it places the process in its cgroup, wires its network), and only
  then the cgroup namespace, whose root is the cgroup the process is in (lesson 10);
- the capabilities (lesson 20): the bounding set dropped to those kept, then the permitted,
  effective and inheritable sets with capset(2) and the ambient set cleared, then no_new_privs,
  then the seccomp filter (lesson 21; before the capabilities without no_new_privs);
  last, so that every step before has root's powers, and before `--init`'s fork, so that PID 1
  keeps no more than the command;
- with `init` (`pycontain run --init`) one more fork: this process stays PID 1, reaping and
  forwarding signals, while the command runs as PID 2 (lesson 03); then every inherited fd >= 3
  is closed and the command exec'd.

With `trace` (`pycontain run --trace`) each step and each of its system calls is printed to
stderr as it happens (`pycontain.tracing`); without, nothing of it is even imported.

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
    from collections.abc import Callable, Sequence
    from typing import Any

    from pycontain.spec import InitSpec

#: the highest descriptor init closes before exec (close_range(2) takes it inclusive)
MAX_FD = (1 << 16) - 1


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


def die_with_parent(spec: InitSpec, channel: Channel) -> None:
    """PR_SET_PDEATHSIG: SIGKILL this process when the process that started it exits (lesson 03).

    The check after prctl(2) catches the race where the parent died before it took effect.
    """
    if spec["start_fifo"] is not None:  # an OCI container outlives `create` (lesson 24)
        return
    syscalls.prctl(PrctlOption.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != spec["parent_pid"]:
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


#: every module `import_what_follows` may import: the fork server imports them all before its
#: first request, so that no container it forks pays for one (tests/unit/test_forkserver.py)
LATER_MODULES = ("pycontain.namespaces.user", "pycontain.namespaces.time",
                 "pycontain.namespaces.uts", "pycontain.namespaces.pid", "pycontain.fs.layers",
                 "pycontain.fs.rootfs", "pycontain.security.paths",
                 "pycontain.security.capabilities", "pycontain.security.seccomp",
                 "pycontain.fs.volumes", "pycontain.security.identity",
                 "pycontain.namespaces.sysctl")


def import_what_follows(spec: InitSpec, channel: Channel) -> None:
    """Import now every module the later steps of this spec use (lesson 09): once this process
    is the mapped root it is an unprivileged uid on the host, which may not read the
    interpreter's library (a Python installed in root's home), and after pivot_root no library
    is in reach at all (see the top of this module). Each step still names its module."""
    names = spec["namespaces"]
    if "user" in names:
        from pycontain.namespaces import user  # noqa: F401
    if "time" in names and spec["time_offsets"]:
        from pycontain.namespaces import time  # noqa: F401
    if spec["hostname"]:
        from pycontain.namespaces import uts  # noqa: F401
    if spec["init"]:  # PID 1's loop runs after pivot_root
        from pycontain.namespaces import pid  # noqa: F401
    if spec["overlay"]:
        from pycontain.fs import layers  # noqa: F401
    if spec["rootfs"]:
        from pycontain.fs import rootfs  # noqa: F401
    if spec["masked_paths"] or spec["readonly_paths"]:
        from pycontain.security import paths  # noqa: F401
    if spec["capabilities"] is not None or spec["no_new_privs"]:
        from pycontain.security import capabilities  # noqa: F401
    if spec["seccomp"] is not None:
        from pycontain.security import seccomp  # noqa: F401
    if spec["volumes"]:
        from pycontain.fs import volumes  # noqa: F401
    if spec["user"] is not None:
        from pycontain.security import identity  # noqa: F401
    if spec["sysctl"]:
        from pycontain.namespaces import sysctl  # noqa: F401


def enter_user_namespace(spec: InitSpec, channel: Channel) -> None:
    """The user namespace first, alone: it grants the capabilities the others need (lesson 09).

    A host group must not follow into the box: supplementary groups go first, while they can.
    """
    if "user" not in spec["namespaces"]:
        return
    from pycontain.namespaces import user

    user.drop_groups()
    syscalls.unshare(CloneFlag.CLONE_NEWUSER)


def become_mapped_root(spec: InitSpec, channel: Channel) -> None:
    """Wait while the parent writes our uid_map and gid_map from outside, then take uid and
    gid 0 in the namespace (lesson 09)."""
    if "user" not in spec["namespaces"]:
        return
    from pycontain.namespaces import user

    channel.sync("userns", userns_pid=os.getpid())
    user.become_root()


def join_namespaces(spec: InitSpec, channel: Channel) -> None:
    """setns(2) into each namespace the spec names by path (an OCI config's `path`, lesson 24):
    the container shares it instead of getting a new one of that type."""
    for name, path in spec["join"]:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(fd, NAMESPACE_FLAGS[name])
        finally:
            os.close(fd)


def unshare_namespaces(spec: InitSpec, channel: Channel) -> None:
    """Move this process into a new namespace of each type asked for, with one unshare(2)
    (lesson 02). It is this process's own namespaces that change: it becomes the container.
    The user namespace came first, alone; the cgroup namespace comes last."""
    joined = {name for name, _ in spec["join"]}
    names = [name for name in spec["namespaces"]
             if name not in ("cgroup", "user") and name not in joined]
    if not names:
        return
    try:
        syscalls.unshare(flags_for(names))  # "uts" -> CLONE_NEWUTS, "mnt" -> CLONE_NEWNS, ...
    except SyscallError as e:
        e.add_note(f"while creating the namespaces {', '.join(names)}")
        raise


def make_mounts_private(spec: InitSpec, channel: Channel) -> None:
    """unshare(CLONE_NEWNS) copies the mounts with their propagation: on a shared "/", a mount
    made now would appear on the host too. Make them all private before any mount (lesson 04)."""
    if "mnt" in spec["namespaces"]:
        syscalls.mount(None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE)


def write_time_offsets(spec: InitSpec, channel: Channel) -> None:
    """Only this process's children enter the new time namespace, and its offsets can be set
    only until the first one has: now, just before the fork (lesson 11)."""
    if "time" in spec["namespaces"] and spec["time_offsets"]:
        from pycontain.namespaces import time

        time.write_offsets(spec["time_offsets"])


def fork_into_namespaces(spec: InitSpec, channel: Channel) -> None:
    """A PID or time namespace takes only the caller's future children: fork, and the child is
    the container, PID 1 inside (lesson 03). This process stays outside, reports the child's
    PID, and ends the way the child does. Without either, it reports its own PID."""
    if "pid" not in spec["namespaces"] and "time" not in spec["namespaces"]:
        channel.send(pid=os.getpid())
        return
    child = syscalls.fork()  # safe: this interpreter runs one thread
    if child:
        channel.send(pid=child)
        os.close(channel.out_fd)  # the child's copy now decides when the parent sees EOF
        os.close(channel.in_fd)
        if spec["start_fifo"] is not None:  # OCI: PID 1 goes to the subreaper (conmon), as
            os._exit(0)  # runc's intermediate process leaves it (lesson 24)
        mirror_exit(child)
    if spec["start_fifo"] is None:
        syscalls.prctl(PrctlOption.PR_SET_PDEATHSIG, signal.SIGKILL)  # the fork cleared it


def apply_hostname(spec: InitSpec, channel: Channel) -> None:
    """sethostname(2), once this process is in its own UTS namespace: only the copy of the
    name that unshare(CLONE_NEWUTS) made changes, the host keeps its own (lesson 02)."""
    if not spec["hostname"]:
        return
    from pycontain.namespaces import uts

    uts.set_hostname(spec["hostname"])


def mount_overlay(spec: InitSpec, channel: Channel) -> None:
    """The image stays read-only under a writable layer, mounted where the root will be
    (lesson 06)."""
    overlay = spec["overlay"]
    if not spec["rootfs"] or overlay is None:
        return
    from pycontain.fs import layers

    layers.mount_overlay(overlay["merged"], overlay["lowers"], overlay["upper"],
                         overlay["work"], volatile=overlay["volatile"])


def bind_volumes(spec: InitSpec, channel: Channel) -> None:
    """Bind each volume's host path into the root, before pivot_root puts the host out of
    reach; `enter_rootfs` binds the root recursively, so they come along (`-v`, lesson 05)."""
    if not spec["volumes"] or not spec["rootfs"]:
        return
    from pycontain.fs import volumes

    volumes.mount(spec["volumes"], spec["overlay"]["merged"] if spec["overlay"] else
                  spec["rootfs"])


def enter_rootfs(spec: InitSpec, channel: Channel) -> None:
    """Make the rootfs (or the overlay over it) `/`: bind it, pivot_root(2) into it, detach the
    old root (lesson 05); with a PID namespace mount its own /proc there."""
    if not spec["rootfs"]:
        return
    from pycontain.fs import rootfs

    root = spec["overlay"]["merged"] if spec["overlay"] else spec["rootfs"]
    names = spec["namespaces"]
    rootfs.enter(root, mount_proc="pid" in names, own_net="net" in names,
                 read_only=spec["read_only"], cgroups=spec["cgroup_view"],
                 switch=spec["root_switch"])


def mount_proc(spec: InitSpec, channel: Channel) -> None:
    """Without a rootfs, a fresh /proc over the host's, so that `ps` shows the container's
    processes only (lesson 03)."""
    names = spec["namespaces"]
    if not spec["rootfs"] and "pid" in names and "mnt" in names:
        syscalls.mount("proc", "/proc", "proc", MountFlag.MS_NOSUID | MountFlag.MS_NODEV
                       | MountFlag.MS_NOEXEC)


def write_sysctls(spec: InitSpec, channel: Channel) -> None:
    """The namespaced kernel parameters the spec sets (net.*, kernel.shm*, ...), written in
    the container's fresh /proc/sys before `mask_paths` makes it read-only (lesson 24)."""
    if not spec["sysctl"]:
        return
    from pycontain.namespaces import sysctl

    sysctl.write(spec["sysctl"])


def set_rlimits(spec: InitSpec, channel: Channel) -> None:
    """setrlimit(2) for each [resource, soft, hard] the spec gives (an OCI config's rlimits,
    lesson 24): inherited by the command across execve(2)."""
    for resource, soft, hard in spec["rlimits"]:
        syscalls.setrlimit(resource, soft, hard)


def mask_paths(spec: InitSpec, channel: Channel) -> None:
    """Freeze the read-only paths (/proc/sys, ...) and hide the masked ones (/proc/kcore,
    /proc/keys, ...): the host's kernel files a container must not write or read
    (lesson 20). After /proc is mounted and the root entered, in the container's own
    mount namespace."""
    if not (spec["masked_paths"] or spec["readonly_paths"]):
        return
    from pycontain.security import paths

    paths.apply(spec["masked_paths"], spec["readonly_paths"])


def wait_until_created(spec: InitSpec, channel: Channel) -> None:
    """Stop at "created" while the parent places this process in the container's cgroup and
    wires its network, before the cgroup namespace and the exec (lessons 08, 12)."""
    if spec["sync_before_exec"]:
        channel.sync("created")


def unshare_cgroup_namespace(spec: InitSpec, channel: Channel) -> None:
    """After "created": with limits the parent has moved us into the container's cgroup by now,
    so that cgroup becomes `/` inside (lesson 10); without, the caller's cgroup does."""
    if "cgroup" not in spec["namespaces"]:
        return
    try:
        syscalls.unshare(CloneFlag.CLONE_NEWCGROUP)
    except SyscallError as e:
        e.add_note("while creating the cgroup namespace")
        raise


def change_directory(spec: InitSpec, channel: Channel) -> None:
    """The command's working directory, inside the new root (lesson 05), checked to be inside
    it: until `execute` this process still holds what it inherited, and a path such as
    /proc/self/fd/N would make one of those descriptors the working directory, outside the
    root (runc's CVE-2024-21626, lesson 23)."""
    syscalls.chdir(spec["cwd"])
    if spec.get("rootfs"):
        from pycontain.fs import rootfs  # loaded by import_what_follows

        rootfs.verify_cwd_inside_root("cwd")


def filter_while_privileged(spec: InitSpec, channel: Channel) -> None:
    """Without no_new_privs, install the seccomp filter now, while CAP_SYS_ADMIN (which
    seccomp(2) then needs) is still held, as runc does; the calls of the steps after it must
    pass it (lesson 21)."""
    if not spec["no_new_privs"]:
        _install_filter(spec)


def drop_bounding_set(spec: InitSpec, channel: Channel) -> None:
    """Drop every capability not kept from the bounding set, the most any execve(2) can give
    back: first, while CAP_SETPCAP, which PR_CAPBSET_DROP needs, is still held
    (lesson 20)."""
    chosen = spec["capabilities"]
    if chosen is None:
        return
    from pycontain.security import capabilities

    capabilities.drop_bounding(chosen["keep"], chosen["last_cap"])


def change_user(spec: InitSpec, channel: Channel) -> None:
    """`-u UID[:GID]`: become that user, keeping the permitted set for the capset(2) that
    follows (PR_SET_KEEPCAPS, as runc); the execve(2) then gives a non-root user none of it
    (security.identity, lesson 20)."""
    if spec["user"] is None:
        return
    from pycontain.security import identity

    identity.switch(*spec["user"])


def set_capabilities(spec: InitSpec, channel: Channel) -> None:
    """Keep only the chosen capabilities in the permitted and effective sets, none inheritable,
    none ambient (lesson 20). No change of uid follows: the container stays root of its
    namespace, so no PR_SET_KEEPCAPS is needed (pycontain.security.capabilities)."""
    chosen = spec["capabilities"]
    if chosen is None:
        return
    from pycontain.security import capabilities

    capabilities.limit_sets(chosen["keep"])


def set_no_new_privs(spec: InitSpec, channel: Channel) -> None:
    """PR_SET_NO_NEW_PRIVS, last: no setuid program or file capability inside can give back
    what was dropped (lesson 20)."""
    if not spec["no_new_privs"]:
        return
    from pycontain.security import capabilities

    capabilities.set_no_new_privs()


def filter_system_calls(spec: InitSpec, channel: Channel) -> None:
    """Install the seccomp filter, last but the exec (and --init's fork): no step before needs
    to pass it, and no_new_privs lets an unprivileged process install it (lesson 21)."""
    if spec["no_new_privs"]:
        _install_filter(spec)


def _install_filter(spec: InitSpec) -> None:
    """The seccomp filter the spec carries, if any (one of the two steps above runs it)."""
    if spec["seccomp"] is None:
        return
    from pycontain.security import seccomp

    seccomp.install(spec["seccomp"])


def wait_for_start(spec: InitSpec, channel: Channel) -> None:
    """OCI's lifecycle: `create` leaves the container here, built, its command not yet run,
    until `start` (lesson 24). runc's exec.fifo: the runtime opened the FIFO with O_PATH
    before the fork and passed its number; opening it again for writing, through /proc, blocks
    until `start` opens it for reading. Last before the exec, so nothing is left to fail."""
    fifo = spec["start_fifo"]
    if fifo is None:
        return
    channel.send(waiting="start")  # `create` returns now; its end of the pipes goes
    fd = os.open(f"/proc/self/fd/{fifo}", os.O_WRONLY | os.O_CLOEXEC)
    os.write(fd, b"0")
    os.close(fd)
    os.close(fifo)


def become_init(spec: InitSpec, channel: Channel) -> None:
    """`--init`: fork the command as PID 2 and stay PID 1, a minimal init (lesson 03).

    Returns in the child, which goes on to exec the command. The parent never returns: it
    reaps every child and forwards signals until the command ends, then exits as it did.
    """
    if not spec["init"]:
        return
    from pycontain.namespaces import pid  # already loaded by import_what_follows

    # Blocked from before the fork until reap_until has its handlers: PID 1 would drop a signal
    # that came in between, while the kernel keeps a blocked one pending (tini does the same).
    unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, pid.FORWARDED_SIGNALS)
    child = syscalls.fork()  # safe: this interpreter runs one thread
    if child == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)  # a mask survives execve(2)
        return
    syscalls.close_range(3, MAX_FD)  # the report pipe too: the command's exec alone is EOF now
    os._exit(pid.exit_status(pid.reap_until(child)))


def execute(spec: InitSpec, channel: Channel) -> None:
    """Close inherited descriptors and exec the command (lesson 02); return only by raising.

    A descriptor left open crosses into the container (runc's CVE-2024-21626 leaked one to the
    host's cgroupfs); the report pipe stays, close-on-exec, so the parent sees EOF at exec.
    """
    # The interpreter ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across
    # execve(2): give the command the default dispositions, as subprocess (restore_signals) does.
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        syscalls.sigaction(sig, signal.SIG_DFL)
    keep = channel.out_fd
    syscalls.close_range(3, keep - 1)
    syscalls.close_range(keep + 1, MAX_FD)
    syscalls.execve(spec["executable"], spec["argv"], spec["env"])


#: init's steps, in the order the kernel requires (DESIGN, "The process model"), each with the
#: lesson that explains it. A step does nothing unless the spec asks for it.
STEPS: tuple[tuple[Callable[[InitSpec, Channel], None], int], ...] = (
    (die_with_parent, 3),
    (import_what_follows, 9),  # while this process can still read the interpreter's library
    (enter_user_namespace, 9),  # first: the other namespaces need its capabilities
    (become_mapped_root, 9),  # sync "userns": the parent writes the maps
    (join_namespaces, 24),  # an OCI config's namespace paths, then new ones of the rest
    (unshare_namespaces, 2),
    (make_mounts_private, 4),  # before any mount
    (write_time_offsets, 11),  # before the first child enters the time namespace
    (fork_into_namespaces, 3),
    (apply_hostname, 2),
    (mount_overlay, 6),
    (bind_volumes, 5),  # before pivot_root: the host's paths are still in reach
    (enter_rootfs, 5),  # pivot_root, then the old root detached
    (mount_proc, 3),
    (write_sysctls, 24),  # in the fresh /proc/sys, before it is made read-only
    (mask_paths, 20),  # on the /proc just mounted
    (wait_until_created, 12),  # sync "created": the parent places us in the cgroup
    (unshare_cgroup_namespace, 10),  # after the placement: its cgroup becomes /
    (change_directory, 5),
    (set_rlimits, 24),  # while CAP_SYS_RESOURCE may still raise a hard limit
    # What the container may do, last before the exec: the steps above need root's powers.
    # Seccomp goes after these, since a filter set earlier would have to allow every call of
    # the steps above; without no_new_privs before the capabilities, as seccomp(2) then needs
    # CAP_SYS_ADMIN.
    (filter_while_privileged, 21),  # only without no_new_privs
    (drop_bounding_set, 20),  # first, while CAP_SETPCAP is held
    (change_user, 20),  # keep-caps, set*id(2): the sets are chosen for the new user next
    (set_capabilities, 20),  # capset(2), then the ambient set cleared
    (set_no_new_privs, 20),
    (filter_system_calls, 21),  # with no_new_privs
    (wait_for_start, 24),  # OCI: `create` returns, `start` lets the command run
    (become_init, 3),
    (execute, 2),
)


def setup(spec: InitSpec, channel: Channel) -> None:
    """Build the container around this process, step by step (`STEPS`), then exec."""
    steps: Sequence[tuple[Callable[[InitSpec, Channel], None], int]] = STEPS
    if spec["trace"]:
        from pycontain import tracing  # now: after pivot_root the library is out of reach

        steps = tracing.start(STEPS, channel)
    for step, _lesson in steps:
        step(spec, channel)


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


def main(argv: list[str] | None = None) -> None:
    """Entry point: `python -m pycontain.init SPEC_FD REPORT_FD`."""
    args = sys.argv[1:] if argv is None else argv
    channel = Channel(int(args[0]), int(args[1]))
    os.set_inheritable(channel.out_fd, False)  # close-on-exec: exec success = EOF for the parent
    try:
        spec: InitSpec | None = channel.receive()  # type: ignore[assignment]
        if spec is None:
            raise EOFError("the parent closed the spec pipe before sending the spec")
        setup(spec, channel)
    except BaseException as exc:  # every failure crosses back to the parent, then we exit
        try:
            channel.send(error=to_wire(exc))
        except OSError:
            pass
        os._exit(exit_status(exc))  # 125, 126 or 127, as the command's exit status would be
    os._exit(EXIT_RUNTIME_ERROR)


if __name__ == "__main__":
    main()
