"""Errors: one tree, one grammar, one table of hints.

Every failure pycontain reports reads the same way (lesson 02)::

    sethostname('box') failed: EPERM (Operation not permitted)
      hint: only root in a UTS namespace may rename it: ... (lesson 02)
    while setting the hostname of the container

The first line names the attempt with its arguments (`repr`, flags as `MS_BIND|MS_REC`) and the
symbolic errno; the hint says the likely cause and the fix; notes added on the way up with
`add_note("while …")` give the context. Library code raises and never prints: only `cli` prints.

The tree::

    PycontainError
     ├── SyscallError   (also an OSError)  a system call failed
     ├── CgroupError    (also an OSError)  a cgroup file could not be read or written
     ├── SpecError      (also a ValueError) bad input, rejected before anything is created
     │    └── CommandNotFoundError (also FileNotFoundError)
     ├── PreflightError (also a RuntimeError) this machine is not ready (not root, not the lab)
     └── ProcessError   (also a RuntimeError) a process pycontain started (a fresh interpreter,
                        `nft`) failed, printed no answer or did not end in time

`exit_status(exc)` is the one mapping from an error to the exit status the command (and a
container's first process) ends with, as `docker run` chooses it: 125, 126 or 127.

An error raised inside a container's first process crosses back to the parent with `to_wire` /
`from_wire` and is re-raised there with the same type, call, arguments and errno.
"""

from __future__ import annotations

import errno as errno_module
import os

from pycontain.kernel_names import Constant, Flag

# `typing` costs milliseconds in a fresh interpreter, and every container's first process imports
# this module; annotations are never evaluated at run time (PEP 563), so only checkers need it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# Exit statuses follow the shell (and `docker run`): 125 the runtime failed, 126 the command
# could not be executed, 127 it was not found.
EXIT_RUNTIME_ERROR = 125
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127

