"""Controls for live experiments in JupyterLab, each with a plain function underneath (lesson 02).

Every widget here is a thin shell around a function that does the experiment and returns a
result that displays as a table: the function works headless (CI, a terminal), the widget only
calls it again when you press the button. `hostname_playground()` runs a container with the
hostname you type and shows the host's and the container's names and UTS namespaces side by side.
`memory_playground()` (lesson 14) runs a memory hog under the memory.max and memory.high you
choose with sliders, and redraws its memory.current live while it allocates.
`cpuset_playground()` (lesson 18) runs CPU burners pinned to the CPUs you type and redraws a
per-CPU heat map from /proc/stat while they spin. `capability_grid()` (lesson 20) runs, in a
container that keeps only the capabilities you tick, one action per capability and shows which
the kernel refused. `seccomp_playground()` (lesson 21) gives a system call the seccomp action
you pick and runs a container that makes it. The other lessons'
experiments that run a container and compare both sides live here too: a uid map (09), the
cgroups a container sees (10), its clocks (11).

See also: uts_namespaces(7), sethostname(2); ipywidgets (https://ipywidgets.readthedocs.io).
"""

from __future__ import annotations

import html
import os
import socket
import time
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pycontain import procfs, runtime, settings
from pycontain.errors import ProcessError, PycontainError, format_error
from pycontain.namespaces import cgroup as cgroupns
from pycontain.namespaces import time as timens
from pycontain.namespaces import user
from pycontain.procfs import NamespaceId

#: what the container runs: print its hostname and its UTS namespace, as seen from inside
_REPORT = ["sh", "-c", "hostname; readlink /proc/self/ns/uts"]


@dataclass(frozen=True)
class HostnameComparison:
    """The host's and a container's hostname and UTS namespace, as each sees its own."""

    host: str
    container: str
    host_uts: NamespaceId
    container_uts: NamespaceId

    def _rows(self) -> list[tuple[str, str, str]]:
        return [("host (this notebook)", self.host, str(self.host_uts)),
                ("container", self.container, str(self.container_uts))]

    def __repr__(self) -> str:
        """
        >>> HostnameComparison("vm", "box-1", NamespaceId("uts", 1), NamespaceId("uts", 2))
        host (this notebook)  vm     uts:[1]
        container             box-1  uts:[2]
        """
        rows = self._rows()
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                         for r in rows)

    def _repr_html_(self) -> str:
        body = "".join(f"<tr><td>{who}</td><td><code>{html.escape(name)}</code></td>"
                       f"<td><code>{ns}</code></td></tr>" for who, name, ns in self._rows())
        return ("<table><tr><th></th><th>hostname</th><th>UTS namespace</th></tr>"
                f"{body}</table>")


def compare_hostnames(hostname: str, *, timeout_s: float = 10.0) -> HostnameComparison:
    """Run a container with its own UTS namespace and `hostname`; compare it with the host.

    Raises:
        SpecError: `hostname` is not 1-64 bytes; no container was started.
    """
    result = runtime.run(_REPORT, namespaces={"uts"}, hostname=hostname, timeout_s=timeout_s)
    lines = result.stdout.splitlines()
    if result.status != 0 or len(lines) != 2:
        raise PycontainError(f"the container {' '.join(_REPORT)!r} {result.reason}: "
                             f"{result.stderr.strip()}")
    return HostnameComparison(socket.gethostname(), lines[0], procfs.namespace("self", "uts"),
                              procfs.parse_ns_link(lines[1]))


def hostname_playground(hostname: str = "box-1") -> Any:
    """A text box and a button: each press runs a container with the hostname typed in.

    Without a front end (CI) the widget still builds and runs once, with `hostname`.
    """
    import ipywidgets

    name = ipywidgets.Text(value=hostname, description="hostname")
    return _control_and_button(name, lambda typed: compare_hostnames(typed)._repr_html_())


def propagation_toggle(base: str, kind: str = "shared") -> Any:
    """Toggle buttons, one per propagation type: each press reruns the propagation experiment of
    lesson 04 (`pycontain.namespaces.mnt.experiment`) on the shared mount `base`, and shows
    whether the box's mount reached the host and the host's mount reached the box.

    Without a front end (CI) the widget still builds and runs once, with `kind`.
    """
    import ipywidgets

    from pycontain.namespaces import mnt

    choice = ipywidgets.ToggleButtons(options=list(mnt.PROPAGATION_FLAGS), value=kind,
                                      description="in the box")
    table = ipywidgets.HTML()

    def refresh(_: object = None) -> None:
        try:
            table.value = mnt.experiment(base, choice.value)._repr_html_()
        except PycontainError as e:
            table.value = f"<pre>{html.escape(format_error(e))}</pre>"

    choice.observe(refresh, names="value")
    refresh()
    return ipywidgets.VBox([choice, table])


