"""Composition: a `Spec` says what container to build; `run()` and `spawn()` build it (lesson 02).

The calling process never changes its own namespaces. It starts a fresh interpreter running
`pycontain.init` with two pipes: the spec goes down one, reports come back up the other, and EOF
on the report pipe means the command was exec'd (see `pycontain.init`). An error raised while
building the container is re-raised here unchanged: same type, call, arguments and errno.

    >>> spec = Spec(["hostname"], namespaces={"uts"}, hostname="box-1")
    >>> sorted(spec.namespaces), spec.hostname
    (['uts'], 'box-1')

See also: unshare(1), runc(8), docker-run(1) (whose exit statuses 125/126/127 we follow).
"""

from __future__ import annotations

import os
import signal
import sys
from collections import namedtuple
from collections.abc import Callable, Collection, Mapping

from pycontain import rootfs as rootfs_module
from pycontain.errors import SpecError, from_wire
from pycontain.namespaces import uts

# The `pycontain` command pays for every module imported here before its container starts, so
# heavy ones are imported where they are used: `subprocess` (only the API's spawn needs it),
# `procfs`, `lab`; and neither `dataclasses` nor `typing` (annotations are never evaluated at
# run time, PEP 563: only checkers need them). bench/start_latency.py measures the difference.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Any

    from pycontain import layers, procfs
    from pycontain.cgroups import Cgroup
    from pycontain.cgroups.limits import Limits

# the values of subprocess.PIPE and subprocess.DEVNULL, which `spawn` passes on to it
PIPE, DEVNULL = -1, -3

#: the namespaces `init` can build so far
SUPPORTED_NAMESPACES = frozenset({"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"})
#: what a container gets unless told otherwise: cgroup and time are opt-in, as in Docker
DEFAULT_NAMESPACES = frozenset({"ipc", "mnt", "net", "pid", "uts"})
#: the namespaces still to come, and the lesson that brings each
LATER_NAMESPACES: dict[str, str] = {}

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# -I -S: no site-packages scan, no user site, no PYTHON* variables: the lean start-up is most of a
# container's start-up time (notes/reference-runtimes.md). The package is found by path instead.
# Appended, not prepended: the standard library is searched first, and nothing in the
# checkout can shadow it.
_BOOT = f"import sys;sys.path.append({_PACKAGE_PARENT!r});from pycontain.init import main;main()"


def __getattr__(name: str) -> Any:
    """`runtime.Limits`, imported on first use: the `pycontain` command without limits skips it."""
    if name == "Limits":
        from pycontain.cgroups.limits import Limits

        return Limits
    raise AttributeError(f"module 'pycontain.runtime' has no attribute {name!r}")


def _limits(limits: Limits | Mapping[str, Any] | None, options: dict[str, Any]) -> Limits | None:
    """Limits from `limits=` or the keyword options (memory_max=...), checked against this
    machine's cgroups (lesson 12); None when no limit is asked for."""
    given = {k: v for k, v in options.items() if v is not None}
    if limits is None and not given:
        return None
    from pycontain.cgroups import detect
    from pycontain.cgroups.limits import Limits

    if limits is not None and given:
        raise SpecError("limits", "given either as limits=Limits(...) or as keyword options, "
                        "not both", sorted(given))
    if limits is None or isinstance(limits, Mapping):
        chosen = Limits(**(dict(limits or {}) | given))
    elif isinstance(limits, Limits):
        chosen = limits
    else:
        raise SpecError("limits", "a Limits(...) or a dict of its fields", limits)
    if chosen:
        chosen.check_host(detect())
    return chosen or None