# (call, errno name) -> "cause; fix (lesson NN)". A call is what failed, as the error names it:
# a system or library call (`mount`, `execvp`) or a netlink message (`RTM_NEWLINK`), then, for a
# call whose hint depends on what it acted on, one word for that: the kernel file written
# (`write cgroup.procs`, `write uid_map`) or the tree searched (`execvp rootfs`). Each entry is
# tested, and each is raised by some code path (tests/unit/test_errors.py).
HINTS: dict[tuple[str, str], str] = {
    ("unshare", "EINVAL"): (
        "the kernel refuses CLONE_NEWUSER to a multi-threaded process, and a Jupyter kernel is "
        "one; start the container in a fresh process with pycontain.run() instead (lesson 02)"
    ),
    ("unshare", "EPERM"): (
        "creating namespaces needs CAP_SYS_ADMIN; run as root inside the lab VM (lesson 00)"
    ),
    ("unshare", "ENOSPC"): (
        "not a full disk: the limit in /proc/sys/user/max_*_namespaces is reached; "
        "end old containers, then run `pycontain cleanup` (lesson 00)"
    ),
    ("setns", "EINVAL"): (
        "the file is not a namespace of the requested type, or a user namespace was joined from "
        "a multi-threaded process; pass an open /proc/<pid>/ns/<type> file (lesson 01)"
    ),
    ("setns", "EPERM"): "joining a namespace needs CAP_SYS_ADMIN; run as root (lesson 00)",
    ("write timens_offsets", "EACCES"): (
        "either a process has entered this time namespace already, which froze its offsets "
        "(write them after unshare(CLONE_NEWTIME) and before the first fork), or the file is not "
        "the writer's: after a change of uid /proc/self belongs to the host's root until "
        "prctl(PR_SET_DUMPABLE, 1) (lesson 11)"
    ),
    ("write timens_offsets", "ERANGE"): (
        "the clock would read less than zero inside, or beyond what the kernel keeps; pick a "
        "smaller offset (lesson 11)"
    ),
    ("sethostname", "EPERM"): (
        "only root may rename a UTS namespace; run as root, and unshare CLONE_NEWUTS first so "
        "the host keeps its name (lesson 02)"
    ),
    ("sethostname", "EINVAL"): "a hostname is 1-64 bytes long; pick a shorter one (lesson 02)",
    ("mount", "EPERM"): (
        "mounting needs CAP_SYS_ADMIN in the mount namespace's owning user namespace; "
        "run as root (lesson 04)"
    ),
    ("mount", "EINVAL"): (
        "the target is not a mount point, or the flags do not fit together: a propagation "
        "change (MS_SHARED, MS_PRIVATE, MS_SLAVE, MS_UNBINDABLE) works only on a mount point and "
        "takes no other flag but MS_REC; check the target with `findmnt`, or bind the directory "
        "onto itself first to make it one (lesson 04)"
    ),
    ("mount", "ENOENT"): "the source or target path does not exist; create it first (lesson 04)",
    ("mount", "EBUSY"): "something is already mounted there, or the target is in use (lesson 04)",
    ("umount2", "EINVAL"): (
        "the target is not a mount point in this mount namespace; check it with `findmnt` or "
        "/proc/self/mountinfo (lesson 04)"
    ),
    ("umount2", "EBUSY"): (
        "the mount is in use (a process has its cwd or a file open there); "
        "use MNT_DETACH to unmount lazily (lesson 04)"
    ),
    ("pivot_root", "EINVAL"): (
        "new_root must be a mount point, put_old must be inside it, and neither may be a shared "
        "mount: make mounts private first (lesson 05)"
    ),
    ("pivot_root", "EBUSY"): "new_root or put_old is already the root (lesson 05)",
    ("chroot", "EPERM"): "chroot(2) needs CAP_SYS_CHROOT; run as root (lesson 05)",
    ("chroot", "ENOENT"): "that directory does not exist under the current root (lesson 05)",
    ("pivot_root", "EPERM"): (
        "pivot_root(2) needs CAP_SYS_ADMIN in the mount namespace; run as root, in the "
        "container's own mount namespace (lesson 05)"
    ),
    ("chdir", "ENOENT"): "that directory does not exist inside the container (lesson 05)",
    ("execve", "ENOENT"): (
        "no such command in the container's PATH; check the spelling, or that the root "
        "filesystem contains it (lesson 02)"
    ),
    # the PATH search before the container exists (rootfs.resolve_command), as execvp(3) does
    ("execvp", "ENOENT"): (
        "it was looked up on PATH in the host's files, since the container has no rootfs of its "
        "own; check the spelling with `command -v NAME`, or give a path (lesson 02)"
    ),
    ("execvp rootfs", "ENOENT"): (
        "it was looked up on PATH inside the rootfs only, never on the host, and the embedded "
        "rootfs is busybox with few programs; see what it holds: "
        "`pycontain run --rootfs \"$(pycontain rootfs)\" -- ls /bin` (lesson 02)"
    ),
    ("execve", "EACCES"): (
        "the file is not executable: chmod +x it, or check that its filesystem is not mounted "
        "noexec (lesson 02)"
    ),
    ("prctl", "EINVAL"): "the kernel does not know this option or value (lesson 02)",
    ("shmget", "EEXIST"): (
        "a segment with this key already exists in this IPC namespace; take another key "
        "(ipc.new_key()) or remove the old one (ipcrm -M KEY) (lesson 07)"
    ),
    ("shmget", "ENOENT"): (
        "no segment has this key in the caller's IPC namespace, and keys are per namespace; "
        "create it with IPC_CREAT in the same namespace (lesson 07)"
    ),
    ("shmat", "EINVAL"): (
        "no segment has this id in the caller's IPC namespace: a shmid counts only in the "
        "namespace that made it; read the ids of this one in /proc/sysvipc/shm (lesson 07)"
    ),
    ("shmctl", "EINVAL"): (
        "no segment has this id in the caller's IPC namespace (or it is removed already); "
        "read the ids of this namespace in /proc/sysvipc/shm (lesson 07)"
    ),
    ("mq_open", "ENOENT"): (
        "no queue has this name in the caller's IPC namespace: each has its own mqueue "
        "filesystem; create the queue with O_CREAT in the same namespace (lesson 07)"
    ),
    ("mq_open", "EEXIST"): (
        "a queue with this name already exists in this IPC namespace; pick another name "
        "(ipc.new_queue_name()) or mq_unlink the old one (lesson 07)"
    ),
    ("mq_open", "EINVAL"): (
        "a queue name is '/' and 1-255 more bytes without another '/'; fix the name "
        "(mq_overview(7)) (lesson 07)"
    ),
    ("mq_unlink", "ENOENT"): (
        "no queue has this name in the caller's IPC namespace, or it is removed already; "
        "list the namespace's queues with ipc.run_in(pid, 'view') (lesson 07)"
    ),
    # cgroup files (pycontain.cgroups): the call is "write <file>", "write", "mkdir" or "rmdir"
    ("write", "EINVAL"): (
        "the kernel refused this value for this file: check its form (bytes, 'max', a PID) in "
        "the kernel's cgroup-v2.rst; pycontain.cgroups.limits parses sizes such as '32M' "
        "(lesson 12)"
    ),
    ("write", "ENOENT"): (
        "no such file in this cgroup: a misspelt knob, or its controller is not enabled here "
        "(v2: the parent's cgroup.subtree_control; v1: it lives in another hierarchy) (lesson 12)"
    ),
    ("write", "EACCES"): (
        "only root, or the owner of a delegated subtree, may write cgroup files; run as root "
        "(lesson 12)"
    ),
    ("write cgroup.subtree_control", "EBUSY"): (
        "the no-internal-processes rule: a v2 cgroup with processes of its own cannot hand "
        "controllers to its children; move the processes into a leaf child first (lesson 12)"
    ),
    ("write cgroup.subtree_control", "ENOENT"): (
        "the parent does not offer this controller (read its cgroup.controllers); enable it "
        "in the parent's cgroup.subtree_control first (lesson 12)"
    ),
    ("write cgroup.procs", "EBUSY"): (
        "the no-internal-processes rule: this v2 cgroup hands controllers to children "
        "(cgroup.subtree_control), so processes may only join its leaves (lesson 12)"
    ),
    ("write cgroup.procs", "ESRCH"): "no such process: it has exited already (lesson 12)",
    ("write cgroup.procs", "ENOSPC"): (
        "a cgroup v1 cpuset with an empty cpuset.cpus or cpuset.mems has no CPU or memory node "
        "to give a task, so it takes none: write the parent's lists into both first (pycontain "
        "copies them into every cpuset cgroup it creates) (lesson 18)"
    ),
    ("write memory.limit_in_bytes", "EBUSY"): (
        "cgroup v1 refuses a limit below what the cgroup uses now; set it before the "
        "processes start, or higher (lesson 14)"
    ),
    ("mkdir", "EEXIST"): (
        "a cgroup with this name exists already; pick another name, or remove leftovers with "
        "`pycontain cleanup` (lesson 12)"
    ),
    ("rmdir", "EBUSY"): (
        "the cgroup still has processes (or child cgroups): kill them, wait until it is empty "
        "(cgroup.events says populated 0, cgroup.procs is empty), remove children first "
        "(lesson 12)"
    ),
    ("RTM_NEWLINK", "EEXIST"): (
        "a link of that name exists already in that network namespace; `ip -br link` lists "
        "them, and `pycontain cleanup` removes pycontain- leftovers (lesson 08)"
    ),
    ("RTM_NEWLINK", "ENODEV"): (
        "no link of that name in that network namespace: a veth goes with its container's "
        "namespace; `ip -br link` lists what is there (lesson 08)"
    ),
    ("RTM_NEWADDR", "EEXIST"): (
        "that address is on the link already; pick another one or delete it first (lesson 08)"
    ),
    ("fork", "ENOMEM"): (
        "not out of memory: the PID namespace's init (PID 1) has exited, and a namespace without "
        "its init takes no new process; start a new container (lesson 03)"
    ),
    ("write uid_map", "EPERM"): (
        "a map is written once and never changed, only from outside by a process with "
        "CAP_SETUID over the namespace (or mapping only its own uid); start a new container "
        "for a new map (lesson 09)"
    ),
    ("write gid_map", "EPERM"): (
        "written twice, or by an unprivileged process before `deny` was written to "
        "/proc/<pid>/setgroups; write setgroups first, then the gid_map once (lesson 09)"
    ),
    ("write uid_map", "EINVAL"): (
        "the kernel refused the lines: overlapping, zero-length or out-of-range ranges, or an "
        "outside id the writer may not map; check them with user.validate_map (lesson 09)"
    ),
    ("setresuid", "EINVAL"): (
        "uid 0 is not mapped in this user namespace; map it: uid_map=[(0, 100000, 65536)] "
        "(lesson 09)"
    ),
}


