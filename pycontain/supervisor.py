"""The supervisor of a detached container, and the verbs that act on one (the lifecycle).

`pycontain run -d` must return while its container runs on, yet somebody must wait(2) for the
container to learn its exit status, and release its layer, cgroup and veth when it ends: that
is the supervisor, one small single-threaded process per container, like podman's conmon or
containerd's shim. The command forks it twice: the first child calls setsid(2) (a session of
its own: no terminal, no SIGHUP when the shell closes) and forks the supervisor, then exits, so
the supervisor's parent is init (or a subreaper), never the command. The supervisor then

1. takes the state over (`owner`), points the container's stdin at /dev/null and its stdout and
   stderr at the run directory's log files;
2. starts the container with the runtime (`runtime.spawn_forked`: the supervisor is
   single-threaded), so the container's first process is its child, and the container's
   PDEATHSIG ties it to the supervisor, not to the command;
3. records `running` with the pid and its start time, and tells the command (one JSON line on a
   pipe: the pid, or the error, which the command then raises as if it had made it);
4. waits, and meanwhile serves `pycontain exec` on a socket in the run directory
   (pycontain.exec_socket: the exec'd processes are its children too); forwards SIGTERM to
   the container; when the container ends, releases what it had (its undo stack), records the
   exit status and the reason, and removes everything with `--rm`.

The verbs (`stop`, `kill`, `pause`, `unpause`, `rm`) read the state and signal the container
through a pidfd checked against its start time (`state.send_signal`); they never need the
supervisor's help, so they also work on a container whose supervisor was killed.

See also: setsid(2), fork(2), pidfd_open(2), docker-stop(1), podman's conmon(8).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from pycontain import exec_socket, faults, nsenter, state, syscalls
from pycontain.errors import EXIT_RUNTIME_ERROR, PycontainError, SpecError, exit_status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from pycontain.runtime import Spec

#: how long `stop` waits for a container to end after SIGTERM, as docker's default
STOP_TIMEOUT_S = 10
#: how long a verb waits for the supervisor to record an ending it caused
RECORD_TIMEOUT_S = 10.0


def start(spec: Spec, container_id: str, name: str | None, *, remove: bool = False,
          **fields: Any) -> state.Record:
    """Start `spec` as a detached container: make its state, fork its supervisor, and return
    once the container runs (its state then says `running`). An error starting it is raised
    here, as `runtime.spawn` raises it; the state then says `exited`, with the reason (or is
    gone, with `remove`)."""
    state.create(container_id, name, remove=remove, **fields)
    return launch(spec, container_id)


def launch(spec: Spec, container_id: str) -> state.Record:
    """Fork the supervisor of the container whose state `create` made, and return its state
    once the container runs (`start`, and `pycontain start` after `pycontain create`)."""
    from pycontain.errors import ProcessError, from_wire

    name = state.read(container_id).get("name")
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    for stream in (sys.stdout, sys.stderr):  # or the child could write our buffers again
        stream.flush()
    faults.point("cli:created")
    try:
        first = syscalls.fork()
    except BaseException:
        state.remove_files(container_id, name)
        raise
    if first == 0:  # the first child: a session of its own, then the supervisor, then go
        code = EXIT_RUNTIME_ERROR
        try:
            os.close(report_r)
            syscalls.setsid()
            handover_r, handover_w = os.pipe2(os.O_CLOEXEC)
            if syscalls.fork() == 0:
                os.close(handover_r)
                _supervise(spec, container_id, report_w)
            # Leave once the supervisor owns the state (it closes the pipe): from the moment
            # `launch` returns from waitpid, somebody alive is always recorded as the owner.
            os.close(handover_w)
            os.read(handover_r, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(report_w)
    os.waitpid(first, 0)
    faults.point("cli:forked")
    # One line, not until EOF: with a PID namespace, init's waiting half was forked while the
    # supervisor held the pipe, and holds it as long as the container runs.
    with os.fdopen(report_r) as report:
        line = report.readline()
    message = json.loads(line) if line else {}
    if "error" in message:
        raise from_wire(message["error"])
    if "started" not in message:
        raise ProcessError(f"the supervisor of container {container_id[:12]} ended before it "
                           "started the container",
                           hint="`pycontain ps -a` shows its state; `pycontain cleanup` "
                                "removes what it left")
    return state.read(container_id)


def _supervise(spec: Spec, container_id: str, report_w: int) -> None:
    """The supervisor's life (module docstring); never returns."""
    from pycontain import runtime
    from pycontain.errors import to_wire

    code = EXIT_RUNTIME_ERROR
    try:
        record = state.update(container_id, supervisor=state.process(os.getpid()))
        faults.point("supervisor:owner")
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the shell's Ctrl-C is not for us
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, stream in ((1, "stdout"), (2, "stderr")):
            log = os.open(state.log_path(container_id, stream), os.O_WRONLY | os.O_APPEND)
            os.dup2(log, fd)
            os.close(log)
        os.close(null)
        # Nothing of the command's may stay open here: a caller reading its output until EOF
        # (a test, `$(pycontain run -d ...)`) would wait for the container to end.
        os.dup2(report_w, 3, inheritable=False)  # the command exec'd must not hold it
        report_w = 3
        syscalls.close_range(4, 65535)  # the handover pipe too: the first child may go
        def made(kind: str, thing: Any) -> None:  # recorded the moment it exists
            state.update(container_id, **{kind: _resource(kind, thing)})
            faults.point(f"supervisor:{kind}")

        try:
            service = exec_socket.Service(container_id)  # before `running`: exec may follow
            container = runtime.spawn_forked(spec, container_id=container_id, made=made)
        except (PycontainError, OSError) as e:
            state.update(container_id, status="exited", finished=time.time(),
                         exit_code=exit_status(e), reason=str(e))
            _report(report_w, {"error": to_wire(e)})
            if record.get("remove"):
                state.remove_files(container_id, record.get("name"))
            return
        signal.signal(signal.SIGTERM, lambda signum, _frame: container.signal(signum))
        faults.point("supervisor:spawned")
        state.update(container_id, status="running", started=time.time(), pid=container.pid,
                     container=state.process(container.pid),
                     process=nsenter.recorded(spec.to_wire()))  # for `pycontain exec`
        faults.point("supervisor:running")
        _report(report_w, {"started": container.pid})
        service.serve(container)  # `pycontain exec`, until the container's first process ends
        result = container.wait()  # releases the layer, the cgroup and the network
        service.finish()  # the exec'd processes that were left: killed with its cgroup
        faults.point("supervisor:released")
        state.update(container_id, status="exited", finished=time.time(),
                     exit_code=result.status, signal=result.signal, reason=result.reason,
                     oom_kills=result.oom_kills)
        if record.get("remove"):
            state.remove_files(container_id, record.get("name"))
        code = 0
    finally:
        os._exit(code)