# --- lesson 14: a memory hog under memory.max and memory.high, watched live --------------------

@dataclass(repr=False)
class MemoryRun:
    """What `memory_experiment` saw: samples of memory.current, the limits, the kernel's
    counters (memory.events; v1: memory.oom_control and memory.failcnt), the container's
    `Result`, and the hog's own account of its steps (`allocated`: (seconds, bytes))."""

    times_s: list[float]
    current: list[float]
    limits: dict[str, float]
    events: list[tuple[float, str]]
    memory_events: dict[str, int]
    pressure: str | None
    result: runtime.Result | None
    allocated: list[tuple[float, int]]
    files: dict[str, str]

    @property
    def peak_bytes(self) -> float:
        return max((v for v in self.current if v == v), default=0.0)

    def __repr__(self) -> str:
        """What a notebook without images shows: a sentence, not the samples (issue 18)."""
        from pycontain.workloads import mib

        ending = self.result.reason if self.result else "still running"
        limits = ", ".join(f"{self.files.get(k, k)} {mib(v)}" for k, v in self.limits.items())
        return (f"<a memory hog, {ending}: {len(self.times_s)} samples, peak "
                f"{mib(self.peak_bytes)}, {limits or 'no limits'}; memory.events "
                f"{self.memory_events}>")

    def figure(self) -> Any:
        from pycontain.observe import plot

        ending = self.result.reason if self.result else "running"
        return plot.cgroup_timeline(
            self.times_s, {self.files["memory.current"]: self.current},
            limits={plot.limit_label(self.files.get(k, k), v): v for k, v in self.limits.items()},
            events=self.events, title=f"a memory hog in a cgroup: {ending}")

    def _repr_png_(self) -> bytes:
        return bytes(self.figure()._repr_png_())


def memory_experiment(memory_max: str | int | None = "64M", memory_high: str | int | None = None,
                      *, hog: tuple[str, float, str] = ("4M", 0.1, "128M"), hold_s: float = 0.5,
                      hz: float = 100.0, duration_s: float | None = None,
                      on_sample: Callable[[MemoryRun], None] | None = None,
                      every_s: float = 0.25) -> MemoryRun:
    """Run a memory hog (`hog` = step, seconds between steps, cap) in a container with these
    limits, sample memory.current at `hz`, and return what happened. The defaults give about
    ten samples per step, so the plot shows the staircase, and place the OOM kill within
    1/hz s of the moment the kernel counted it (`monitor.rises`). `on_sample(run)` is
    called every `every_s` s while it runs (the widget redraws its plot there). The hog runs
    at most `duration_s` s (default: $PYCONTAIN_DURATION or 20) and then is killed.

    Raises:
        SpecError: a bad size, memory_high above memory_max, or memory_high on cgroup v1.
    """
    from pycontain import workloads
    from pycontain.cgroups.limits import Limits
    from pycontain.observe import monitor

    limits = Limits(memory_max=memory_max, memory_high=memory_high, memory_swap_max=None)
    duration_s = duration_s or settings.duration_s()
    box = runtime.spawn(workloads.hog_argv(*hog, hold_s=hold_s), namespaces={"pid", "mnt"},
                        limits=limits)
    cgroup = box.cgroup
    assert cgroup is not None  # limits were given, so the container has a cgroup
    files = {"memory.current": cgroup.file("memory.current"), "memory.max": "memory.max",
             "memory.high": "memory.high"}
    if cgroup.version == 1:
        files["memory.max"] = "memory.limit_in_bytes"
    files = {k: os.path.basename(v) for k, v in files.items()}
    probes = [monitor.Probe("current", cgroup.file("memory.current")),
              monitor.Probe("oom_kill", cgroup.file("memory.events"), monitor.keyed("oom_kill"))]
    pressure_file = os.path.join(os.path.dirname(cgroup.file("cgroup.events")), "memory.pressure")
    watch = monitor.Monitor(probes, hz=hz).start()

    def snapshot(result: runtime.Result | None) -> MemoryRun:
        series = watch.series()
        times = watch.times_s()
        # the first sample in which memory.events counted the kill: memory.current may still be
        # at the limit there (the victim's pages are not freed yet), or already down
        kills = monitor.rises(times, series["oom_kill"])
        return MemoryRun(times, series["current"],
                         {k: float(v) for k, v in limits.settings().items() if v != "max"},
                         [(t, "OOM kill") for t in kills], {}, None, result,
                         workloads.allocated(result.stdout) if result else [], files)

    try:
        deadline = time.monotonic() + duration_s
        while box.running and time.monotonic() < deadline:
            time.sleep(every_s)
            if on_sample is not None:
                on_sample(snapshot(None))
        # read the cgroup before waiting: the runtime removes it once the container is reaped
        counters = cgroup.read_keyed("memory.events")
        pressure = _read_or_none(pressure_file)
        watch.stop()
        result = box.wait(timeout_s=max(0.1, deadline - time.monotonic()))
    finally:
        watch.stop()
        if box.running:
            box.kill()
            box.wait()
    run = snapshot(result)
    run.memory_events, run.pressure = counters, pressure
    return run