def hint_for(call: str, errno: int) -> str | None:
    """The hint for a failed call, or None when the table has none.

    >>> hint_for("sethostname", errno_module.EINVAL)
    'a hostname is 1-64 bytes long; pick a shorter one (lesson 02)'
    >>> hint_for("sethostname", errno_module.EIO) is None
    True
    """
    return HINTS.get((call, errno_name(errno)))


def errno_name(errno: int) -> str:
    """The symbolic name of an errno.

    >>> errno_name(22)
    'EINVAL'
    >>> errno_name(9999)
    'E9999'
    """
    return errno_module.errorcode.get(errno, f"E{errno}")


def flag_names(flags: int, kind: type[Flag]) -> str:
    """Render flags the way the C headers spell them.

    >>> class F(Flag):
    ...     MS_BIND = 4096
    ...     MS_REC = 16384
    >>> flag_names(F.MS_BIND | F.MS_REC, F)
    'MS_BIND|MS_REC'
    >>> flag_names(0, F)
    '0'
    >>> flag_names(F.MS_BIND | 0x1, F)
    'MS_BIND|0x1'
    """
    return kind(flags).name


def render_arg(value: object) -> str:
    """One argument as it appears in an error message: flags and options by name, the rest by
    repr.

    >>> render_arg("/tmp/x"), render_arg(None), render_arg(3)
    ("'/tmp/x'", 'None', '3')
    """
    if isinstance(value, Constant):
        return value.name
    return repr(value)


