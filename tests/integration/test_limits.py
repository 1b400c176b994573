"""Limits on the real kernel: OOM kills, pids.max against a fork bomb, clean removal."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

import pycontain
from pycontain import cgroups, lab, workloads
from pycontain.errors import SpecError

ALLOCATE = [sys.executable, "-c", "bytearray(200 * 2**20)"]


def _cgroups() -> set[str]:
    return {item for item in lab.leftovers() if item.startswith("cgroup")}


@pytest.fixture(autouse=True)
def before():
    """The pycontain- cgroups already there (another test session may run at the same time)."""
    global _BEFORE
    _BEFORE = _cgroups()


_BEFORE: set[str] = set()


def ours() -> list[str]:
    """The pycontain- cgroups made since the test started that are still there."""
    return sorted(_cgroups() - _BEFORE)


def test_memory_max_oom_kills_an_allocator_and_the_result_says_so():
    result = pycontain.run(ALLOCATE, memory_max="32M", timeout_s=60)
    assert result.oom_killed and result.signal == signal.SIGKILL and result.status == 137
    assert result.reason == "killed by the OOM killer (memory.max = 32 MiB)"
    if result.memory_peak_bytes is not None:
        assert 16 << 20 < result.memory_peak_bytes <= 32 << 20
    assert not ours()


def test_cli_reports_the_oom_kill(cli):
    done = cli("run", "--memory", "32M", "--", *ALLOCATE)
    assert done.returncode == 137
    assert "killed by the OOM killer (memory.max = 32 MiB)" in done.stderr
    assert not ours()


def test_enough_memory_is_no_oom():
    result = pycontain.run([sys.executable, "-c", "bytearray(8 * 2**20)"], memory_max="64M")
    assert result.status == 0 and not result.oom_killed and result.reason == "exited 0"


def test_pids_max_stops_a_fork_bomb_and_pids_events_records_it():
    box = pycontain.spawn(workloads.fork_bomb_argv(200, 1.5), pids_max=12)
    try:
        deadline = time.monotonic() + 20
        while box.cgroup.read_keyed("pids.events")["max"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert int(box.cgroup.read("pids.current")) <= 12
        assert box.cgroup.read_keyed("pids.events")["max"] > 0
        assert box.cgroup.read("pids.max") == "12"
    finally:
        result = box.wait(60)
    assert "20 of at most" not in result.stdout and not ours()


def test_limits_read_back_as_asked():
    box = pycontain.spawn(["sleep", "30"], limits=pycontain.Limits(
        memory_max="48M", memory_swap_max=0, pids_max=9))
    with box:
        assert box.cgroup.read("memory.max") == str(48 << 20)
        assert box.cgroup.read("memory.swap.max") == "0"
        assert box.cgroup.read("pids.max") == "9"
        assert box.pid in box.cgroup.procs()
    assert not ours()


def test_sigkill_mid_run_still_removes_the_cgroup():
    box = pycontain.spawn(["sh", "-c", "sleep 30 & sleep 30 & wait"], namespaces={"uts"},
                          pids_max=10)
    deadline = time.monotonic() + 30  # wait for both children: the shell forks them after exec
    while len(box.cgroup.procs()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(box.cgroup.procs()) == 3
    os.kill(box.pid, signal.SIGKILL)  # the first process only: its children stay, in the cgroup
    result = box.wait(30)
    assert result.signal == signal.SIGKILL and not ours()


def test_this_process_stays_where_it_was():
    with open("/proc/self/cgroup") as f:
        before = f.read()
    pycontain.run(["true"], pids_max=5)
    with open("/proc/self/cgroup") as f:
        assert f.read() == before


@pytest.mark.parametrize("options", [
    {"memory_max": "10XB"}, {"memory_max": "-5"}, {"memory_max": "0"}, {"memory_max": "0.5"},
    {"pids_max": -3}, {"pids_max": 2.5}, {"memory_max": "32M", "memory_high": "64M"}])
def test_bad_input_creates_nothing(options):
    with pytest.raises(SpecError):
        pycontain.spawn(["true"], **options)
    assert not ours()


@pytest.mark.skipif(cgroups.detect().version("memory") != 1, reason="memory is on cgroup v2 here")
def test_v2_only_knob_refused_on_v1(cli):
    with pytest.raises(SpecError, match="memory.high"):
        pycontain.run(["true"], memory_high="16M")
    done = cli("run", "--memory-high", "16M", "--", "true")
    assert done.returncode == 125 and "--memory-high" in done.stderr


@pytest.mark.skipif(cgroups.detect().version("memory") != 2, reason="memory is on cgroup v1 here")
def test_memory_high_on_v2():
    box = pycontain.spawn(["sleep", "30"], memory_max="64M", memory_high="48M")
    with box:
        assert box.cgroup.read("memory.high") == str(48 << 20)
    assert not ours()
