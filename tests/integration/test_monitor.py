"""monitor on the real kernel: events wake a wait when a container ends or is OOM-killed, the
sampler follows a hog and stops by itself when its cgroup is removed.

The cgroups here are made by hand, beneath this process's own in each hierarchy (as the
safety rules say), so that the monitor is proven independently of pycontain.cgroups.
"""

from __future__ import annotations

import math
import os
import secrets
import time

import pytest

import pycontain
from pycontain import lab, workloads
from pycontain.cgroups import events
from pycontain.observe import monitor
from pycontain.observe.monitor import Monitor, Probe

MiB = 1 << 20


def own_dir(hierarchy: str) -> str:
    """Where these tests may make cgroups in the v1 hierarchy `hierarchy`, or in cgroup2 (''):
    beneath $PYCONTAIN_CGROUP_PARENT when set (a delegated service, like the lab VM's Jupyter,
    whose cgroup then hands memory and pids down), else beneath this process's own cgroup."""
    parent = os.environ.get("PYCONTAIN_CGROUP_PARENT")
    with open("/proc/self/cgroup") as f:
        lines = f.read().splitlines()
    for line in lines:
        _, names, path = line.split(":", 2)
        if (hierarchy == "" and not names) or hierarchy in names.split(","):
            mount = ("/sys/fs/cgroup/" + hierarchy if hierarchy else
                     "/sys/fs/cgroup/unified" if lab.cgroup_mode() == "hybrid" else
                     "/sys/fs/cgroup")
            base = os.path.join(mount, (parent or path).lstrip("/"))
            if parent and lab.cgroup_mode() == "v2":
                with open(os.path.join(base, "cgroup.subtree_control"), "w") as f:
                    f.write("+memory +pids")
            return base
    pytest.skip(f"no {hierarchy or 'cgroup2'} hierarchy here")


@pytest.fixture
def make_cgroup():
    """make_cgroup('memory'|'') -> a fresh pycontain- cgroup directory, removed afterwards."""
    made: list[str] = []

    def make(hierarchy: str) -> str:
        path = os.path.join(own_dir(hierarchy), f"pycontain-test-{secrets.token_hex(3)}")
        os.mkdir(path)
        made.append(path)
        return path

    yield make
    for path in reversed(made):
        if os.path.isdir(path):
            events.wait_until_empty(path, timeout_s=10)
            os.rmdir(path)


def place(*cgroups: str):
    def on_created(pid: int) -> None:
        for cgroup in cgroups:
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write(str(pid))
    return on_created


def memory_cgroup(make_cgroup) -> tuple[str, str, str]:
    """A memory cgroup and the names of its usage and limit files in this version."""
    if lab.cgroup_mode() == "v2":
        return make_cgroup(""), "memory.current", "memory.max"
    return make_cgroup("memory"), "memory.usage_in_bytes", "memory.limit_in_bytes"


def test_waiting_for_a_container_to_end_wakes_on_cgroup_events(make_cgroup):
    cgroup = make_cgroup("")  # v2, or the hybrid host's unified mount: both have cgroup.events
    assert events.notifies(os.path.join(cgroup, "cgroup.events"))
    box = pycontain.spawn(["sleep", "0.5"], namespaces={"pid", "mnt"},
                          on_created=place(cgroup))
    assert monitor.keyed("populated")(events.read_text(f"{cgroup}/cgroup.events")) == 1
    start = time.monotonic()
    events.wait_until_empty(cgroup, timeout_s=10)
    woke = time.monotonic() - start
    assert box.wait(timeout_s=5).exit_code == 0
    assert 0.2 < woke < 20  # it slept until the end (0.5 s), and woke when it came (TCG is slow)


def test_sampler_follows_a_hog_and_stops_when_the_cgroup_goes(make_cgroup):
    cgroup, usage, _ = memory_cgroup(make_cgroup)
    hog = pycontain.spawn(workloads.hog_argv("8M", 0.05, "48M", hold_s=0.3),
                          namespaces={"pid", "mnt"}, on_created=place(cgroup))
    m = Monitor([Probe(usage, f"{cgroup}/{usage}")], hz=50).start()
    assert hog.wait(timeout_s=30).exit_code == 0
    peak = max(m.series()[usage])
    # the hog's memory, plus its interpreter (0 would mean the hog ran outside the cgroup)
    assert 40 * MiB <= peak <= 48 * MiB + 32 * MiB, m.series()[usage]
    assert m.running
    events.wait_until_empty(cgroup, timeout_s=10)
    os.rmdir(cgroup)
    deadline = time.monotonic() + 2
    while m.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not m.running and math.isnan(m.series()[usage][-1])  # ENODEV: it stopped by itself
    times = m.times_s()
    assert abs((len(times) - 1) / (times[-1] - times[0]) - 50) < 5


def test_oom_kill_is_recorded_and_usage_stays_under_the_limit(make_cgroup):
    cgroup, usage, limit = memory_cgroup(make_cgroup)
    with open(f"{cgroup}/{limit}", "w") as f:
        f.write(str(32 * MiB))
    if lab.cgroup_mode() != "v2":
        with open(f"{cgroup}/memory.memsw.limit_in_bytes", "w") as f:  # no swap either
            f.write(str(32 * MiB))
    counter, key = ((f"{cgroup}/memory.events", "oom_kill") if lab.cgroup_mode() == "v2"
                    else (f"{cgroup}/memory.oom_control", "oom_kill"))
    with Monitor([Probe(usage, f"{cgroup}/{usage}")], hz=50) as m:
        hog = pycontain.spawn(workloads.hog_argv("4M", 0.02, "128M"), namespaces={"pid", "mnt"},
                              on_created=place(cgroup))
        assert monitor.wait_for_count(counter, key, timeout_s=30) >= 1
        result = hog.wait(timeout_s=30)
    assert result.signal == 9                       # the OOM killer's SIGKILL
    assert max(m.series()[usage]) <= 32 * MiB       # never above memory.max
    assert workloads.allocated(result.stdout)[-1][1] < 32 * MiB


def test_counters_follow_a_throttled_container_the_same_way_on_both_versions():
    # what a stats table reads: cpu time and throttling, memory and tasks, named as on v2 and in
    # v2's units (v1's cpuacct.usage in ns becomes µs), from the files this cgroup has
    from pycontain import runtime
    from pycontain.cgroups.limits import Limits

    box = runtime.spawn(workloads.burn_argv(2.0), namespaces={"pid", "mnt"},
                        limits=Limits(cpu_max=0.25, memory_max="64M", pids_max=16))
    assert box.cgroup is not None
    try:
        probes = monitor.counters(box.cgroup)
        assert {p.name for p in probes} >= {"cpu_usage_usec", "cpu_nr_throttled",
                                            "cpu_throttled_usec", "memory_current",
                                            "memory_oom_kill", "pids_current", "pids_refused"}
        with Monitor(probes, hz=20) as watch:
            box.wait(timeout_s=60)
        series = {name: [v for v in values if not math.isnan(v)]
                  for name, values in watch.series().items()}
    finally:
        if box.running:
            box.kill()
        box.wait()
    usage = series["cpu_usage_usec"]
    wall_us = (watch.times_s()[-1] - watch.times_s()[0]) * 1e6
    assert usage[-1] > usage[0]
    assert usage[-1] - usage[0] <= 0.45 * wall_us  # the quarter of a CPU, with room
    assert series["cpu_nr_throttled"][-1] > series["cpu_nr_throttled"][0]
    assert max(series["memory_current"]) > 1 << 20  # a Python interpreter's pages
    assert max(series["pids_current"]) >= 1 and series["pids_refused"][-1] == 0