def _namespace_set(namespaces: Collection[str] | str | None) -> frozenset[str]:
    if namespaces is None:
        return DEFAULT_NAMESPACES
    if isinstance(namespaces, str):
        namespaces = [n for n in namespaces.replace(" ", "").split(",") if n]
    chosen = frozenset(namespaces)
    accepted = f"a subset of {{{', '.join(sorted(SUPPORTED_NAMESPACES))}}}"
    for name in sorted(chosen):
        if name in LATER_NAMESPACES:
            raise SpecError("namespaces", accepted, name,
                            hint=f"the {name} namespace arrives in lesson {LATER_NAMESPACES[name]}")
        if name not in SUPPORTED_NAMESPACES:
            raise SpecError("namespaces", accepted, name,
                            hint="namespace names are those of /proc/self/ns (lesson 01)")
    return chosen


def _time_offsets(offsets: Mapping[str, float] | None, chosen: frozenset[str]
                  ) -> dict[str, float]:
    """Check `time_offsets` (lesson 11); they need the time namespace."""
    if not offsets:
        return {}
    from pycontain.namespaces import time

    checked = time.validate_offsets(offsets)
    if "time" not in chosen:
        raise SpecError("time_offsets", "set only with 'time' among the namespaces", checked,
                        hint="the offsets belong to a time namespace; without one the container "
                             "reads the host's clocks (lesson 11)")
    return checked


def _id_maps(uid_map: Collection[Any] | None, gid_map: Collection[Any] | None,
             chosen: frozenset[str]) -> Any:
    """Check the user namespace's maps (lesson 09); None without a user namespace."""
    if "user" not in chosen:
        for name, given in (("uid_map", uid_map), ("gid_map", gid_map)):
            if given is not None:
                raise SpecError(name, "set only with 'user' among the namespaces", given,
                                hint="the maps belong to a user namespace (lesson 09)")
        return None
    from pycontain.namespaces import user

    uids = user.validate_map("uid_map", user.DEFAULT_MAP if uid_map is None else uid_map)
    gids = uids if gid_map is None else user.validate_map("gid_map", gid_map)
    return tuple(tuple(m) for m in uids), tuple(tuple(m) for m in gids)


def _writable_layer(overlay: object, layers: object, root: str | None
                    ) -> tuple[bool | str, tuple[str, ...]]:
    """Check `overlay` and `layers` (lesson 06); return them as a Spec keeps them."""
    if overlay is False and not layers:
        return False, ()
    from pycontain import layers as layers_module

    overlay = layers_module.validate_overlay(overlay)
    if overlay is not False and root is None:
        raise SpecError("overlay", "used only with a rootfs", overlay,
                        hint="the writable layer goes on top of the rootfs, the image "
                             "(lesson 06)")
    lowers = layers_module.validate_lowers(layers)  # type: ignore[arg-type]
    if lowers and overlay is False:
        raise SpecError("layers", "used only with overlay=True or an overlay directory",
                        lowers, hint="overlayfs stacks the layers under a writable layer "
                                     "(lesson 06)")
    return overlay, tuple(lowers)