def _read_or_none(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:  # no PSI here (a kernel booted with psi=0, or no cgroup2 for this cgroup)
        return None


def memory_playground(memory_max_mib: int = 64, memory_high_mib: int = 0) -> Any:
    """Sliders for memory.max and memory.high and a "run" button: each press runs a memory hog
    in a container with those limits and redraws memory.current live while it allocates.
    memory.high = 0 means not set; on cgroup v1 (no memory.high) that slider is disabled.

    Without a front end (CI) the widget still builds and runs once, with the given values.
    """
    import ipywidgets

    from pycontain.cgroups import detect

    v1 = detect().version("memory") == 1
    top = ipywidgets.IntSlider(value=memory_max_mib, min=16, max=256, step=8,
                               description="memory.max", readout_format="d")
    high = ipywidgets.IntSlider(value=memory_high_mib, min=0, max=256, step=8,
                                description="memory.high", disabled=v1, readout_format="d")
    def run(on_sample: Callable[[MemoryRun], None]) -> tuple[MemoryRun, str]:
        done = memory_experiment(f"{top.value}M", f"{high.value}M" if high.value else None,
                                 on_sample=on_sample)
        return done, (f"<code>{html.escape(done.result.reason if done.result else '')}</code>; "
                      f"memory.events: <code>{done.memory_events}</code>")

    return live_playground([top, ipywidgets.Label("MiB"), high,
                            ipywidgets.Label("MiB (0: not set)")], "run the hog", run)


# ---- lesson 09: both sides of a uid map ------------------------------------------------------

def ids_both_sides(uid_map: Iterable[tuple[int, int, int]] = user.DEFAULT_MAP,
                   namespaces: Iterable[str] = ("user", "uts", "mnt", "pid")) -> dict[str, str]:
    """Start a container with `uid_map`; return its ids as it sees them and as the host does."""
    with runtime.spawn(["sh", "-c", "id; exec sleep 60"], namespaces=set(namespaces),
                       uid_map=list(uid_map)) as box:
        outside = user.outside_ids(box.pid)
        assert box.process.stdout is not None  # type: ignore[union-attr]
        inside = box.process.stdout.readline().strip()  # type: ignore[union-attr]
    return {"inside (id)": inside, "outside (/proc/<pid>/status)": f"uid={outside[0]} "
            f"gid={outside[1]}", "uid_map": user.map_text(uid_map).strip()}


def map_playground(outside: int = 100000) -> object:
    """A slider for the outside id that root inside stands for, and a button: each press starts
    a container with that map and shows its ids from both sides.

    Without a front end (CI) the widget still builds and runs once, with `outside`.
    """
    import ipywidgets

    slider = ipywidgets.IntSlider(value=outside, min=1000, max=2**32 - 65537, step=1000,
                                  description="root inside = uid outside",
                                  style={"description_width": "initial"},
                                  layout={"width": "500px"})

    def render(value: int) -> str:
        rows = ids_both_sides([(0, value, 65536)])
        return "<table>" + "".join(
            f"<tr><th>{html.escape(k)}</th><td><code>{html.escape(v)}</code></td></tr>"
            for k, v in rows.items()) + "</table>"

    return _control_and_button(slider, render)


def _control_and_button(control: Any, render: Callable[[Any], str]) -> Any:
    """A control (a slider, a text box), a "run a container" button and a table: each press
    shows `render(control.value)`, or the error it raised; it runs once at once, so that it
    works without a front end (CI)."""
    import ipywidgets

    button = ipywidgets.Button(description="run a container", icon="play")
    table = ipywidgets.HTML()

    def refresh(_: object = None) -> None:
        try:
            table.value = render(getattr(control, "value", None))  # a grid has none
        except PycontainError as e:
            table.value = f"<pre>{html.escape(format_error(e))}</pre>"

    button.on_click(refresh)
    refresh()
    return ipywidgets.VBox([ipywidgets.HBox([control, button]), table])


# ---- lesson 20: what root inside may do with the capabilities it keeps ----------------------

#: one action per capability, each a shell line that needs it (and nothing else the probe
#: keeps): (capability, what it does, the line). All of it inside the container: its own
#: tmpfs /tmp, its own network namespace, its own shell's priority.
CAPABILITY_ACTIONS = (
    ("CAP_CHOWN", "give a file to uid 1", "touch /tmp/f && chown 1 /tmp/f"),
    ("CAP_DAC_OVERRIDE", "write to a file of mode 000",
     "echo x > /tmp/locked && chmod 000 /tmp/locked && echo y >> /tmp/locked"),
    ("CAP_NET_BIND_SERVICE", "listen on port 80", "httpd -p 80 -h /var/www"),
    ("CAP_NET_ADMIN", "bring its lo up", "ip link set lo up"),
    ("CAP_SYS_CHROOT", "chroot", "chroot / true"),
    ("CAP_SYS_NICE", "raise its priority", "sh -c 'renice -n -5 $$ >/dev/null'"),
    ("CAP_MKNOD", "make a device node", "mknod /tmp/null c 1 3"),
    ("CAP_SYS_ADMIN", "mount a tmpfs", "mkdir /tmp/m && mount -t tmpfs none /tmp/m"),
)


@dataclass(frozen=True)
class CapabilityProbe:
    """What a container with `kept` in its CapEff could do: (capability, action, error or "")."""

    kept: frozenset[str]
    rows: tuple[tuple[str, str, str], ...]

    def refused(self) -> set[str]:
        """The capabilities whose action the kernel refused."""
        return {cap for cap, _, error in self.rows if error}

    def __repr__(self) -> str:
        """
        >>> CapabilityProbe(frozenset({"CAP_CHOWN"}), (("CAP_CHOWN", "chown", ""),
        ...                 ("CAP_MKNOD", "mknod", "mknod: /tmp/null: Operation not permitted")))
        kept  CAP_CHOWN  chown  allowed
        -     CAP_MKNOD  mknod  refused: mknod: /tmp/null: Operation not permitted
        """
        width = max(len(cap) for cap, _, _ in self.rows)
        action_width = max(len(action) for _, action, _ in self.rows)
        return "\n".join(f"{'kept' if cap in self.kept else '-':4}  {cap:{width}}  "
                         f"{action:{action_width}}  "
                         f"{'refused: ' + error if error else 'allowed'}"
                         for cap, action, error in self.rows)

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><td><code>{cap}</code></td><td>{'kept' if cap in self.kept else ''}</td>"
            f"<td>{html.escape(action)}</td><td>{'❌ ' + html.escape(error) if error else '✅'}"
            "</td></tr>" for cap, action, error in self.rows)
        return ("<table><tr><th>capability</th><th></th><th>action</th><th>the kernel said</th>"
                f"</tr>{body}</table>")


