"""Lesson 11's claims on the real kernel: a time namespace shifts boottime and monotonic by the
requested offsets, the wall clock stays shared, and bad offsets create nothing."""

from __future__ import annotations

import os
import subprocess
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


# --- the lesson's checks -----------------------------------------------------------------------

def _host_clocks():
    return {"monotonic": time.clock_gettime(time.CLOCK_MONOTONIC),
            "boottime": time.clock_gettime(time.CLOCK_BOOTTIME)}


def carries_on(argv, clocks):
    now = _host_clocks()
    return pycontain.run(argv, namespaces={"time"},
                         time_offsets={c: clocks[c] - now[c] for c in clocks})


@pytest.fixture
def nothing_left():
    """No container and no process the check's learner function started outlives the check."""
    from pycontain import runtime
    from pycontain.checks import children

    boxes, before = set(runtime.unwaited()), children()
    yield
    assert set(runtime.unwaited()) <= boxes
    assert children() <= before


def test_the_check_passes_clocks_that_carry_on(nothing_left):
    from pycontain.checks import lesson11

    passed = lesson11.check_carries_on(carries_on)
    assert "both carried on" in passed
    assert "def write_offsets" in passed._repr_markdown_()


def _offsets(mistake, clocks):
    now = _host_clocks()
    return {"as the offset": dict(clocks),
            "sign": {c: now[c] - clocks[c] for c in clocks},
            "boottime only": {"boottime": clocks["boottime"] - now["boottime"]},
            "wall clock": {c: clocks[c] - time.time() for c in clocks}}[mistake]


@pytest.mark.parametrize("mistake,teaching", [
    ("as the offset", "the reading itself was given as the offset"),
    ("sign", "its sign is turned round"),
    ("boottime only", "the host's own clock: no offset for monotonic"),
    ("wall clock", "time.time() is CLOCK_REALTIME"),
    (None, "in the host's time namespace"),
])
def test_the_check_names_the_wrong_turn(nothing_left, mistake, teaching):
    from pycontain.checks import CheckFailed, lesson11

    def wrong(argv, clocks):
        if mistake is None:
            return pycontain.run(argv)
        return pycontain.run(argv, namespaces={"time"}, time_offsets=_offsets(mistake, clocks))

    with pytest.raises(CheckFailed) as info:
        lesson11.check_carries_on(wrong)
    assert teaching in str(info.value)
    assert "time_offsets=" not in str(info.value)  # where to look, not the code to write


def test_a_learner_exception_leaves_no_container_and_no_process(nothing_left):
    from pycontain.checks import CheckFailed, lesson11

    started = []

    def raises(argv, clocks):
        started.append(pycontain.spawn(["sleep", "300"], namespaces={"time"}))
        started.append(subprocess.Popen(["sleep", "300"]))
        raise RuntimeError("oops")

    with pytest.raises(CheckFailed, match="stopped the 1 container.*stopped the 1 process"):
        lesson11.check_carries_on(raises)
    assert not started[0].running
    assert not os.path.exists(f"/proc/{started[1].pid}")


@pytest.mark.parametrize("fork", [False, True])
def test_the_stretch_passes_unshare_with_or_without_fork(nothing_left, fork):
    from pycontain.checks import lesson11

    def day_old(argv):
        return subprocess.run(["unshare", "--time", *(["--fork"] if fork else []),
                               "--boottime", "86400", *argv], capture_output=True, text=True)

    # execve(2) enters time_for_children too: unshare(1) needs no --fork for a time namespace
    assert "a day ahead" in lesson11.check_unshare_a_day_ago(day_old)


@pytest.mark.parametrize("options,capture,teaching", [
    (["--boottime", "86400"], True, "require"),  # no --time: unshare(1) says what it needs
    (["--time", "--boottime", "86400"], False, "capture it"),
    (["--time", "--monotonic", "86400"], True, "which option sets CLOCK_BOOTTIME's offset"),
])
def test_the_stretch_names_the_wrong_turn(nothing_left, options, capture, teaching):
    from pycontain.checks import CheckFailed, lesson11

    def wrong(argv):
        return subprocess.run(["unshare", *options, *argv], capture_output=capture, text=True)

    with pytest.raises(CheckFailed, match=teaching):
        lesson11.check_unshare_a_day_ago(wrong)