class PycontainError(Exception):
    """The root of every error pycontain raises on purpose."""


class SyscallError(PycontainError, OSError):
    """A system call failed. Carries `call`, `arguments` and `errno`; `hint` says what to do."""

    def __init__(self, call: str, arguments: tuple[object, ...], errno: int) -> None:
        super().__init__(errno, os.strerror(errno))
        self.call = call
        self.arguments = tuple(arguments)

    @property
    def errno_name(self) -> str:
        return errno_name(self.errno or 0)

    @property
    def hint(self) -> str | None:
        return hint_for(self.call, self.errno or 0)

    def __str__(self) -> str:
        shown = ", ".join(render_arg(a) for a in self.arguments)
        line = f"{self.call}({shown}) failed: {self.errno_name} ({self.strerror})"
        return f"{line}\n  hint: {self.hint}" if self.hint else line

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.call, self.arguments, self.errno))


class CgroupError(PycontainError, OSError):
    """A cgroup file could not be read or written: `failed to write 'max' to pids.max`."""

    def __init__(self, message: str, errno: int = 0, hint: str | None = None) -> None:
        super().__init__(errno, message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        line = self.message + (f": {errno_name(self.errno)}" if self.errno else "")
        return f"{line}\n  hint: {self.hint}" if self.hint else line


class SpecError(PycontainError, ValueError):
    """Bad input, caught in userspace before anything is created.

    `needs` names what the parameter depends on, (parameter, value): `("network", "bridge")`,
    `("namespaces", "uts")`, `("rootfs", None)`, so that a front door can say it its own way.

    >>> print(SpecError("hostname", "1-64 bytes", "x" * 10))
    `hostname` must be 1-64 bytes, got 'xxxxxxxxxx'
    >>> e = SpecError("publish", "used only with network='bridge'", ["8080:80"],
    ...               needs=("network", "bridge"))
    >>> print(e.worded({"publish": "-p", "network": "--network"}))
    -p 8080:80 needs --network bridge
    """

    def __init__(self, parameter: str, accepted: str, got: object, hint: str | None = None,
                 *, needs: tuple[str, str | None] | None = None):
        super().__init__(parameter, accepted, got)
        self.parameter = parameter
        self.accepted = accepted
        self.got = got
        self.hint = hint
        self.needs = needs

    def __str__(self) -> str:
        return self.worded()

    def worded(self, names: Mapping[str, str] | None = None) -> str:
        """The message, each parameter called by its name in `names` when it has one there:
        the command line names its flags (`--memory`), not the Python parameters
        (`memory_max`). Python callers see the parameters (`str(e)`)."""
        name = (names or {}).get(self.parameter)
        if names is None or name is None:
            line = f"`{self.parameter}` must be {self.accepted}, got {self.got!r}"
        elif self.needs is not None:
            other, value = self.needs
            wanted = names.get(other, other)
            needed = (f"{value} in {wanted}" if other == "namespaces" else
                      f"{wanted} {value}" if value is not None else wanted)
            line = f"{_given(name, self.got)} needs {needed}"
        else:  # a parameter named in `accepted` (`at most memory_max`) is an identifier
            import re  # only here: init imports this module, and must start fast

            accepted = re.sub(r"\b[a-z]+_[a-z_]+\b", lambda m: names.get(m[0], m[0]),
                              self.accepted)
            line = f"{name} must be {accepted}, got {self.got!r}"
        return f"{line}\n  hint: {self.hint}" if self.hint else line


def _given(name: str, got: object) -> str:
    """A value as it was given on the command line: `-p 80:80 -p 53:53/udp`, `--init`."""
    if got is True:
        return name
    if isinstance(got, list | tuple):
        return " ".join(f"{name} {value}" for value in got)
    return f"{name} {got}"


class CommandNotFoundError(SpecError, FileNotFoundError):
    """The command to run does not exist where the container will look for it."""


class _MessageAndHint(PycontainError, RuntimeError):
    """An error that is a sentence and, maybe, its hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class PreflightError(_MessageAndHint):
    """This machine is not ready for the lab: not root, not the lab VM, a missing feature."""


class ProcessError(_MessageAndHint):
    """A process pycontain started failed: a fresh interpreter printed no answer or did not
    answer in time, or a host tool (`nft`) refused its input or hung."""


def exit_status(exc: BaseException) -> int:
    """The exit status for an error, as `docker run` chooses it: 127 the command was not found,
    126 it could not be executed, 125 for any other failure (pycontain's own).

    >>> exit_status(SyscallError("execve", ("/x", ["/x"]), errno_module.EACCES))
    126
    >>> exit_status(EOFError())
    125
    """
    if isinstance(exc, CommandNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, SyscallError) and exc.call == "execve":
        return EXIT_NOT_FOUND if exc.errno == errno_module.ENOENT else EXIT_CANNOT_EXECUTE
    return EXIT_RUNTIME_ERROR


def format_error(exc: BaseException, names: Mapping[str, str] | None = None) -> str:
    """The whole report for a person: the error, its hint, then every `while …` note; `names`
    as in `SpecError.worded`."""
    notes = getattr(exc, "__notes__", [])
    first = exc.worded(names) if isinstance(exc, SpecError) else str(exc)
    return "\n".join([first, *notes])


# --- crossing the process boundary -----------------------------------------------------------

_WIRE_TYPES: dict[str, type[PycontainError]] = {
    cls.__name__: cls
    for cls in (SyscallError, CgroupError, SpecError, CommandNotFoundError, PreflightError,
                ProcessError)
}


def _encode(value: object) -> object:
    if isinstance(value, Constant):  # a flag or an option: its class, by name, and its number
        return {"kind": type(value).__name__, "value": int(value)}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def _decode(value: object) -> object:
    if isinstance(value, dict) and set(value) == {"kind", "value"}:
        from pycontain import syscalls  # lazy: syscalls imports this module

        kind = getattr(syscalls, str(value["kind"]), None)
        return kind(value["value"]) if kind else value["value"]
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def to_wire(exc: BaseException) -> dict[str, Any]:
    """A JSON-ready description of `exc` that `from_wire` turns back into the same error."""
    wire: dict[str, Any] = {"notes": list(getattr(exc, "__notes__", []))}
    if isinstance(exc, SyscallError):
        wire.update(type="SyscallError", call=exc.call, errno=exc.errno,
                    arguments=_encode(exc.arguments))
    elif isinstance(exc, SpecError):
        wire.update(type=type(exc).__name__, parameter=exc.parameter, accepted=exc.accepted,
                    got=_encode(exc.got), hint=exc.hint, needs=exc.needs)
    elif isinstance(exc, CgroupError):
        wire.update(type="CgroupError", message=exc.message, errno=exc.errno, hint=exc.hint)
    elif isinstance(exc, PreflightError | ProcessError):
        wire.update(type=type(exc).__name__, message=exc.message, hint=exc.hint)
    else:  # a bug, not a planned failure: keep its type name in the message
        wire.update(type="PycontainError", message=f"{type(exc).__name__}: {exc}")
    return wire


def _needs(wire: Any) -> tuple[str, str | None] | None:
    return None if wire is None else (wire[0], wire[1])  # JSON made the tuple a list


def from_wire(wire: dict[str, Any]) -> PycontainError:
    """Rebuild the error that `to_wire` described."""
    kind = wire["type"]
    exc: PycontainError
    if kind == "SyscallError":
        arguments = _decode(wire["arguments"])
        assert isinstance(arguments, list)
        exc = SyscallError(wire["call"], tuple(arguments), wire["errno"])
    elif kind in ("SpecError", "CommandNotFoundError"):
        exc = _WIRE_TYPES[kind](wire["parameter"], wire["accepted"],  # type: ignore[call-arg]
                                _decode(wire["got"]), wire.get("hint"),
                                needs=_needs(wire.get("needs")))
    elif kind == "CgroupError":
        exc = CgroupError(wire["message"], wire["errno"], wire.get("hint"))
    elif kind in ("PreflightError", "ProcessError"):
        exc = _WIRE_TYPES[kind](wire["message"], wire.get("hint"))  # type: ignore[call-arg]
    else:
        exc = PycontainError(wire["message"])
    for note in wire.get("notes", []):
        exc.add_note(note)
    return exc
