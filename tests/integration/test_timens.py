"""Lesson 11's claims on the real kernel: a time namespace shifts boottime and monotonic by the
requested offsets, the wall clock stays shared, and bad offsets create nothing."""

from __future__ import annotations

import time

import pytest

import pycontain
from pycontain import lab, procfs
from pycontain.errors import SpecError
from pycontain.namespaces import time as timens

#: prints CLOCK_MONOTONIC, CLOCK_BOOTTIME and CLOCK_REALTIME as the container reads them
CLOCKS = ["python3", "-I", "-S", "-c",
          "import time;print(time.clock_gettime(1), time.clock_gettime(7), time.time())"]

# generous: the lead's CI shares this machine, and a container takes tens of ms to start
SLACK_S = 5.0


def clocks_inside(**options):
    before = (time.monotonic(), time.clock_gettime(time.CLOCK_BOOTTIME), time.time())
    result = pycontain.run(CLOCKS, timeout_s=60, **options)
    after = (time.monotonic(), time.clock_gettime(time.CLOCK_BOOTTIME), time.time())
    assert result.status == 0, (result.reason, result.stderr)
    inside = [float(v) for v in result.stdout.split()]
    return before, inside, after


def between(value, low, high):
    return low - 0.01 <= value <= high + 0.01


@pytest.mark.parametrize("namespaces", [{"time"}, {"time", "pid", "mnt"}])
def test_boottime_and_monotonic_shift_by_the_offsets_realtime_does_not(namespaces):
    day, hour = 86400, 3600
    before, (mono, boot, real), after = clocks_inside(
        namespaces=namespaces, time_offsets={"boottime": day, "monotonic": hour})
    assert between(mono - hour, before[0], after[0] + SLACK_S)
    assert between(boot - day, before[1], after[1] + SLACK_S)
    assert between(real, before[2], after[2] + SLACK_S)  # the wall clock: no offset


def test_without_offsets_a_time_namespace_reads_the_host_clocks():
    before, (mono, boot, _), after = clocks_inside(namespaces={"time"})
    assert between(mono, before[0], after[0]) and between(boot, before[1], after[1])


def test_the_container_is_in_a_new_time_namespace():
    with pycontain.spawn(["sleep", "30"], namespaces={"time"},
                         time_offsets={"boottime": 60}) as container:
        assert container.namespaces()["time"] != procfs.namespace("self", "time")
        # the file shows the offsets of the namespace the process's children would join:
        # for the container's process, its own
        assert timens.read_offsets(container.pid) == {"monotonic": 0, "boottime": 60}


def test_uptime_inside_is_a_day_more():
    result = pycontain.run(["cat", "/proc/uptime"], namespaces={"time"},
                           time_offsets={"boottime": 86400}, timeout_s=60)
    with open("/proc/uptime") as f:
        outside = float(f.read().split()[0])
    inside = float(result.stdout.split()[0])
    assert 86400 - SLACK_S <= inside - outside <= 86400 + 0.01


@pytest.mark.parametrize("offsets", [{"boottime": -10 * 365 * 86400}, {"boottime": 1e12},
                                     {"realtime": 5}])
def test_bad_offsets_create_nothing(offsets):
    before = set(lab.leftovers())
    with pytest.raises(SpecError):
        pycontain.spawn(["true"], namespaces={"time"}, time_offsets=offsets, pids_max=10)
    assert set(lab.leftovers()) == before