def probe_capabilities(kept: Iterable[str] | str | None, *, rootfs: str | None = None,
                       timeout_s: float = 30.0, **options: Any) -> CapabilityProbe:
    """Run every action of `CAPABILITY_ACTIONS` as root in one container with its own network
    namespace that keeps `kept` (`Spec(capabilities=...)`: None keeps every one), on the
    embedded rootfs, with any other Spec `options`; return what each action got (nothing, or
    its first line of error) and the container's CapEff, as the kernel showed it inside.

    Raises:
        SpecError: `kept` or `options` are not what Spec takes; no container was started.
    """
    from pycontain.fs import rootfs as rootfs_module
    from pycontain.security import capabilities

    script = "grep CapEff /proc/self/status\n" + "".join(
        f"if ({line}) 2>/tmp/error; then echo ok; else head -n 1 /tmp/error; echo; fi\n"
        for _, _, line in CAPABILITY_ACTIONS)
    root = rootfs if rootfs is not None else str(rootfs_module.ensure())
    options.setdefault("namespaces", {"mnt", "pid", "net", "uts", "ipc"})
    result = runtime.run(["sh", "-c", script], rootfs=root, capabilities=kept,
                         timeout_s=timeout_s, **options)
    effective, *said = [line for line in result.stdout.splitlines() if line.strip()]
    if result.status != 0 or len(said) != len(CAPABILITY_ACTIONS):
        raise PycontainError(f"the capability probe {result.reason} and printed "
                             f"{result.stdout!r} {result.stderr.strip()!r}")
    return CapabilityProbe(capabilities.names(int(effective.split()[1], 16)), tuple(
        (cap, action, "" if answer == "ok" else answer)
        for (cap, action, _), answer in zip(CAPABILITY_ACTIONS, said, strict=True)))


