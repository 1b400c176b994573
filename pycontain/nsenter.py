"""Joining a running container: `pycontain exec` (the lifecycle).

A container is a process's namespaces, its cgroup and what it may do; so a second process
joins it by taking each of those on, in the order the kernel allows, and then exec'ing:

1. its cgroup(s) first, while the host's cgroupfs is still in reach: this process writes its
   own pid into the container's `cgroup.procs` on every hierarchy it has (lesson 12), so
   every child is born there and counts against the limits;
2. setns(2) with each namespace of the container's first process (`/proc/<pid>/ns/*`, all
   opened before the first setns, since later they may be out of reach): the user namespace
   first, which grants the capabilities the others need (lesson 09), then the others, the
   mount namespace last (it changes the root and working directory to the container's);
3. a fork: a PID (or time) namespace takes only the caller's future children (lesson 03), so
   the child is the one inside; this process, outside, reports the child's pid and exits,
   and the child, reparented to the caller of `start` (PR_SET_CHILD_SUBREAPER), is its child
   to wait for: for `pycontain exec`, the container's supervisor (pycontain.exec_socket);
4. the child then runs init's own last steps with the container's recorded spec: working
   directory, seccomp filter, bounding set, user, capabilities, no_new_privs, exec
   (`EXEC_STEPS`), so that its /proc/<pid>/status shows the same CapEff, CapBnd, NoNewPrivs
   and Seccomp as the container's first process. Until that exec it is the host's
   interpreter inside the container's PID namespace, so it is made non-dumpable first: the
   container may not open its /proc/<pid>/exe (CVE-2019-5736, lesson 23).

runc does the same in C (`runc exec`, its nsexec's setns loop, before any Go thread starts);
nsenter(1) is the tool that does steps 2 and 3. A paused container is refused (its frozen
cgroup would freeze the new process before it could exec), as Docker refuses it.

See also: setns(2), nsenter(1), pid_namespaces(7), cgroups(7), docker-exec(1).
"""

from __future__ import annotations

import _signal as signal  # without its enums, as init and the command do
import os

from pycontain import state, syscalls
from pycontain.errors import EXIT_RUNTIME_ERROR, SpecError, exit_status, to_wire
from pycontain.syscalls import NAMESPACE_FLAGS, PrctlOption

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

#: the order setns(2) takes the namespaces: user first, mnt last (module docstring)
ORDER = ("user", "cgroup", "ipc", "net", "pid", "time", "uts", "mnt")
#: what init records of a detached container's spec for exec to apply (state: "process")
RECORDED = ("env", "cwd", "user", "capabilities", "no_new_privs", "seccomp")


