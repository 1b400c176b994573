"""Composition: a `Spec` (pycontain.spec) says what container to build; `run()` and `spawn()`
build it (lesson 02).

The calling process never changes its own namespaces. Its fork server (`pycontain.forkserver`,
a lean interpreter started once) forks the container's first process, running `pycontain.init`
as the caller's own child, with two pipes: the spec goes down one, reports come back up the
other, and EOF on the report pipe means the command was exec'd (see `pycontain.init`). An error
raised while building the container is re-raised here unchanged: same type, call, arguments and
errno.

See also: unshare(1), runc(8), docker-run(1) (whose exit statuses 125/126/127 we follow).
"""

from __future__ import annotations

import _signal as signal  # `signal` without its enums: the `pycontain` command pays for them
import errno
import os
import sys
from collections import namedtuple
from collections.abc import Callable, Collection

from pycontain import settings, syscalls
from pycontain.errors import EXIT_RUNTIME_ERROR, from_wire
from pycontain.sizes import format_size
from pycontain.spec import (  # noqa: F401  (the namespace sets: re-exported)
    DEFAULT_NAMESPACES,
    SUPPORTED_NAMESPACES,
    Spec,
)
from pycontain.undo import UndoStack

# The `pycontain` command pays for every module imported here before its container starts, so
# heavy ones are imported where they are used: `subprocess` (only the API's spawn needs it),
# `procfs`, `lab`; and neither `dataclasses` nor `typing` (annotations are never evaluated at
# run time, PEP 563: only checkers need them). bench/start_latency.py measures the difference.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pycontain import forkserver, procfs
    from pycontain.cgroups import Cgroup
    from pycontain.cgroups.limits import Limits
    from pycontain.fs import layers
    from pycontain.network.bridge import Attachment
    from pycontain.spec import InitSpec

# the values of subprocess.PIPE and subprocess.DEVNULL, which `spawn` passes on to it
PIPE, DEVNULL = -1, -3



def __getattr__(name: str) -> Any:
    """`runtime.Limits`, imported on first use: the `pycontain` command without limits skips it."""
    if name == "Limits":
        from pycontain.cgroups.limits import Limits

        return Limits
    raise AttributeError(f"module 'pycontain.runtime' has no attribute {name!r}")


class Result(namedtuple("Result", "argv pid exit_code signal stdout stderr timed_out "
                                  "oom_kills memory_peak_bytes limits",
                        defaults=("", "", False, 0, None, None))):
    """How a container ended and what it printed.

    Fields: `argv`; `pid`, the first process's PID as the host sees it; `exit_code` (None when
    killed by a signal); `signal` (None when it exited); `stdout`, `stderr`; `timed_out`; with
    limits (a cgroup): `oom_kills`, how many of its processes the OOM killer killed
    (memory.events), `memory_peak_bytes` (memory.peak; None where the kernel has none), and
    the `limits` it ran with.

    >>> Result(("true",), 42, None, 9).reason
    'killed by signal 9 (SIGKILL)'
    >>> Result(("hog",), 42, None, 9, oom_kills=1, limits={"memory.max": str(32 << 20)}).reason
    'killed by the OOM killer (memory.max = 32 MiB)'
    """

    __slots__ = ()

    @property
    def status(self) -> int:
        """The shell's view: the exit code, or 128 + N when killed by signal N."""
        return self.exit_code if self.exit_code is not None else 128 + (self.signal or 0)

    @property
    def reason(self) -> str:
        """Why the container ended, in words."""
        if self.oom_kills:
            limit = (self.limits or {}).get("memory.max", "max")
            shown = "max" if limit == "max" else format_size(int(limit))
            if self.signal == signal.SIGKILL:
                return f"killed by the OOM killer (memory.max = {shown})"
            return (f"{_ending(self)} after the OOM killer killed {self.oom_kills} of its "
                    f"processes (memory.max = {shown})")
        return _ending(self)

    @property
    def oom_killed(self) -> bool:
        """Whether the OOM killer killed a process of the container (memory.events oom_kill)."""
        return bool(self.oom_kills)