def capability_grid(kept: Iterable[str] = ("CAP_CHOWN", "CAP_DAC_OVERRIDE",
                                           "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT")) -> Any:
    """A tick box per capability of `CAPABILITY_ACTIONS` and a button: each press runs the
    probe in a container that keeps only the ticked ones, and shows which actions the kernel
    refused. Without a front end (CI) the widget still builds and runs once, with `kept`."""
    import ipywidgets

    ticked = set(kept)
    boxes = {cap: ipywidgets.Checkbox(value=cap in ticked, description=cap, indent=False)
             for cap, _, _ in CAPABILITY_ACTIONS}
    grid = ipywidgets.GridBox(list(boxes.values()),
                              layout={"grid_template_columns": "repeat(4, 220px)"})
    return _control_and_button(grid, lambda _: probe_capabilities(
        [cap for cap, box in boxes.items() if box.value])._repr_html_())


# ---- lesson 11: a container's clocks next to the host's -------------------------------------

#: what a container runs to report its clocks: CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME
_CLOCKS_REPORT = "import time;print(time.clock_gettime(1), time.clock_gettime(7), time.time())"


class Clocks(tuple):  # type: ignore[type-arg]
    """The three clocks read on the host and in a container, in seconds: `host` and
    `container` map "monotonic", "boottime" and "realtime" to what each side read; `shift`
    is container minus host (the host read just before the container started)."""

    host: dict[str, float]
    container: dict[str, float]

    def __new__(cls, host: dict[str, float], container: dict[str, float]) -> Clocks:
        self = super().__new__(cls, (host, container))
        self.host, self.container = host, container
        return self

    @property
    def shift(self) -> dict[str, float]:
        return {clock: self.container[clock] - self.host[clock] for clock in self.host}

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{clock}</td><td>{self.host[clock]:,.1f}</td>"
            f"<td>{self.container[clock]:,.1f}</td><td>{self.shift[clock]:+,.1f}</td></tr>"
            for clock in self.host)
        return ("<table><tr><th>clock</th><th>host (s)</th><th>container (s)</th>"
                f"<th>container − host</th></tr>{rows}</table>")


def compare_clocks(offsets: Mapping[str, float] | None = None, **options: Any) -> Clocks:
    """Read the three clocks here, then in a new container with its own time namespace and
    `offsets` (other `pycontain.run` options may follow), and return both readings."""
    import sys

    host = {"monotonic": time.clock_gettime(timens.CLOCKS["monotonic"]),
            "boottime": time.clock_gettime(timens.CLOCKS["boottime"]), "realtime": time.time()}
    options.setdefault("namespaces", {"time"})
    result = runtime.run([sys.executable, "-I", "-S", "-c", _CLOCKS_REPORT],
                           time_offsets=dict(offsets or {}), timeout_s=60, **options)
    if result.status != 0:
        raise ProcessError(f"the clock report {result.reason}: {result.stderr}",
                           hint="its own words are after the colon; an offset the kernel "
                                "refuses fails before, with its hint (lesson 11)")
    values = [float(v) for v in result.stdout.split()]
    return Clocks(host, dict(zip(("monotonic", "boottime", "realtime"), values, strict=True)))


def uptime_playground(days: float = 1.0) -> object:
    """A slider for the boottime offset, in days, and a button: each press starts a container
    with that offset and shows its clocks next to the host's.

    Without a front end (CI) the widget still builds and runs once, with `days`.
    """
    import ipywidgets

    slider = ipywidgets.FloatSlider(value=days, min=0.0, max=3650.0, step=0.5,
                                    description="booted days ago", style={"description_width":
                                                                          "initial"})
    return _control_and_button(
        slider, lambda days: compare_clocks({"boottime": days * 86400})._repr_html_())


# ---- lesson 10: a container's view of the cgroups ------------------------------------------

#: where the view below mounts a cgroupfs inside the container: its private mount namespace
#: hides the mount from the host, and the host's /mnt stays as it was
MOUNT_POINT = "/mnt"


class CgroupView(namedtuple("CgroupView", "cgroups mounted children procs shows_own")):
    """What a container saw: `cgroups`, its /proc/self/cgroup (parsed); `mounted`, the
    hierarchy it mounted ('v2' or a v1 controller); `children`, the cgroup directories at the
    top of that mount; `procs`, the PIDs in the top cgroup.procs (its own numbering);
    `shows_own`, whether its own cgroup path (as /proc/self/cgroup names it) is in the mount."""

    __slots__ = ()


