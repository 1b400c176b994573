"""Experiments of lesson 15: CPU burners sharing one CPU by cpu.weight, capped by cpu.max.

- `share_experiment(100, 300)` starts one burner per weight, each in a container of its own
  (sibling cgroups) and all pinned to the same CPU, starts them at the same moment, and
  samples each cgroup's `cpu.stat` usage while they compete: `ShareRun.shares` is what each
  got, `ShareRun` draws a stacked plot of the CPU each used, live with `on_sample`.
- `throttle_experiment(0.25)` runs one burner under `cpu.max` and samples `cpu.stat`:
  usage per second against the cap, and `nr_throttled` climbing.
- `latency_experiment(0.2)` runs a bursty request loop (`workloads.requests`) with and
  without the quota, and compares the latencies: a histogram.
- `share_playground()`: sliders for two weights and a button that runs `share_experiment`.

Each lasts a few seconds (`seconds`); every container is stopped before it returns.

See also: Documentation/admin-guide/cgroup-v2.rst ("CPU"), scheduler/sched-bwc.rst.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pycontain import runtime, workloads
from pycontain.errors import ProcessError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pycontain.cgroups.limits import Limits

def one_cpu() -> int:
    """The CPU the burners share: the first this process may run on."""
    return min(os.sched_getaffinity(0))


def _usage_s(cgroup: Any) -> float:
    return float(cgroup.read_keyed("cpu.stat")["usage_usec"]) / 1e6


@dataclass
class ShareRun:
    """What `share_experiment` saw: for each burner (by label), the CPU it used (`usage_s`,
    cumulative, sampled at `times_s`), its CPU time over the shared seconds as it reported it
    (`burned_s`), and the window it burned in (`start_s`, `end_s`, on the same clock)."""

    times_s: list[float]
    usage_s: dict[str, list[float]]
    burned_s: dict[str, float]
    start_s: float
    end_s: float
    cpu: int

    @property
    def shares(self) -> dict[str, float]:
        """Each burner's part of what they got together (0-1), from the burners' own CPU
        clocks over the seconds they competed."""
        total = sum(self.burned_s.values()) or 1.0
        return {label: burned / total for label, burned in self.burned_s.items()}

    def ratio(self, first: str, second: str) -> float:
        """How many times the CPU `second` got as `first`."""
        return self.burned_s[second] / max(self.burned_s[first], 1e-9)

    def figure(self) -> Any:
        from pycontain.observe import plot

        rates = {label: _rates(self.times_s, used) for label, used in self.usage_s.items()}
        return plot.stacked_usage(self.times_s, rates, window_s=(self.start_s, self.end_s),
                                  title=f"burners pinned to CPU {self.cpu}: " + ", ".join(
                                      f"{k} {v:.0%}" for k, v in self.shares.items()))

    def _repr_png_(self) -> bytes:
        return bytes(self.figure()._repr_png_())


def _rates(times_s: Sequence[float], used_s: Sequence[float]) -> list[float]:
    out = [0.0]
    for i in range(1, len(times_s)):
        dt = times_s[i] - times_s[i - 1]
        out.append(max(0.0, used_s[i] - used_s[i - 1]) / dt if dt > 0 else 0.0)
    return out


def share_experiment(*limits: Limits | int | str, seconds: float = 3.0, hz: float = 10.0,
                     on_sample: Callable[[ShareRun], None] | None = None) -> ShareRun:
    """Run one CPU burner per item of `limits` (a cpu.weight as a number, or a `Limits`),
    each in its own container, all pinned to one CPU, competing for `seconds`.

    The burners start *gated*: each waits for SIGUSR1, which they all get at once when every
    one of them is waiting, however long their interpreters took to start.

    Raises:
        SpecError: a weight out of range, or limits that are not Limits.
    """
    from pycontain.cgroups.limits import Limits

    chosen = [item if isinstance(item, Limits) else Limits(cpu_weight=item) for item in limits]
    labels = [_label(item) for item in chosen]
    if len(set(labels)) != len(labels):
        labels = [f"{i + 1}: {label}" for i, label in enumerate(labels)]
    cpu = one_cpu()
    boxes: list[runtime.Container] = []
    times: list[float] = []
    usage: dict[str, list[float]] = {label: [] for label in labels}
    origin = start = time.monotonic()

    def snapshot(burned: dict[str, float]) -> ShareRun:
        return ShareRun(list(times), {k: list(v) for k, v in usage.items()}, burned,
                        start - origin, start - origin + seconds, cpu)

    try:
        for item in chosen:
            boxes.append(runtime.spawn(workloads.burn_argv(seconds, cpu, gated=True),
                                       namespaces={"pid", "mnt"}, limits=item))
        cgroups = [box.cgroup for box in boxes]
        start = _start_together(boxes, timeout_s=120)
        deadline = start + seconds + 60
        while all(box.running for box in boxes) and time.monotonic() < deadline:
            times.append(time.monotonic() - origin)
            for label, cgroup in zip(labels, cgroups, strict=True):
                usage[label].append(_usage_s(cgroup))
            if on_sample is not None:
                on_sample(snapshot({}))
            time.sleep(max(0.0, origin + len(times) / hz - time.monotonic()))
        results = [box.wait(timeout_s=max(1.0, deadline - time.monotonic())) for box in boxes]
    finally:  # waiting removes a container's cgroup, also one that has ended by itself
        for box in boxes:
            if box.running:
                box.kill()
            box.wait()
    burned = {label: workloads.burned(result.stdout)[0]
              for label, result in zip(labels, results, strict=True)}
    return snapshot(burned)


def _start_together(boxes: Sequence[runtime.Container], *, timeout_s: float) -> float:
    """Wait until every gated burner waits for SIGUSR1 (it catches it: /proc/<pid>/status
    `SigCgt`; during sigtimedwait(2) `SigBlk` does not show it), then send it to all; return
    when it was sent."""
    bit = 1 << (signal.SIGUSR1 - 1)
    deadline = time.monotonic() + timeout_s
    for box in boxes:
        while not int(_status_field(box.pid, "SigCgt") or "0", 16) & bit:
            if not box.running or time.monotonic() > deadline:
                result = box.wait(timeout_s=1)
                raise ProcessError(f"the burner {box.pid} never waited to start: "
                                   f"{result.reason}: {result.stdout}{result.stderr}".strip())
            time.sleep(0.01)
    sent = time.monotonic()
    for box in boxes:
        os.kill(box.pid, signal.SIGUSR1)
    return sent


def _status_field(pid: int, name: str) -> str | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key == name:
                    return value.strip()
    except FileNotFoundError:  # it exited
        return None
    return None


def _label(limits: Any) -> str:
    values = limits.settings()
    return ", ".join(f"{knob} {value}" for knob, value in values.items()) or "no limits"


@dataclass
class ThrottleRun:
    """What `throttle_experiment` saw: `cpu.stat` sampled at `times_s` (each key a list),
    the cap in CPUs, and the burner's own account (CPU seconds, wall seconds)."""

    times_s: list[float]
    stat: dict[str, list[int]]
    cpus: float
    burned: tuple[float, float]

    @property
    def used_cpus(self) -> float:
        """The CPUs the burner used on average: its CPU time over its wall time."""
        return self.burned[0] / self.burned[1]

    def figure(self) -> Any:
        from pycontain.observe import plot

        used = _rates(self.times_s, [u / 1e6 for u in self.stat["usage_usec"]])
        return plot.cgroup_timeline(
            self.times_s[1:], {"CPU used (cpu.stat usage_usec per s)": used[1:]},
            limits={f"cpu.max = {self.cpus:g} CPUs": self.cpus}, unit="CPUs", scale=1,
            ylabel="CPU", title=f"a burner under cpu.max: {self.used_cpus:.2f} CPUs used, "
                                f"throttled {self.stat['nr_throttled'][-1]} times")

    def _repr_png_(self) -> bytes:
        return bytes(self.figure()._repr_png_())