def _report(report_w: int, message: dict[str, Any]) -> None:
    """Tell the command how the start went, and close the pipe. A command killed meanwhile
    (its end of the pipe closed: EPIPE) changes nothing: the container runs on without it."""
    try:
        os.write(report_w, json.dumps(message).encode() + b"\n")
    except BrokenPipeError:
        pass
    os.close(report_w)


def _resource(kind: str, thing: Any) -> dict[str, Any]:
    """A resource of the container (`runtime.spawn_forked`'s `made`: its cgroup, writable
    layer or network attachment) as the state records it, for `state.release` after a crash."""
    if kind == "cgroup":
        return {"name": thing.name, "dirs": thing.dirs}
    if kind == "network":
        return {"veth": thing.veth, "ifb": thing.ifb, "address": thing.address,
                "subnet": str(thing.subnet), "publish": thing.publish}
    return dict(thing._asdict())  # the layer


# --- the verbs -------------------------------------------------------------------------------

def running(reference: str, verb: str) -> state.Record:
    """The state of the running (or paused) container `reference` names, or a SpecError."""
    record = state.current(state.read(state.find(reference)))
    if record["status"] not in ("running", "paused"):
        raise SpecError("container", "a running container", reference,
                        hint=f"it is {record['status']}: `pycontain ps -a` shows it; only a "
                             f"running container can {verb}")
    return record