def _script(version: int, controller: str) -> str:
    options = f"-t cgroup -o {controller}" if version == 1 else "-t cgroup2"
    line = "^0::" if version == 2 else f"^[0-9]*:([^:]*,)?{controller}(,[^:]*)?:"
    return (f"cat /proc/self/cgroup; echo --; mount {options} none {MOUNT_POINT} && "
            f"(cd {MOUNT_POINT} && for d in */; do [ -d \"$d\" ] && echo \"${{d%/}}\"; done; "
            f"echo --; cat cgroup.procs; echo --; "
            f"own=$(grep -E '{line}' /proc/self/cgroup | cut -d: -f3-); "
            f"[ -d \"{MOUNT_POINT}$own\" ] && echo yes || echo no)")


def look_inside(controller: str = "pids", **options: Any) -> CgroupView:
    """Run a container that prints /proc/self/cgroup, mounts the cgroup hierarchy holding
    `controller` (v2, or v1's) at /mnt inside, and lists what that mount shows.

    Options are those of `pycontain.run`; the default namespaces are {"cgroup", "mnt", "pid"}:
    mnt so that the mount stays inside, pid so that cgroup.procs lists the container's PIDs.
    """
    from pycontain import cgroups

    layout = cgroups.detect()
    version = 2
    for hierarchy in layout.hierarchies:
        if controller in hierarchy.controllers:
            version = hierarchy.version
            break
    options.setdefault("namespaces", {"cgroup", "mnt", "pid"})
    result = runtime.run(["sh", "-c", _script(version, controller)], timeout_s=60, **options)
    if result.status != 0:
        raise ProcessError(f"the cgroup view {result.reason}: {result.stderr}",
                           hint="its own words are after the colon: the shell script that "
                                "reads /proc/self/cgroup and the cgroup files inside (lesson 10)")
    own_text, children, procs, shows = (result.stdout + "\n").split("--\n", 3)
    return CgroupView(cgroupns.parse(own_text), "v2" if version == 2 else controller,
                      children.split(), [int(p) for p in procs.split()], shows.strip() == "yes")


# ---- lesson 19: a counting process, frozen and thawed ----------------------------------------

class Counting:
    """A container counting every 10 ms into the file `path` (`workloads.counter`), a monitor
    sampling that file, and the spans during which it was frozen (seconds on the monitor's
    clock; the end is None while it still is). `freeze()` and `thaw()` go through the
    container (lesson 19); `figure()` draws the count with the frozen spans shaded."""

    def __init__(self, box: runtime.Container, path: str, watch: Any) -> None:
        self.box, self.path, self.watch = box, path, watch
        self.frozen_spans: list[list[float | None]] = []

    def _now_s(self) -> float:
        return float(time.monotonic() - self.watch.started_at)

    def freeze(self) -> None:
        self.box.freeze()  # returns once the kernel says every task is stopped
        self.frozen_spans.append([self._now_s(), None])

    def thaw(self) -> None:
        self.box.thaw()
        if self.frozen_spans and self.frozen_spans[-1][1] is None:
            self.frozen_spans[-1][1] = self._now_s()

    def samples(self) -> tuple[list[float], list[float]]:
        """The sample times (s) and the counts read then."""
        return self.watch.times_s(), self.watch.series()["count"]

    def figure(self) -> Any:
        from pycontain.observe import plot

        times, counts = self.samples()
        fig = plot.cgroup_timeline(times, {"the container's count": counts}, unit="counts",
                                   scale=1, ylabel="count",
                                   title="A counting container, frozen (shaded) and thawed")
        (ax,) = fig.axes
        for start, end in self.frozen_spans:
            ax.axvspan(start or 0.0, end if end is not None else self._now_s(),
                       color="tab:cyan", alpha=0.25)
        return fig

    def _repr_png_(self) -> bytes:
        return bytes(self.figure()._repr_png_())

    def stop(self) -> None:
        """Stop sampling, and kill and reap the container (thawed or not)."""
        from pycontain.observe import probe

        self.watch.stop()
        probe.stop(self.box)


def start_counting(directory: str, *, every_s: float = 0.01, seconds: float | None = None,
                   hz: float = 50.0, **options: Any) -> Counting:
    """Start `workloads.counter` in a container with a cgroup (pids_max='max' unless other
    limits are given: lesson 19 freezes through it), counting into `directory`/count, and a
    monitor sampling that file at `hz`. It counts for `seconds` (default: the workloads'
    ceiling, 120 s) unless stopped first with `.stop()`."""
    from pycontain import workloads
    from pycontain.observe import monitor

    path = os.path.join(directory, "count")
    with open(path, "w") as f:  # the monitor opens it before the counter's first write
        f.write("0\n")
    if "limits" not in options and not any(k.startswith(("memory_", "pids_")) for k in options):
        options["pids_max"] = "max"
    seconds = seconds or workloads.TIME_CEILING_S
    box = runtime.spawn(workloads.counter_argv(path, every_s, seconds), **options)
    try:
        watch = monitor.Monitor([monitor.Probe("count", path)], hz=hz).start()
    except BaseException:
        box.kill()
        box.wait()
        raise
    return Counting(box, path, watch)