def throttle_experiment(cpus: float | str = 0.25, *, seconds: float = 3.0,
                        hz: float = 10.0) -> ThrottleRun:
    """Run one burner with `cpu_max=cpus` (docker's --cpus) for `seconds`; sample cpu.stat."""
    from pycontain.cgroups.limits import Limits

    limits = Limits(cpu_max=cpus)
    quota, period = str(limits.cpu_max).split()
    box = runtime.spawn(workloads.burn_argv(seconds), namespaces={"pid", "mnt"}, limits=limits)
    assert box.cgroup is not None
    times: list[float] = []
    stat: dict[str, list[int]] = {}
    try:
        origin = time.monotonic()
        while box.running and time.monotonic() < origin + seconds + 30:
            sample = box.cgroup.read_keyed("cpu.stat")
            times.append(time.monotonic() - origin)
            for key in ("usage_usec", "nr_periods", "nr_throttled", "throttled_usec"):
                stat.setdefault(key, []).append(sample[key])
            time.sleep(max(0.0, origin + len(times) / hz - time.monotonic()))
        result = box.wait(timeout_s=30)
    finally:  # waiting removes the container's cgroup, also when it has ended by itself
        if box.running:
            box.kill()
        box.wait()
    return ThrottleRun(times, stat, int(quota) / int(period), workloads.burned(result.stdout))


