"""The checks of lesson 19, freeze and kill.

`check_pause_and_resume` starts a counting container (`widgets.start_counting`) and calls the
learner's `pause(box)`: then the kernel must say the cgroup is frozen (`cgroup.events` frozen
1; v1 `freezer.state` FROZEN), the count must stand still, and the process must not be merely
stopped (state T: SIGSTOP). Then `resume(box)`: the count must move again. `check_kill_tree`
starts a fork bomb in a container without a PID namespace, so that killing its first process
leaves the rest running, and calls `kill_tree(box)`: then the container's cgroup must empty.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable

from pycontain import runtime, workloads
from pycontain.checks import Passed, attempt, expect
from pycontain.observe import probe, widgets

#: how long the check watches a frozen count, and waits for a moving or an empty one
WATCH_S = 0.3
DEADLINE_S = 15.0


def _count(path: str) -> int:
    with open(path) as f:
        return int(f.read().split()[0])


def _until(condition: Callable[[], bool], timeout_s: float = DEADLINE_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def check_pause_and_resume(pause: Callable[[runtime.Container], object],
                           resume: Callable[[runtime.Container], object]) -> Passed:
    """`pause(box)` freezes a counting container; `resume(box)` lets it count again."""
    with tempfile.TemporaryDirectory(prefix="pycontain-check19-") as directory:
        counting = widgets.start_counting(directory)
        try:
            box = counting.box
            expect(_until(lambda: _count(counting.path) > 3),
                   "the counting container never started counting (the check's fault)")
            attempt("pause(box)", pause, box)
            frozen = box.cgroup is not None and box.cgroup.frozen()
            # a signal is delivered a moment after kill(2) returns: give a stop time to show
            stopped = _until(lambda: box.status().state.startswith("T"),
                             0.0 if frozen else 3.0)
            state = box.status().state
            expect(not stopped,
                   f"the counter is stopped ({state}): that is SIGSTOP, which the process's "
                   "parent sees; freeze its cgroup instead: box.freeze()")
            expect(frozen,
                   "the kernel does not say the container is frozen (cgroup.events frozen 1, "
                   "v1 freezer.state FROZEN): pause(box) should call box.freeze()")
            before = _count(counting.path)
            time.sleep(WATCH_S)  # nothing to wait for: a frozen count never changes
            after = _count(counting.path)
            expect(after == before, f"the count moved from {before} to {after} while frozen")
            attempt("resume(box)", resume, box)
            moving = _until(lambda: _count(counting.path) > after)
            expect(moving and not (box.cgroup and box.cgroup.frozen()),
                   f"the count stays at {after} after resume(box): thaw it with box.thaw()")
        finally:
            counting.stop()
    return Passed(f"frozen, the count stood at {after} (state {state}, not T), and moved on "
                  "after resume(box)")


def check_kill_tree(kill_tree: Callable[[runtime.Container], object]) -> Passed:
    """`kill_tree(box)` kills every process of a fork bomb's container, however deep."""
    box = runtime.spawn(workloads.fork_bomb_argv(100, 30), namespaces={"mnt", "uts"},
                        pids_max="max")
    try:
        cgroup = box.cgroup
        assert cgroup is not None
        expect(_until(lambda: int(cgroup.read("pids.current")) >= 20),
               "the fork bomb never reached 20 processes (the check's fault)")
        attempt("kill_tree(box)", kill_tree, box)
        started = time.monotonic()
        empty = _until(lambda: not cgroup.populated(), timeout_s=5.0)
        took_s = time.monotonic() - started
        left = 0 if empty else int(cgroup.read("pids.current"))
        expect(empty, f"{left} processes are still in the container's cgroup: without a PID "
                      "namespace, killing the first process leaves its children running; kill "
                      "them all in one write: box.kill_all()")
    finally:
        probe.stop(box)
    return Passed(f"every process of the fork bomb was gone {took_s * 1000:.0f} ms after "
                  "kill_tree(box) returned")