class Spec:
    """What to run and how to isolate it. Validated on creation: bad input never reaches init.

    Args:
        argv: the command and its arguments; `argv[0]` becomes the container's first process.
        namespaces: namespace names (`{"uts"}` or `"uts,pid"`); default: all supported so far.
        hostname: the container's hostname; needs the uts namespace.
        rootfs: a directory to make the container's `/`; needs the mnt namespace. Without it
            the container keeps the host's filesystem view.
        env: the command's environment; default: PATH, HOME and HOSTNAME only.
        cwd: working directory inside the container.
        init: put a minimal init in front of the command, like `docker run --init`: PID 1 then
            reaps orphans and forwards signals, and the command runs as PID 2; needs pid.
        read_only: make the rootfs read-only, like `docker run --read-only` (/tmp stays
            writable); needs rootfs.
        root_switch: how the rootfs becomes `/`: "pivot_root" (always, except in lesson 05),
            "chroot" (only to show why not), or calls recorded by `rootfs.record()`.
        overlay: give the container a writable layer over its rootfs, so that it never changes
            the image (lesson 06): True for a throw-away one in a `/tmp/pycontain-layer-…` dir,
            removed when the container is waited for; or a directory that keeps it (`upper/`,
            `work/`) for the caller. Needs rootfs.
        layers: read-only directories stacked above the rootfs, topmost first (overlay lower
            dirs, lesson 06). Needs overlay.
        limits: resource limits, `Limits(memory_max="64M", pids_max=20)` (lessons 12-14); the
            container then runs in a `pycontain-…` cgroup of its own, removed when it is
            waited for. Or give the fields as keyword options: `memory_max`, `memory_high`,
            `memory_swap_max`, `pids_max`.
        user_namespace: add the user namespace (lesson 09): root inside is an unprivileged
            uid outside; the same as "user" among the namespaces.
        uid_map, gid_map: `[(inside, outside, count)]` lines for the user namespace, written
            by this process before the container goes on; default: `[(0, 100000, 65536)]`,
            and gid_map defaults to uid_map. Need the user namespace.
        time_offsets: shift the container's clocks, `{"boottime": 86400}` for a container
            that booted a day ago (lesson 11): seconds for "monotonic" and "boottime", at most
            ten years either way; needs the time namespace. The wall clock is never shifted.
    """

    __slots__ = ("argv", "namespaces", "hostname", "rootfs", "env", "cwd", "init", "read_only",
                 "root_switch", "overlay", "layers", "limits", "time_offsets", "id_maps",
                 "executable")
    argv: tuple[str, ...]
    namespaces: frozenset[str]
    hostname: str | None
    rootfs: str | None
    env: Mapping[str, str] | None
    cwd: str
    init: bool
    read_only: bool
    root_switch: str | list[list[object]]
    overlay: bool | str
    layers: tuple[str, ...]
    limits: Limits | None
    time_offsets: dict[str, float]
    id_maps: tuple[tuple[tuple[int, int, int], ...], tuple[tuple[int, int, int], ...]] | None
    executable: str

    def __init__(self, argv: Collection[str], *, namespaces: Collection[str] | str | None = None,
                 hostname: str | None = None, rootfs: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None, cwd: str = "/",
                 init: bool = False, read_only: bool = False,
                 root_switch: str | Collection[Any] = "pivot_root",
                 overlay: bool | str | os.PathLike[str] = False,
                 layers: Collection[str | os.PathLike[str]] = (),
                 limits: Limits | Mapping[str, Any] | None = None,
                 memory_max: str | int | None = None, memory_high: str | int | None = None,
                 memory_swap_max: str | int | None = None,
                 pids_max: str | int | None = None,
                 time_offsets: Mapping[str, float] | None = None,
                 user_namespace: bool = False, uid_map: Collection[Any] | None = None,
                 gid_map: Collection[Any] | None = None) -> None:
        if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
            raise SpecError("argv", "a non-empty list of strings such as ['hostname']", argv)
        chosen = _namespace_set(namespaces)
        if not isinstance(user_namespace, bool):
            raise SpecError("user_namespace", "True or False", user_namespace)
        if user_namespace:
            chosen |= {"user"}
        id_maps = _id_maps(uid_map, gid_map, chosen)
        if hostname is not None:
            uts.validate_hostname(hostname)
            if "uts" not in chosen:
                raise SpecError("hostname", "set only with 'uts' among the namespaces", hostname,
                                hint="without its own UTS namespace the container would "
                                     "rename the host (lesson 02)")
        if not isinstance(init, bool):
            raise SpecError("init", "True or False", init)
        if init and "pid" not in chosen:
            raise SpecError("init", "used only with 'pid' among the namespaces", init,
                            hint="a process is PID 1, with PID 1's duties, only in a new PID "
                                 "namespace (lesson 03)")
        root = None
        if rootfs is not None:
            if "mnt" not in chosen:
                raise SpecError("rootfs", "used only with 'mnt' among the namespaces",
                                str(rootfs), hint="changing the root needs a private mount "
                                                  "namespace (lesson 05)")
            root = rootfs_module.validate(os.fspath(rootfs))
        if root is not None and "user" in chosen and "net" not in chosen:
            raise SpecError("namespaces", "to include 'net' with 'user' and a rootfs",
                            ",".join(sorted(chosen)),
                            hint="in a user namespace the host's /sys cannot be bound alone, "
                                 "and a fresh sysfs needs a network namespace of its own: "
                                 "add 'net' (lesson 09)")
        switch = rootfs_module.validate_switch(root_switch)
        if not isinstance(read_only, bool):
            raise SpecError("read_only", "True or False", read_only)
        for name, value, given in (("read_only", read_only, read_only),
                                   ("root_switch", switch != "pivot_root", root_switch)):
            if value and root is None:
                raise SpecError(name, "used only with a rootfs", given,
                                hint="it changes how the rootfs is entered (lesson 05)")
        offsets = _time_offsets(time_offsets, chosen)
        search = (env or {}).get("PATH", rootfs_module.CONTAINER_PATH)
        overlay, lowers = _writable_layer(overlay, layers, root)
        chosen_limits = _limits(limits, {"memory_max": memory_max, "memory_high": memory_high,
                                         "memory_swap_max": memory_swap_max,
                                         "pids_max": pids_max})
        if lowers and root:  # the command may come from any layer
            from pycontain import layers as layers_module

            executable = layers_module.resolve_command(list(argv)[0], [*lowers, root], search)
        else:
            executable = rootfs_module.resolve_command(list(argv)[0], root, search)
        set_ = object.__setattr__
        set_(self, "argv", tuple(argv))
        set_(self, "namespaces", chosen)
        set_(self, "hostname", hostname)
        set_(self, "rootfs", root)
        set_(self, "env", dict(env) if env is not None else None)
        set_(self, "cwd", cwd)
        set_(self, "init", init)
        set_(self, "read_only", read_only)
        set_(self, "root_switch", switch)
        set_(self, "overlay", overlay)
        set_(self, "layers", lowers)
        set_(self, "limits", chosen_limits)
        set_(self, "time_offsets", offsets)
        set_(self, "id_maps", id_maps)
        set_(self, "executable", executable)  # argv[0] found on PATH, as a path inside

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Spec is read-only; make a new one to change `{name}`")

    def __eq__(self, other: object) -> bool:
        return type(other) is Spec and all(
            getattr(self, f) == getattr(other, f) for f in self.__slots__)

    def __hash__(self) -> int:
        return hash((self.argv, self.namespaces, self.hostname, self.rootfs, self.cwd))

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__slots__[:-1]
                          if f == "argv"
                          or getattr(self, f) not in (None, "/", False, "pivot_root", (), {}))
        return f"Spec({shown})"

    def environment(self) -> dict[str, str]:
        """The environment the command starts with."""
        if self.env is not None:
            return dict(self.env)
        env = {"PATH": rootfs_module.CONTAINER_PATH, "HOME": "/root"}
        if self.hostname:
            env["HOSTNAME"] = self.hostname
        return env

    def to_wire(self) -> dict[str, Any]:
        return {"argv": list(self.argv), "executable": self.executable,
                "namespaces": sorted(self.namespaces), "hostname": self.hostname,
                "rootfs": self.rootfs, "cwd": self.cwd, "init": self.init,
                "read_only": self.read_only, "root_switch": self.root_switch,
                "env": self.environment(), "parent_pid": os.getpid(),
                "time_offsets": dict(self.time_offsets)}


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
            shown = "max" if limit == "max" else _mib(int(limit))
            if self.signal == signal.SIGKILL:
                return f"killed by the OOM killer (memory.max = {shown})"
            return (f"{_ending(self)} after the OOM killer killed {self.oom_kills} of its "
                    f"processes (memory.max = {shown})")
        return _ending(self)

    @property
    def oom_killed(self) -> bool:
        """Whether the OOM killer killed a process of the container (memory.events oom_kill)."""
        return bool(self.oom_kills)