def kill(reference: str, sig: int = signal.SIGKILL) -> state.Record:
    """Send `sig` to the container's first process (`docker kill -s`)."""
    record = running(reference, "get a signal")
    state.send_signal(record["container"], sig)
    if record["status"] == "paused":  # a frozen process gets the signal when thawed
        _cgroup(record).thaw()
    return record


def stop(reference: str, timeout_s: float = STOP_TIMEOUT_S) -> state.Record:
    """SIGTERM, then SIGKILL after `timeout_s`; return the state once the supervisor has
    recorded the end (`docker stop -t`). A container that is not running is left as it is."""
    record = state.current(state.read(state.find(reference)))
    if record["status"] not in ("running", "paused"):
        return record
    kill(reference, signal.SIGTERM)
    if not state.wait_gone(record["container"], timeout_s):
        state.send_signal(record["container"], signal.SIGKILL)
    return _recorded(record)


def _recorded(record: state.Record) -> state.Record:
    """Wait for the supervisor to record the end and exit; the state then."""
    state.wait_gone(record["supervisor"], RECORD_TIMEOUT_S)
    try:
        return state.current(state.read(record["id"]))
    except FileNotFoundError:  # --rm: it removed everything
        return {**record, "status": "removed"}


def pause(reference: str) -> state.Record:
    """Freeze every process of the container (lesson 19's freezer) and record `paused`."""
    record = running(reference, "be paused")
    if record["status"] == "paused":
        raise SpecError("container", "a container that is not paused", reference,
                        hint="`pycontain unpause` lets it run again")
    _cgroup(record).freeze()
    return state.update(record["id"], status="paused")


def unpause(reference: str) -> state.Record:
    """Thaw a paused container and record `running` again."""
    record = running(reference, "be unpaused")
    if record["status"] != "paused":
        raise SpecError("container", "a paused container", reference,
                        hint="`pycontain pause` freezes a running one")
    _cgroup(record).thaw()
    return state.update(record["id"], status="running")


def _cgroup(record: state.Record) -> Any:
    from pycontain.errors import CgroupError

    cgroup = state.cgroup_of(record)
    if cgroup is None:
        raise CgroupError(f"container {record['id'][:12]} has no cgroup", 2,
                          hint="detached containers always get one; this one has none")
    return cgroup


def rm(reference: str, force: bool = False) -> str:
    """Remove a container that has ended; with `force`, SIGKILL a running one first. Returns
    its id."""
    container_id = state.find(reference)
    record = state.current(state.read(container_id))
    if record["status"] in ("running", "paused", "created") and state.alive(
            record.get("supervisor")):
        if not force:
            raise SpecError("container", "a container that is not running (or -f, which "
                            "kills it first)", reference,
                            hint=f"it is {record['status']}: `pycontain stop {reference}` "
                                 f"ends it, then rm; `pycontain rm -f` kills it")
        if record.get("container"):
            kill(reference)
        _recorded(record)
    state.remove(container_id)
    return container_id


def logs(reference: str, *, follow: bool = False, tail: int | None = None
         ) -> Iterator[tuple[str, bytes]]:
    """What the container wrote, as (stream, bytes) chunks: the last `tail` lines of each log,
    then, with `follow`, what it writes next until it has ended."""
    container_id = state.find(reference)
    files = {stream: open(state.log_path(container_id, stream), "rb")
             for stream in state.LOGS}
    try:
        for stream, f in files.items():
            data = f.read()
            if tail is not None:
                lines = data.splitlines(keepends=True)
                data = b"".join(lines[-tail:] if tail else [])
            if data:
                yield stream, data
        while follow:
            try:
                ended = not state.alive(state.read(container_id).get("supervisor"))
            except FileNotFoundError:  # --rm: removed as it ended
                ended = True
            chunks = [(stream, f.read()) for stream, f in files.items()]
            yield from ((s, c) for s, c in chunks if c)
            if ended:  # read once more after the end: nothing written before it is lost
                return
            if not any(c for _, c in chunks):
                time.sleep(0.1)  # a person reads along: ten checks a second are plenty
    finally:
        for f in files.values():
            f.close()