def freeze_toggle(counting: Counting) -> Any:
    """A toggle button, "frozen": each press freezes or thaws the counting container and
    redraws its count, the frozen spans shaded; "redraw" draws it again without changing it.

    Without a front end (CI) the widget still builds and draws once.
    """
    import ipywidgets

    toggle = ipywidgets.ToggleButton(value=False, description="frozen", icon="snowflake-o")
    again = ipywidgets.Button(description="redraw", icon="refresh")
    picture = ipywidgets.Image(format="png")
    status = ipywidgets.HTML()

    def draw(_: object = None) -> None:
        picture.value = counting._repr_png_()
        status.value = f"<code>{html.escape(counting.box.status().state)}</code>"

    def flip(change: Mapping[str, Any]) -> None:
        try:
            if change["new"]:
                counting.freeze()
            else:
                counting.thaw()
        except PycontainError as e:
            status.value = f"<pre>{html.escape(format_error(e))}</pre>"
            return
        draw()

    toggle.observe(flip, names="value")
    again.on_click(draw)
    draw()
    return ipywidgets.VBox([ipywidgets.HBox([toggle, again]), picture, status])


# --- lesson 18: burners pinned with cpuset.cpus, and how busy each CPU was --------------------

@dataclass
class CpusetRun:
    """What `cpuset_experiment` saw: how busy each CPU was every `every_s` (`shares`: CPU ->
    busy shares from /proc/stat, 0 to 1), the container's cpuset.cpus.effective (None: it had
    no cpuset), its `Result`, and the burner's own account (`workloads.spread_report`)."""

    label: str
    every_s: float
    times_s: list[float]
    shares: dict[int, list[float]]
    effective: str | None
    result: runtime.Result | None
    burned: dict[str, Any] | None

    def busy(self, cpu: int) -> float:
        """How busy `cpu` was on average while the burner ran, 0 to 1."""
        values = self.shares.get(cpu, [])
        return sum(values) / len(values) if values else 0.0

    def figure(self) -> Any:
        from pycontain.observe import plot

        return plot.cpu_heatmap({self.label: (self.times_s, self.shares)}, every_s=self.every_s)

    def _repr_png_(self) -> bytes:
        return bytes(self.figure()._repr_png_())


def cpuset_experiment(cpus: str | None = "0", *, workers: int = 2, seconds: float | None = None,
                      every_s: float = 0.1, on_sample: Callable[[CpusetRun], None] | None = None
                      ) -> CpusetRun:
    """Run a burner (`workers` processes spinning for `seconds`, default $PYCONTAIN_DURATION)
    in a container with cpuset.cpus = `cpus` (None: no cpuset, every CPU), and sample
    /proc/stat every `every_s` s meanwhile. `on_sample(run)` is called after each sample (the
    widget redraws its heat map there). /proc/stat counts the whole machine: other work shows
    up too.

    Raises:
        SpecError: a malformed list, or CPUs outside the parent cgroup's effective set.
    """
    from pycontain import workloads

    seconds = seconds or settings.duration_s()
    options: dict[str, Any] = {} if cpus is None else {"cpuset_cpus": cpus}
    box = runtime.spawn(workloads.spread_argv(workers, seconds), namespaces={"pid", "mnt"},
                        **options)
    label = "no cpuset: every CPU" if cpus is None else f"cpuset.cpus = {cpus}"
    run = CpusetRun(label, every_s, [], {}, None, None, None)
    try:
        if box.cgroup is not None:
            run.effective = box.cgroup.read("cpuset.cpus.effective")
        start = time.monotonic()
        before = procfs.cpu_times()
        while box.running and time.monotonic() - start < seconds + 30:
            time.sleep(max(0.0, start + (len(run.times_s) + 1) * every_s - time.monotonic()))
            after = procfs.cpu_times()
            for cpu, share in procfs.busy_shares(before, after).items():
                run.shares.setdefault(cpu, []).append(share)
            run.times_s.append(len(run.times_s) * every_s)
            before = after
            if on_sample is not None:
                on_sample(run)
        run.result = box.wait(timeout_s=30)
        run.burned = workloads.spread_report(run.result.stdout)
    finally:
        if box.running:
            box.kill()
            box.wait()
    return run


