"""Lesson 19's claims on the real kernel: freezing stops every process of a container (its
count stands still) until it is thawed; a frozen process is not a stopped one (no state T,
nothing for waitpid(WUNTRACED)), SIGSTOP is; one write kills a whole tree, a fork bomb too,
where killing the first process leaves the rest; v1's freezer.state does the same where the
unified tree is missing. The exercises' checks: test_lesson19_checks.py."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

import pycontain
from pycontain import cgroups, workloads
from pycontain.cgroups import v1
from pycontain.cgroups.layout import Layout, detect
from pycontain.errors import CgroupError
from pycontain.observe import probe, widgets

DEADLINE_S = 15.0


def until(condition, timeout_s=DEADLINE_S):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def count(path):
    with open(path) as f:
        return int(f.read().split()[0])


@pytest.fixture
def counting(tmp_path):
    found = widgets.start_counting(str(tmp_path), namespaces={"mnt", "uts"})
    yield found
    found.stop()
    assert found.box.cgroup.removed


def test_a_frozen_count_stands_still_and_moves_on_when_thawed(counting):
    until(lambda: count(counting.path) > 5)
    counting.freeze()
    assert counting.box.cgroup.frozen()
    frozen_at = count(counting.path)
    samples = counting.watch.wait_samples(len(counting.watch.times_s()) + 10)
    assert samples >= 10
    assert count(counting.path) == frozen_at
    state = counting.box.status().state
    assert state[0] in "SD", state  # asleep in the kernel (v1: D), not stopped (T)
    counting.thaw()
    assert not counting.box.cgroup.frozen()
    until(lambda: count(counting.path) > frozen_at)
    times, counts = counting.samples()
    (start, end), = counting.frozen_spans
    inside = [c for t, c in zip(times, counts, strict=True) if start < t < end]
    assert len(inside) >= 5 and len(set(inside)) == 1  # the plot's flat stretch
    if counting.box.cgroup.freezer_file()[1] == 2:
        from pycontain.cgroups.events import notifies

        assert notifies(os.path.join(os.path.dirname(counting.box.cgroup.freezer_file()[0]),
                                     "cgroup.events"))


def test_sigstop_is_seen_by_the_parent_and_a_freeze_is_not(counting):
    box = counting.box  # no PID namespace: the counter is this process's own child
    until(lambda: count(counting.path) > 2)
    os.kill(box.pid, signal.SIGSTOP)
    deadline = time.monotonic() + DEADLINE_S
    while (seen := os.waitpid(box.pid, os.WUNTRACED | os.WNOHANG)) == (0, 0):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert os.WIFSTOPPED(seen[1]) and os.WSTOPSIG(seen[1]) == signal.SIGSTOP
    assert box.status().state.startswith("T")
    os.kill(box.pid, signal.SIGCONT)
    until(lambda: not box.status().state.startswith("T"))
    box.freeze()
    assert not box.status().state.startswith("T")
    assert os.waitpid(box.pid, os.WUNTRACED | os.WNOHANG) == (0, 0)
    box.thaw()


def test_kill_all_ends_a_fork_bomb_in_one_write_where_killing_its_first_process_does_not():
    box = pycontain.spawn(workloads.fork_bomb_argv(100, 30), namespaces={"mnt", "uts"},
                          pids_max="max")
    try:
        cgroup = box.cgroup
        until(lambda: int(cgroup.read("pids.current")) >= 20)
        box.signal(signal.SIGKILL)
        until(lambda: not box.running)
        assert cgroup.populated() and int(cgroup.read("pids.current")) > 0  # the rest live on
        started = time.monotonic()
        box.kill_all()
        cgroup.wait_empty(timeout_s=DEADLINE_S)
        print(f"\nthe bomb's cgroup was empty {1000 * (time.monotonic() - started):.0f} ms "
              f"after kill_all()")
    finally:
        probe.stop(box)
    assert box.result.signal == signal.SIGKILL and cgroup.removed


def test_freezing_a_container_without_a_cgroup_says_why():
    with pycontain.spawn(["sleep", "30"], namespaces={"uts"}) as box:
        for call in (box.freeze, box.thaw, box.kill_all):
            with pytest.raises(CgroupError, match="has no cgroup") as caught:
                call()
            assert "pids_max='max'" in caught.value.hint
    ended = pycontain.spawn(["true"], namespaces={"uts"}, pids_max="max")
    ended.wait(timeout_s=30)
    with pytest.raises(CgroupError, match="has ended"):
        ended.freeze()


v1_freezer = pytest.mark.skipif(detect().version("freezer") != 1,
                                reason="needs a cgroup v1 freezer hierarchy")


@pytest.fixture
def v1_only():
    """A cgroup in the v1 hierarchies only, as a v1 host (no unified tree) has it."""
    layout = detect()
    only_v1 = Layout("v1", tuple(h for h in layout.hierarchies if h.version == 1))
    cgroup = v1.V1Cgroup.create(cgroups.new_name("v1frz"), ("pids",), only_v1, None)
    yield cgroup
    cgroup.remove()


@v1_freezer
def test_v1_freezer_state_freezes_thaws_and_kills_a_fork_bomb(v1_only):
    assert "unified" not in v1_only.dirs and v1_only.freezer_file()[1] == 1
    bomb = subprocess.Popen(["sh", "-c", "read go; exec \"$@\"", "sh",
                             *workloads.fork_bomb_argv(60, 30)], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL)
    try:
        v1_only.attach(bomb.pid)
        bomb.stdin.write(b"go\n")
        bomb.stdin.close()
        until(lambda: int(v1_only.read("pids.current")) >= 10)
        v1_only.freeze()
        state = os.path.join(v1_only.dirs["freezer"], "freezer.state")
        assert open(state).read().strip() == "FROZEN" and v1_only.frozen()
        frozen = int(v1_only.read("pids.current"))
        v1_only.thaw()
        assert open(state).read().strip() == "THAWED" and frozen >= 10
        v1_only.kill()  # no cgroup.kill here: freeze, SIGKILL each, thaw
        v1_only.wait_empty(timeout_s=DEADLINE_S)
        assert bomb.wait(timeout=DEADLINE_S) == -signal.SIGKILL
    finally:
        bomb.kill()
        bomb.wait()