def _mib(size: int) -> str:
    from pycontain.cgroups.limits import mib

    return mib(size)


def _ending(result: Result) -> str:
    if result.signal is not None:
        why = f"killed by signal {result.signal} ({signal.Signals(result.signal).name})"
        return why + (" after the time-out" if result.timed_out else "")
    return f"exited {result.exit_code}"


class Container:
    """A running container. Wait on it, signal it, look at it through /proc."""

    def __init__(self, spec: Spec, pid: int, process: subprocess.Popen[str] | ForkedInit):
        self.spec = spec
        self.pid = pid  # the first process, as the host numbers it
        self.process = process
        self.result: Result | None = None
        self.layer: layers.WritableLayer | None = None  # set by _start when spec.overlay
        self.cgroup: Cgroup | None = None  # set by _start when spec.limits: lessons 12-14

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
            os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the first process; in a PID namespace that ends every process in it.
        With limits, every process in the container's cgroup is killed too (cgroup.kill)."""
        self.signal(signal.SIGKILL)
        if self.cgroup is not None and not self.cgroup.removed:
            self.cgroup.kill()

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
        if self.layer is not None:
            self.layer.discard()  # a throw-away layer goes, like `docker run --rm`
        oom_kills, peak = self._cgroup_report()
        self.result = Result(self.spec.argv, self.pid,
                             code if code >= 0 else None, -code if code < 0 else None,
                             out or "", err or "", timed_out, oom_kills, peak,
                             self.spec.limits.settings() if self.spec.limits else None)
        if self.cgroup is not None:
            self.cgroup.remove()  # kills what is left, waits until empty, rmdir depth-first
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