def cpuset_playground(cpus: str = "0", seconds: float = 3.0) -> Any:
    """A text field for cpuset.cpus and a "burn" button: each press runs a burner with two
    workers for `seconds` in a container pinned to those CPUs (empty: no cpuset), and redraws
    the per-CPU heat map live. Without a front end (CI) it builds and runs once, with `cpus`."""
    import ipywidgets

    field = ipywidgets.Text(value=cpus, description="cpuset.cpus", placeholder="empty: all")
    def run(on_sample: Callable[[CpusetRun], None]) -> tuple[CpusetRun, str]:
        done = cpuset_experiment(field.value.strip() or None, seconds=seconds,
                                 on_sample=on_sample)
        return done, f"<code>{html.escape(done.result.stdout if done.result else '')}</code>"

    return live_playground([field], "burn", run)


def live_playground(controls: list[Any], label: str,
                    run: Callable[[Callable[[Any], None]], tuple[Any, str]]) -> Any:
    """Controls, a button `label` and a picture: each press calls `run(on_sample)`, which runs
    the experiment with the controls' values, calling `on_sample(partial_run)` as samples come
    in (the picture is redrawn each time, live), and returns (the run, a status line in HTML);
    an error is shown instead. It runs once at once, so that it works without a front end."""
    import ipywidgets

    button = ipywidgets.Button(description=label, icon="play")
    picture = ipywidgets.Image(format="png")
    status = ipywidgets.HTML()

    def draw(partial: Any) -> None:
        picture.value = partial._repr_png_()

    def refresh(_: object = None) -> None:
        button.disabled = True
        try:
            done, status.value = run(draw)
            draw(done)
        except PycontainError as e:
            status.value = f"<pre>{html.escape(format_error(e))}</pre>"
        finally:
            button.disabled = False

    button.on_click(refresh)
    refresh()
    return ipywidgets.VBox([ipywidgets.HBox([*controls, button]), picture, status])


# --- lesson 17: what a container sends, under the egress rate you type -------------------------

def bandwidth_playground(egress_rate: str = "5mbit", seconds: float = 2.0) -> Any:
    """A text field for egress_rate and a "send" button: each press runs a container on the
    bridge that sends to the host for `seconds` with that rate on its veth (empty: none), and
    redraws what the host received, interval by interval (`throughput.measure`). Without a
    front end (CI) it builds and runs once, with `egress_rate`."""
    import ipywidgets

    from pycontain.observe import throughput

    field = ipywidgets.Text(value=egress_rate, description="egress_rate",
                            placeholder="empty: none")

    def run(on_sample: Callable[[throughput.Throughput], None]
            ) -> tuple[throughput.Throughput, str]:
        drawn = [0.0]

        def every_quarter_second(partial: throughput.Throughput) -> None:
            if time.monotonic() - drawn[0] >= 0.25:  # a redraw takes a while: not every 0.1 s
                on_sample(partial)
                drawn[0] = time.monotonic()

        done = throughput.measure(field.value.strip() or None, seconds=seconds,
                                  on_sample=every_quarter_second)
        return done, (f"<code>{done.mbit:.2f} Mbit/s: {done.total_bytes} bytes in "
                      f"{done.seconds:.2f} s, first byte to last</code>")

    return live_playground([field], "send", run)


# --- lesson 21: one system call under the action you pick --------------------------------------

def seccomp_playground(directory: str, call: str = "mkdir", action: str = "SCMP_ACT_ERRNO"
                       ) -> Any:
    """Two drop-downs, a system call and an action, and a button: each press compiles the
    profile that gives that call that action (`seccomp_probe.profile_for`), shows its filter
    instruction by instruction, and runs a container that makes the call (in `directory`),
    with what it saw and what the kernel logged. Without a front end it runs once."""
    import ipywidgets

    from pycontain.observe import seccomp_probe
    from pycontain.security import seccomp

    calls = ipywidgets.Dropdown(options=list(seccomp_probe.CALLS), value=call,
                                description="call")
    actions = ipywidgets.Dropdown(options=["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_ERRNO",
                                           "SCMP_ACT_KILL_PROCESS"], value=action,
                                  description="action")
    button = ipywidgets.Button(description="run a container", icon="play")
    shown = ipywidgets.HTML()

    def refresh(_: object = None) -> None:
        profile = seccomp_probe.profile_for(calls.value, actions.value)
        try:
            program = seccomp.compile(profile)
            done = seccomp_probe.try_call(calls.value, profile, directory)
        except PycontainError as e:
            shown.value = f"<pre>{html.escape(format_error(e))}</pre>"
            return
        shown.value = (f"<pre>{html.escape(seccomp.listing(program))}</pre>"
                       f"<p><code>{html.escape(str(done))}</code></p>")

    button.on_click(refresh)
    refresh()
    return ipywidgets.VBox([ipywidgets.HBox([calls, actions, button]), shown])
