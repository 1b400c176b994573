"""Lesson 13's checks on the real kernel: a fork bomb and a thread bomb under pids.max, and the
wrong turns the check names (issue 18)."""

from __future__ import annotations

import pytest

import pycontain
from pycontain import runtime, workloads
from pycontain.checks import CheckFailed, lesson13
from pycontain.observe import probe

SECONDS = 3.0


def bomb(practice, argv=None, wait=True, stop=True, **limits):
    box = pycontain.spawn(argv or workloads.fork_bomb_argv(150, SECONDS), **limits)
    if stop:
        practice.defer(lambda: probe.stop(box), "stop the fork bomb")
    events = box.cgroup.wait_for_event("pids.events", "max") if wait and box.cgroup else {}
    return box, events


def test_the_check_passes_a_contained_bomb():
    assert "the kernel refused" in lesson13.check_contained(lambda p: bomb(p, pids_max=15))
    assert runtime.unwaited() == []


def returns_after_waiting(practice):
    box, events = bomb(practice, pids_max=15)
    box.wait()
    return box, events


def reads_before_waiting(practice):
    box, _ = bomb(practice, wait=False, pids_max=15)
    return box, box.cgroup.read_keyed("pids.events")  # at once: no fork refused yet


def raises_after_spawn(practice):
    pycontain.spawn(workloads.fork_bomb_argv(150, SECONDS), pids_max=15)
    raise RuntimeError("oops")


@pytest.mark.parametrize("contain,says", [
    (returns_after_waiting, "has ended already"),  # was a raw CgroupError: ENOENT
    (reads_before_waiting, "you read it before the bomb hit the limit"),  # was "is it running?"
    (raises_after_spawn, "the check stopped the 1 container(s)"),
    (lambda p: bomb(p, wait=False, stop=False, namespaces={"uts"}), "has no cgroup"),
    (lambda p: bomb(p, stop=False, pids_max=15), "left the fork bomb running"),
])
def test_the_check_names_the_wrong_turn(contain, says):
    with pytest.raises(CheckFailed) as info:
        lesson13.check_contained(contain)
    assert says in str(info.value)
    assert runtime.unwaited() == []  # nothing left running, whatever went wrong


def test_the_stretch_wants_threads_held_by_pids_max():
    threads = workloads.thread_bomb_argv(150, SECONDS)
    assert "pids.max counts tasks" in lesson13.check_threads_contained(
        lambda p: bomb(p, threads, pids_max=20))
    with pytest.raises(CheckFailed, match="a bomb of threads"):
        lesson13.check_threads_contained(lambda p: bomb(p, pids_max=20))
    assert runtime.unwaited() == []