def spawn(argv: Collection[str] | Spec, *, stdin: Any = DEVNULL, stdout: Any = PIPE,
          stderr: Any = PIPE,
          on_created: Callable[[int], None] | None = None, **options: Any) -> Container:
    """Start a container and return it while it runs. Options are those of `Spec`.

    `on_created(pid)` runs in this process after the namespaces exist and before the command
    is exec'd: the moment runtimes place the process in cgroups or write its uid_map.
    Output is captured as text unless `stdout`/`stderr` say otherwise.
    """
    spec = argv if isinstance(argv, Spec) else Spec(argv, **options)

    def start(spec_r: int, spec_w: int, report_r: int, report_w: int) -> subprocess.Popen[str]:
        import subprocess

        return subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _BOOT, str(spec_r), str(report_w)],
            pass_fds=(spec_r, report_w), stdin=stdin, stdout=stdout, stderr=stderr, text=True)

    return _start(spec, start, on_created)


def spawn_forked(argv: Collection[str] | Spec, **options: Any) -> Container:
    """`spawn`, for a single-threaded caller only: init runs in a fork of this process.

    The `pycontain` command uses it (DESIGN, "The process model": a single-threaded CLI process
    may take a faster path). It skips starting a second interpreter and importing pycontain
    again, most of a container's start-up time; the pipes, the messages, the setup order and the
    errors are those of `spawn`. Never call it from a multi-threaded process such as a Jupyter
    kernel: a fork there copies locks other threads hold, and the child can deadlock.
    The container shares this process's stdin, stdout and stderr; output is not captured.
    """
    spec = argv if isinstance(argv, Spec) else Spec(argv, **options)

    def start(spec_r: int, spec_w: int, report_r: int, report_w: int) -> ForkedInit:
        from pycontain import init

        for stream in (sys.stdout, sys.stderr):  # or the child could write our buffers again
            stream.flush()
        pid = os.fork()
        if pid == 0:  # the child: what `python -I -S -c _BOOT` would do, without starting up
            try:
                os.close(spec_w)  # so that init sees EOF on the spec pipe if we die, as in spawn
                os.close(report_r)
                init.main([str(spec_r), str(report_w)])
            finally:
                os._exit(init.EXIT_RUNTIME_ERROR)  # never return into the caller's code
        return ForkedInit(pid)

    return _start(spec, start, None)