def _ending(result: Result) -> str:
    if result.signal is not None:
        import signal as signals  # the enum, for the name

        why = f"killed by signal {result.signal} ({signals.Signals(result.signal).name})"
        return why + (" after the time-out" if result.timed_out else "")
    return f"exited {result.exit_code}"


class Container:
    """A running container. Wait on it, signal it, look at it through /proc."""

    def __init__(self, spec: Spec, pid: int, process: forkserver.Child,
                 undo: UndoStack | None = None, container_id: str | None = None):
        self.id = container_id or new_id()  # 64 hex digits, shown as 12, as Docker does
        self.spec = spec
        self.pid = pid  # the first process, as the host numbers it
        self.process = process
        self.result: Result | None = None
        self.layer: layers.WritableLayer | None = None  # set by _start when spec.overlay
        self.cgroup: Cgroup | None = None  # set by _start when spec.limits: lessons 12-14
        self.network: Attachment | None = None  # set by _start for network="bridge": lesson 08
        #: what releases the layer, the cgroup and the network when the container has ended
        self.undo = undo if undo is not None else UndoStack()

    def __repr__(self) -> str:
        state = "running" if self.running else "ended"
        return f"<Container pid={self.pid} {state} {list(self.spec.argv)!r}>"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def namespaces(self) -> dict[str, procfs.NamespaceId]:
        """The namespaces of the container's first process."""
        from pycontain import procfs

        return procfs.namespaces(self.pid)

    def status(self) -> procfs.Status:
        from pycontain import procfs

        return procfs.status(self.pid)

    def signal(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` to the container's first process (PID 1 inside a PID namespace)."""
        if self.running:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:  # it ended and was reaped between the two lines
                pass

    def kill(self) -> None:
        """SIGKILL the first process; in a PID namespace that ends every process in it.
        With limits, every process in the container's cgroup is killed too (`kill_all`)."""
        self.signal(signal.SIGKILL)
        if self.cgroup is not None and not self.cgroup.removed:
            self.kill_all()

    # lesson 19: the whole container at once, through its cgroup
    def freeze(self, timeout_s: float = 5.0) -> None:
        """Stop every process of the container where it stands, and return once the kernel
        says they all are (`cgroup.freeze`, `cgroup.events` frozen 1; v1 `freezer.state`)."""
        self._own_cgroup("freeze").freeze(timeout_s)

    def thaw(self) -> None:
        """Let every process of a frozen container run again."""
        self._own_cgroup("thaw").thaw()

    def kill_all(self) -> None:
        """SIGKILL every process of the container in one write to `cgroup.kill`, whatever its
        tree (v1: freeze, SIGKILL each, thaw). `wait()` then reaps it."""
        self._own_cgroup("kill_all").kill()

    def _own_cgroup(self, verb: str) -> Cgroup:
        from pycontain.errors import CgroupError

        if self.cgroup is None:
            raise CgroupError(f"cannot {verb} {self!r}: it has no cgroup", errno.ENOENT,
                              hint="a container gets a cgroup when it has limits: start it "
                                   "with one, pids_max='max' if no other (lesson 19)")
        if self.cgroup.removed:
            raise CgroupError(f"cannot {verb} {self!r}: it has ended and its cgroup "
                              f"{self.cgroup.name} is removed", errno.ENOENT,
                              hint="freeze, thaw or kill a container while it runs (lesson 19)")
        return self.cgroup

    def wait(self, timeout_s: float | None = None) -> Result:
        """Wait until the container ends (killing it after `timeout_s`); return its `Result`."""
        if self.result is not None:
            return self.result
        timed_out = False
        if timeout_s is None:
            out, err = self.process.communicate()
        else:
            import subprocess  # here: the `pycontain` command never waits with a time-out

            try:
                out, err = self.process.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                self.kill()
                out, err = self.process.communicate()
        code = self.process.returncode
        assert code is not None  # communicate() waited for it
        oom_kills, peak = self._cgroup_report()  # before the cgroup goes
        self.result = Result(self.spec.argv, self.pid,
                             code if code >= 0 else None, -code if code < 0 else None,
                             out or "", err or "", timed_out, oom_kills, peak,
                             self.spec.limits.settings() if self.spec.limits else None)
        # Newest first: the throw-away layer (like `docker run --rm`), the cgroup (what is left
        # is killed, rmdir depth-first), the veth (with the last container, the bridge and NAT);
        # each even when one before it failed.
        self.undo.close()
        _UNWAITED.pop(self, None)
        return self.result

    def _cgroup_report(self) -> tuple[int, int | None]:
        """OOM kills (memory.events oom_kill) and peak memory (memory.peak) of the cgroup."""
        if self.cgroup is None or self.cgroup.removed:
            return 0, None
        from pycontain.errors import CgroupError

        try:
            oom_kills = self.cgroup.read_keyed("memory.events").get("oom_kill", 0)
        except CgroupError:
            oom_kills = 0
        try:
            peak: int | None = int(self.cgroup.read("memory.peak"))  # v2: kernel >= 5.19
        except (CgroupError, ValueError):
            peak = None
        return oom_kills, peak

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        self.wait()


def new_id() -> str:
    """A container id: 64 random hex digits, as Docker makes them; `id[:12]` is the short id.

    >>> len(new_id()), new_id() != new_id()
    (64, True)
    """
    return os.urandom(32).hex()


def spawn(argv: Collection[str] | Spec, *, stdin: Any = DEVNULL, stdout: Any = PIPE,
          stderr: Any = PIPE, on_created: Callable[[int], None] | None = None,
          container_id: str | None = None, **options: Any) -> Container:
    """Start a container and return it while it runs. Options are those of `Spec`;
    `container_id` is its id (default: a new one, `new_id()`).

    `on_created(pid)` runs in this process after the namespaces exist and before the command
    is exec'd: the moment runtimes place the process in cgroups or write its uid_map.
    Output is captured as text unless `stdout`/`stderr` say otherwise.
    """
    spec = argv if isinstance(argv, Spec) else Spec(argv, **options)

    def start(spec_r: int, spec_w: int, report_r: int, report_w: int) -> forkserver.Child:
        from pycontain import forkserver

        child_fds, streams, close = forkserver.stdio(stdin, stdout, stderr)
        try:
            pid = fork_server().fork(spec_r, report_w, child_fds)
        except BaseException:
            for stream in streams:
                if stream is not None:
                    stream.close()
            raise
        finally:
            for fd in close:
                os.close(fd)
        return forkserver.Child(pid, streams)

    return _start(spec, start, on_created, container_id, None)


_FORK_SERVER: forkserver.Server | None = None


def fork_server() -> forkserver.Server:
    """This process's fork server (`pycontain.forkserver`), which forks every container
    `spawn()` and `run()` start; made on first use, started on the first container."""
    global _FORK_SERVER
    if _FORK_SERVER is None:
        from pycontain import forkserver as server
        from pycontain.init import LATER_MODULES, main

        _FORK_SERVER = server.Server(f"{main.__module__}:{main.__qualname__}", LATER_MODULES)
    return _FORK_SERVER


def spawn_forked(argv: Collection[str] | Spec, *, container_id: str | None = None,
                 in_child: Callable[[], None] | None = None,
                 made: Callable[[str, Any], None] | None = None,
                 start_fifo: str | None = None, **options: Any) -> Container:
    """`spawn`, for a single-threaded caller only: init runs in a fork of this process.

    The `pycontain` command uses it (DESIGN, "The process model": a single-threaded CLI process
    may take a faster path). It skips starting a second interpreter and importing pycontain
    again, most of a container's start-up time; the pipes, the messages, the setup order and the
    errors are those of `spawn`. Never call it from a multi-threaded process such as a Jupyter
    kernel: a fork there copies locks other threads hold, and the child can deadlock.
    The container shares this process's stdin, stdout and stderr; output is not captured.
    `in_child()` runs in the child before init starts (a terminal: `terminal.take`).
    `made(kind, thing)` runs the moment each resource exists ("cgroup", "layer", "network"):
    the supervisor records it, so that a supervisor killed right after leaves nothing that
    `pycontain cleanup` does not know of.
    `start_fifo` (an OCI runtime's create, lesson 24): the path of a FIFO; init then outlives
    this process (no PDEATHSIG, PID 1 left to the subreaper) and waits before the exec until
    someone opens the FIFO for reading (`oci.lifecycle.start`); this returns once it waits.
    """
    spec = argv if isinstance(argv, Spec) else Spec(argv, **options)
    fifo = None
    if start_fifo is not None:  # O_PATH, inherited by the fork: init reopens it through /proc
        fifo = os.open(start_fifo, os.O_PATH)

    def start(spec_r: int, spec_w: int, report_r: int, report_w: int) -> forkserver.Child:
        from pycontain import forkserver, init

        for stream in (sys.stdout, sys.stderr):  # or the child could write our buffers again
            stream.flush()
        pid = syscalls.fork()
        if pid == 0:  # the child: what the fork server's child does, without starting up
            try:
                os.close(spec_w)  # so that init sees EOF on the spec pipe if we die, as in spawn
                os.close(report_r)
                if in_child is not None:
                    in_child()
                init.main([str(spec_r), str(report_w)])
            finally:
                os._exit(EXIT_RUNTIME_ERROR)  # never return into the caller's code
        return forkserver.Child(pid, [None, None, None])  # stdio: this process's own

    try:
        return _start(spec, start, None, container_id, made, fifo)
    finally:
        if fifo is not None:
            os.close(fifo)


def _start(spec: Spec, start: Callable[[int, int, int, int], forkserver.Child],
           on_created: Callable[[int], None] | None, container_id: str | None,
           made: Callable[[str, Any], None] | None, start_fifo: int | None = None) -> Container:
    """Make the pipes, start init with `start(spec_r, spec_w, report_r, report_w)`, converse.

    Each resource is registered on the container's undo stack as it is made; any failure
    before the container runs releases them all, newest first, as `Container.wait` does."""
    from pycontain import lab

    lab.require_ready(user_namespace="user" in spec.namespaces)
    if spec.network == "bridge":  # refused before anything is created, not at "created"
        from pycontain.network import nft

        nft.require()
    undo = UndoStack()
    try:
        return _build(spec, start, on_created, undo, container_id, made, start_fifo)
    except BaseException:
        undo.close()  # init failed and was reaped: its mount namespace, and mount, went
        raise


def _build(spec: Spec, start: Callable[[int, int, int, int], forkserver.Child],
           on_created: Callable[[int], None] | None, undo: UndoStack,
           container_id: str | None, made: Callable[[str, Any], None] | None,
           start_fifo: int | None = None) -> Container:
    """`_start`'s work; everything it makes goes on `undo` (and to `made`) the moment it
    exists."""
    def record(kind: str, thing: Any) -> None:
        if made is not None:
            made(kind, thing)

    network = None
    if spec.network == "bridge":  # wired at "created", before the command runs (lesson 08)
        from pycontain.network import bridge

        network = bridge.Attachment(spec.subnet or settings.subnet(), spec.publish,
                                    egress_rate=spec.rates[0], ingress_rate=spec.rates[1])
        undo.defer(network.release, "release the network (veth, IFB, bridge, NAT)",  # idempotent
                   "release-network")
    cgroup = None
    if spec.limits:
        cgroup, on_created = _cgroup_for(spec.limits, on_created, undo)
        record("cgroup", cgroup)
    if network is not None:
        placed = on_created

        def wired(pid: int) -> None:
            record("network", network)
            if placed is not None:
                placed(pid)

        on_created = bridge.hook(network, wired)  # wire first, then place in the cgroup
    wire = spec.to_wire()
    wire["sync_before_exec"] = on_created is not None
    wire["start_fifo"] = start_fifo
    if spec.cgroup_view and cgroup is not None:  # lesson 20: its own limits, read-only
        wire["cgroup_view"] = cgroup.view()
    layer = None
    if spec.overlay and spec.rootfs:
        from pycontain.fs.layers import writable_layer

        layer = writable_layer(None if spec.overlay is True else spec.overlay)
        undo.defer(layer.discard, f"discard the writable layer {layer.path}", "discard-layer")
        record("layer", layer)
        wire["overlay"] = layer.wire([*spec.layers, spec.rootfs])
        if spec.id_maps:  # the mapped root must own its writable layer to write into it
            from pycontain.namespaces import user

            user.give_to_root(layer.path, [layer.upper, layer.work, layer.merged], spec.id_maps)
    spec_r, spec_w = os.pipe2(os.O_CLOEXEC)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    try:
        try:
            process = start(spec_r, spec_w, report_r, report_w)
        finally:
            os.close(spec_r)
            os.close(report_w)
        pid = _converse(process, spec_w, report_r, wire, on_created, spec.id_maps)
    finally:
        os.close(spec_w)
        os.close(report_r)
    container = Container(spec, pid, process, undo, container_id)
    container.layer = layer
    container.cgroup = cgroup
    container.network = network
    _UNWAITED[container] = None
    return container


#: every container this process started and has not waited for yet, held here so that what it
#: made (cgroup, veth, layer) can still be released when the code that started it lost it: a
#: check whose learner's function raised after spawn (`checks.release_started`)
_UNWAITED: dict[Container, None] = {}  # a set that keeps the order they started in


def unwaited() -> list[Container]:
    """The containers this process started and has not waited for, oldest first."""
    return list(_UNWAITED)


def _cgroup_for(limits: Limits, on_created: Callable[[int], None] | None, undo: UndoStack
                ) -> tuple[Cgroup, Callable[[int], None]]:
    """A new cgroup with `limits` set, registered on `undo`, and the hook that moves the
    container's first process into it before exec (its children are born there), then calls
    `on_created`."""
    from pycontain import cgroups

    cgroup = cgroups.create(limits.controllers(), label="ctr")
    undo.defer(cgroup.remove, f"remove the cgroup {cgroup.name}", "remove-cgroup")
    cgroup.set(limits.settings())

    def place(pid: int) -> None:
        cgroup.attach(pid)
        if on_created is not None:
            on_created(pid)

    return cgroup, place


def _converse(process: forkserver.Child, spec_w: int, report_r: int,
              wire: InitSpec, on_created: Callable[[int], None] | None,
              id_maps: Any = None) -> int:
    """Send the spec, answer sync requests, and read reports until EOF (= exec happened)."""
    from pycontain.init import Channel

    channel = Channel(report_r, spec_w)
    channel.send(**wire)
    pid = process.pid
    # With a PID namespace, {"pid": N} comes from init's parent half and {"sync": ...} from its
    # child, two processes writing one pipe: the sync can overtake the pid under load. Answer a
    # sync only once the pid is known, or on_created would place init's parent, not the child.
    known = waiting = started = False

    def answer() -> None:
        try:
            if on_created is not None:
                on_created(pid)
        except BaseException:
            process.kill()
            process.wait()
            raise
        channel.send(go=True)

    while (message := channel.receive()) is not None:
        if message.get("waiting") == "start":  # OCI create: built, the exec waits for start
            if known:
                return pid
            started = True  # from the child, ahead of its pid (see above)
        elif "pid" in message:
            pid, known = message["pid"], True
            if started:
                return pid
            if waiting:
                waiting = False
                answer()
        elif message.get("sync") == "userns":  # lesson 09: maps from outside, before the rest
            try:
                from pycontain.namespaces import user

                user.write_maps(message["userns_pid"], *id_maps)
            except BaseException:
                process.kill()
                process.wait()
                raise
            channel.send(go=True)
        elif "sync" in message:
            if known:
                answer()
            else:
                waiting = True
        elif "error" in message:
            error = from_wire(message["error"])
            process.communicate()  # reap it; nothing was exec'd
            raise error
    return pid


def run(argv: Collection[str] | Spec, *, timeout_s: float | None = None,
        capture: bool = True, **options: Any) -> Result:
    """Run a container to the end and return its `Result` (exit status and output).

    >>> run(["hostname"], namespaces={"uts"}, hostname="box-1").stdout  # doctest: +SKIP
    'box-1\\n'
    """
    pipe = PIPE if capture else None
    container = spawn(argv, stdout=pipe, stderr=pipe, **options)
    return container.wait(timeout_s)