@dataclass
class LatencyRun:
    """Request latencies in ms (`workloads.requests`), by how the loop ran ("no cpu.max",
    "cpu.max 20000 100000"), and each run's average CPU use in % of a CPU, as it reported it."""

    latencies_ms: dict[str, list[float]]
    used_percent: dict[str, float]
    period_ms: float

    def worst_ms(self, label: str) -> float:
        return max(self.latencies_ms[label])

    def figure(self) -> Any:
        from pycontain.observe import plot

        return plot.latency_histogram(self.latencies_ms, period_ms=self.period_ms,
                                      title="the same requests, with and without a quota")

    def _repr_png_(self) -> bytes:
        return bytes(self.figure()._repr_png_())


def latency_experiment(cpus: float | str = 0.2, *, count: int = 12, every_s: float = 0.23,
                       work_ms: float = 30.0) -> LatencyRun:
    """Run `count` requests of `work_ms` ms of CPU every `every_s` s, without a cap and then
    with `cpu_max=cpus`; return each request's latency. 0.23 s is no whole number of 100 ms
    periods, so the requests arrive at every point of a period."""
    from pycontain.cgroups.limits import Limits

    capped = Limits(cpu_max=cpus)
    found: dict[str, list[float]] = {}
    used: dict[str, float] = {}
    for label, options in (("no cpu.max", {}), (f"cpu.max {capped.cpu_max}", {"limits": capped})):
        result = runtime.run(workloads.requests_argv(count, every_s, work_ms),
                             namespaces={"pid", "mnt"}, timeout_s=count * every_s + 60,
                             **options)  # type: ignore[arg-type]
        found[label] = workloads.latencies_ms(result.stdout)
        used[label] = workloads.used_percent(result.stdout)
    return LatencyRun(found, used, int(str(capped.cpu_max).split()[1]) / 1000)


def share_playground(first: int = 100, second: int = 300) -> Any:
    """Two cpu.weight sliders and a "run" button: each press runs `share_experiment` with
    those weights and redraws the stacked plot live. Without a front end (CI) it builds and
    runs once, with the given values."""
    import html

    import ipywidgets

    from pycontain.observe import widgets

    sliders = [ipywidgets.IntSlider(value=value, min=1, max=1000, step=10,
                                    description=f"cpu.weight {n}")
               for n, value in ((1, first), (2, second))]
    def run(on_sample: Callable[[ShareRun], None]) -> tuple[ShareRun, str]:
        def draw(partial: ShareRun) -> None:
            if len(partial.times_s) > 1:  # a stacked plot needs two samples
                on_sample(partial)

        done = share_experiment(*(s.value for s in sliders), seconds=2.0, on_sample=draw)
        return done, html.escape(", ".join(f"{k}: {v:.0%}" for k, v in done.shares.items()))

    return widgets.live_playground(sliders, "run the burners", run)