def recorded(wire: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the container's spec (`Spec.to_wire()`) that an exec'd process takes on,
    as the state records it (JSON: the seccomp filter as hex)."""
    found = {key: wire[key] for key in RECORDED}
    found["seccomp"] = None if wire["seccomp"] is None else bytes(wire["seccomp"]).hex()
    return found


def target(reference: str) -> state.Record:
    """The state of the running container `reference` names, or a SpecError saying why not."""
    record = state.current(state.read(state.find(reference)))
    if record["status"] == "paused":
        raise SpecError("container", "a running container, not a paused one", reference,
                        hint=f"its processes are frozen: `pycontain unpause {reference}` "
                             "first, then exec")
    if record["status"] != "running" or not state.alive(record.get("container")):
        raise SpecError("container", "a running container", reference,
                        hint=f"it is {record['status']}: `pycontain ps -a` shows it; "
                             f"`pycontain start` or `run -d` a new one")
    if "process" not in record:
        raise SpecError("container", "a container started by this version of pycontain",
                        reference, hint="its state records nothing to exec with: run it again")
    return record


def prepare(record: state.Record, argv: list[str], *, env: Mapping[str, str] = {},
            cwd: str | None = None, user: str | None = None) -> dict[str, Any]:
    """What the exec'd process applies (init's InitSpec keys that `EXEC_STEPS` read): the
    container's recorded spec with `env` added, `cwd` and `user` replaced. Checked here,
    before anything is made: the command and the user are looked up inside the container."""
    from pycontain.fs import rootfs

    if not argv or not all(isinstance(a, str) for a in argv):
        raise SpecError("command", "one or more words, as in `pycontain exec web -- ls`", argv)
    if cwd is not None and not cwd.startswith("/"):
        raise SpecError("cwd", "an absolute path inside the container, such as /tmp", cwd)
    process = record["process"]
    root = f"/proc/{record['container']['pid']}/root"  # the container's / as the host sees it
    environment = {**process["env"], **env}
    # root of the container's namespace unless told: after setns(CLONE_NEWUSER) this process's
    # own ids (the host's root) are unmapped there, the overflow id `nobody`, until it sets them
    ids = process["user"] or [0, 0]
    if user is not None:
        from pycontain.security import identity

        ids = list(identity.resolve(user, root))
    executable = rootfs.resolve_command(
        argv[0], root, environment.get("PATH", rootfs.CONTAINER_PATH))
    return {"argv": list(argv), "executable": executable, "env": environment,
            "cwd": cwd or process["cwd"], "user": ids, "capabilities": process["capabilities"],
            "no_new_privs": process["no_new_privs"],
            "seccomp": None if process["seccomp"] is None else bytes.fromhex(process["seccomp"])}


def _steps() -> tuple[Callable[[Any, Any], None], ...]:
    """init's last steps, in init's order (`init.STEPS`): the process is already inside."""
    from pycontain import init

    return (init.change_directory, init.filter_while_privileged, init.drop_bounding_set,
            init.change_user, init.set_capabilities, init.set_no_new_privs,
            init.filter_system_calls, init.execute)


def hide_from_container() -> None:
    """Make this process not dumpable until it execs (execve(2) makes it dumpable again).

    Until then it is the host's interpreter inside the container's PID namespace, with the
    container's capabilities at the end: a process of the container could open its
    /proc/PID/exe, the runtime's binary, and write it once free (CVE-2019-5736). A process
    that is not dumpable has its /proc files refused to all without CAP_SYS_PTRACE; runc's
    nsexec does the same (lesson 23).
    """
    syscalls.prctl(PrctlOption.PR_SET_DUMPABLE, 0)


def preload() -> None:
    """Import now what the steps use: after setns(CLONE_NEWNS) the library is out of reach."""
    from pycontain import init  # noqa: F401
    from pycontain.security import capabilities, identity, seccomp  # noqa: F401


def start(record: state.Record, wire: dict[str, Any],
          stdio: Callable[[], None] | None = None) -> int:
    """Start `wire` in the container `record` describes; return the new process's pid (the
    host's number), a child of this process, once it has exec'd. `stdio` runs in it first (a
    terminal). This process must be single-threaded (it forks, DESIGN "The process model")."""
    import sys

    from pycontain.cgroups import files
    from pycontain.errors import from_wire
    from pycontain.init import Channel

    preload()
    # its cgroup's directories as recorded: the managers (and their imports, a few ms) are not
    # needed to write a pid into cgroup.procs
    cgroup = list((record.get("cgroup") or {}).get("dirs", {}).values())
    pid = record["container"]["pid"]
    ours = {name: os.readlink(f"/proc/self/ns/{name}") for name in ORDER
            if os.path.exists(f"/proc/self/ns/{name}")}
    theirs = {name: os.readlink(f"/proc/{pid}/ns/{name}") for name in ours}
    if not state.alive(record["container"]):  # read its namespaces, then check it is still it
        raise SpecError("container", "a running container", record["id"][:12],
                        hint="it ended just now")
    joined = [name for name in ORDER if name in ours and theirs[name] != ours[name]]
    # the exec'd child is reparented to us when the middle process exits (step 3)
    syscalls.prctl(PrctlOption.PR_SET_CHILD_SUBREAPER, 1)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    middle = syscalls.fork()
    if middle == 0:  # joins, forks the one inside, reports its pid, goes
        os.close(report_r)
        channel = Channel(-1, report_w)
        code = EXIT_RUNTIME_ERROR
        try:
            hide_from_container()
            if cgroup:
                files.attach(cgroup, os.getpid())
            fds = {name: os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
                   for name in joined}
            for name in joined:
                syscalls.setns(fds[name], NAMESPACE_FLAGS[name])
            for fd in fds.values():
                os.close(fd)
            inside = syscalls.fork()
            if inside == 0:
                if stdio is not None:
                    stdio()
                for step in _steps():
                    step(wire, channel)
            channel.send(pid=inside)
            code = 0
        except BaseException as exc:
            try:
                channel.send(error=to_wire(exc))
            except OSError:
                pass
            code = exit_status(exc)
        finally:
            os._exit(code)
    os.close(report_w)
    os.waitpid(middle, 0)
    channel = Channel(report_r, -1)
    child: int | None = None
    try:
        while (message := channel.receive()) is not None:  # EOF: exec'd (or gone)
            if "error" in message:
                if child is not None:
                    os.waitpid(child, 0)
                raise from_wire(message["error"])
            child = message.get("pid", child)
    finally:
        os.close(report_r)
    if child is None:
        raise SpecError("container", "a running container", record["id"][:12],
                        hint="the process joining it ended without a word: it ended just now?")
    return int(child)


def wait(pid: int) -> int:
    """Wait for the exec'd process, forwarding the signals a user sends; its exit status as
    the shell shows it (128 + N when killed by signal N)."""
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:  # pragma: no cover (PEP 475 retries)
            continue
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code