class ForkedInit:
    """The part of `subprocess.Popen` that `Container` uses, for an init made by `spawn_forked`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is not None:  # waitpid(2) has no time-out: poll
            import subprocess
            import time

            deadline = time.monotonic() + timeout
            while self.poll() is None:
                if time.monotonic() >= deadline:
                    raise subprocess.TimeoutExpired([str(self.pid)], timeout)
                time.sleep(0.005)
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[None, None]:
        self.wait(timeout)
        return None, None

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)


def _start(spec: Spec, start: Callable[[int, int, int, int], subprocess.Popen[str] | ForkedInit],
           on_created: Callable[[int], None] | None) -> Container:
    """Make the pipes, start init with `start(spec_r, spec_w, report_r, report_w)`, converse."""
    from pycontain import lab

    lab.require_ready()
    cgroup = None
    if spec.limits:
        cgroup, on_created = _cgroup_for(spec.limits, on_created)
    wire = spec.to_wire()
    wire["sync_before_exec"] = on_created is not None
    layer = None
    if spec.overlay and spec.rootfs:
        from pycontain.layers import writable_layer

        layer = writable_layer(None if spec.overlay is True else spec.overlay)
        wire["overlay"] = layer.wire([*spec.layers, spec.rootfs])
        if spec.id_maps:  # the mapped root must own its writable layer to write into it
            from pycontain.namespaces import user

            user.give_to_root(layer.path, [layer.upper, layer.work, layer.merged], spec.id_maps)
    spec_r, spec_w = os.pipe2(os.O_CLOEXEC)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    try:
        process = start(spec_r, spec_w, report_r, report_w)
    except BaseException:
        if layer is not None:
            layer.discard()
        if cgroup is not None:
            cgroup.remove()
        os.close(spec_w)
        os.close(report_r)
        raise
    finally:
        os.close(spec_r)
        os.close(report_w)
    try:
        pid = _converse(process, spec_w, report_r, wire, on_created, spec.id_maps)
    except BaseException:
        if layer is not None:
            layer.discard()  # init failed and was reaped: its mount namespace, and mount, went
        if cgroup is not None:
            cgroup.remove()
        raise
    finally:
        os.close(spec_w)
        os.close(report_r)
    container = Container(spec, pid, process)
    container.layer = layer
    container.cgroup = cgroup
    return container


def _cgroup_for(limits: Limits, on_created: Callable[[int], None] | None
                ) -> tuple[Cgroup, Callable[[int], None]]:
    """A new cgroup with `limits` set, and the hook that moves the container's first process
    into it before exec (its children are born there), then calls `on_created`."""
    from pycontain import cgroups

    cgroup = cgroups.create(limits.controllers(), label="ctr")
    try:
        cgroup.set(limits.settings())
    except BaseException:
        cgroup.remove()
        raise

    def place(pid: int) -> None:
        cgroup.attach(pid)
        if on_created is not None:
            on_created(pid)

    return cgroup, place


def _converse(process: subprocess.Popen[str] | ForkedInit, spec_w: int, report_r: int,
              wire: dict[str, Any], on_created: Callable[[int], None] | None,
              id_maps: Any = None) -> int:
    """Send the spec, answer sync requests, and read reports until EOF (= exec happened)."""
    from pycontain.init import Channel

    channel = Channel(report_r, spec_w)
    channel.send(**wire)
    pid = process.pid
    # With a PID namespace, {"pid": N} comes from init's parent half and {"sync": ...} from its
    # child, two processes writing one pipe: the sync can overtake the pid under load. Answer a
    # sync only once the pid is known, or on_created would place init's parent, not the child.
    known = waiting = False

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
        if "pid" in message:
            pid, known = message["pid"], True
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
