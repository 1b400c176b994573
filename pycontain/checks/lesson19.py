"""The checks of lesson 19, freeze and kill.

`check_pause_and_resume` starts a counting container (`widgets.start_counting`) and calls the
learner's `pause(box)`: at once when it returns the kernel must say the cgroup is frozen
(`cgroup.events` frozen 1; v1 `freezer.state` FROZEN), the count must stand still, and the
process must not be merely stopped (state T: SIGSTOP). Then `resume(box)`: the count must move
again and no freezer may still hold it. On a hybrid host the container has both freezers, the
unified tree's `cgroup.freeze` and v1's `freezer.state`: either one counts.

`check_kill_tree` starts a fork bomb in a container without a PID namespace, so that killing
its first process leaves the rest running, and calls `kill_tree(box)`: then the container's
cgroup must empty within `KILL_S`.

They recognise the wrong turns seen when the exercises were tried: SIGSTOP instead of a
freeze, a pause that returns before the kernel has finished freezing (the write only asks), a
value the freezer file refuses (EINVAL, ERANGE: v1 takes words, v2 a number), a resume by
SIGCONT or none, a kill of the first process only, a kill that signals nothing, and a kill of a
frozen tree. (One pass of SIGKILL over `cgroup.procs` emptied the bomb every time it was tried
here: the check takes it.) Whatever the learner's function started or froze is thawed, killed
and removed when it raises or the check fails.

The stretch, `check_stop_politely`, is `systemctl stop` (KillMode=control-group): `stop(box,
grace_s)` must give every process of a tree SIGTERM, a moment to leave, then kill the rest and
say how many it had to kill. The check's tree has processes that leave on SIGTERM (each says
goodbye in a file), and stubborn ones, the first process among them, which ignore it.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
import time
from collections.abc import Callable

from pycontain import runtime, workloads
from pycontain.cgroups.base import Cgroup
from pycontain.cgroups.controllers import freezer
from pycontain.checks import CheckFailed, Passed, attempt, expect, release_started
from pycontain.checks.exercise import exercise
from pycontain.observe import probe, widgets

#: how long the check watches a frozen count, and waits for a moving or an empty one
WATCH_S = 0.3
DEADLINE_S = 15.0
#: how long after pause(box) returned the check looks for a freeze that came late
LATE_S = 1.0
#: how soon after kill_tree(box) returned the cgroup must be empty
KILL_S = 5.0
#: the stretch: the tree's processes that leave on SIGTERM and those that ignore it (the first
#: process is one more stubborn one), and the grace it is given
POLITE, STUBBORN = 3, 2
GRACE_S = 1.0

PAUSE_HINTS = (
    "\"Freeze it\" says which file of the container's cgroup freezes it, on v2 and on v1; "
    "box.cgroup.freezer_file() tells where that file is here, and which version it is.",
    "Writing the file only asks: each task must reach a point where it can stop. Which file "
    "says the kernel is done (cgroup-v2.rst, \"cgroup.events\"; v1 freezer-subsystem.rst)? "
    "pause(box) returns only then.",
    "The two versions take different values: v2 a number, v1 words (and v1 reads FREEZING "
    "while it is not done yet). Thawing is the same file with the other value.",
)
KILL_HINTS = (
    "\"Kill a whole tree at once\" showed what is not enough, and said what holds every "
    "process of the bomb: where is the one file that kills them all (cgroup-v2.rst, "
    "\"cgroup.kill\")?",
    "box.cgroup.file(knob) gives the path of a knob of the container's cgroup, by its v2 name "
    "(on this kind of host, in the unified tree). What does that file take?",
    "Without it (a v1-only host, Linux before 5.14) a list of PIDs races the forks: the end "
    "of the lesson's last section says what to do first, so that the list cannot grow.",
)
STOP_HINTS = (
    "The first process ignores SIGTERM and passes nothing on: each process of the container "
    "must get it. Which file of the cgroup lists them (lesson 12)?",
    "Give them the grace to leave (the cgroup's populated state, lesson 12, says when all "
    "have), then kill what is left as in the Try-it; count what you had to kill before you do.",
    "A tree that forks while you signal it can add a PID after you read the list: the freezer "
    "holds the list still (freeze, signal each, thaw; signals arrive once thawed).",
)

#: the stretch's tree: children that say goodbye on SIGTERM, children and a first process that
#: ignore it; each says it is ready once its handler is set
_TREE = """
import os, signal, sys, time
where, polite, stubborn = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def mark(name):
    with open(os.path.join(where, f"{name}-{os.getpid()}"), "w"):
        pass
def leave(*_):
    mark("bye")
    os._exit(0)
for n in range(polite + stubborn):
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, leave if n < polite else signal.SIG_IGN)
        mark("ready")
        time.sleep(60)
        os._exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
mark("ready")
time.sleep(60)
"""


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


def _freezers(cgroup: Cgroup) -> list[tuple[str, str, int]]:
    """Each freezer the container's cgroup has: (the file that freezes, the file that says
    done, version). A hybrid host has two: the unified tree's and v1's freezer hierarchy."""
    found = []
    if "unified" in cgroup.dirs or "freezer" not in cgroup.dirs:
        path = cgroup.file("cgroup.freeze")
        if "unified" not in cgroup.dirs or os.path.exists(path):
            found.append((path, os.path.join(os.path.dirname(path), "cgroup.events"), 2))
    if "freezer" in cgroup.dirs:
        path = os.path.join(cgroup.dirs["freezer"], "freezer.state")
        found.append((path, path, 1))
    return found


def _frozen_by(cgroup: Cgroup) -> list[str]:
    """The freezer files whose kernel says every task is stopped now."""
    frozen = []
    for path, done, version in _freezers(cgroup):
        try:
            with open(done) as f:
                if freezer.frozen(f.read(), version):
                    frozen.append(path)
        except OSError:  # the cgroup is gone
            continue
    return frozen


def _asked(cgroup: Cgroup) -> list[str]:
    """The freezer files asked to freeze (done or not)."""
    asked = []
    for path, _, version in _freezers(cgroup):
        try:
            with open(path) as f:
                value = f.read().strip()
        except OSError:
            continue
        if (value == "1") if version == 2 else value in ("FREEZING", "FROZEN"):
            asked.append(path)
    return asked


def _thaw_all(cgroup: Cgroup | None) -> None:
    """Thaw every freezer of the cgroup: a task frozen by v1's freezer gets no SIGKILL until
    it is thawed, so the check's clean-up does this first."""
    if cgroup is None or cgroup.removed:
        return
    for path, _, version in _freezers(cgroup):
        try:
            with open(path, "w") as f:
                f.write("0" if version == 2 else "THAWED")
        except OSError:
            continue


def _refused_value(e: CheckFailed) -> CheckFailed:
    """A write the freezer file refused (EINVAL, ERANGE) is a value of the other version."""
    cause = e.__cause__
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    code = getattr(cause, "errno", None) or getattr(e.__cause__, "errno", None)
    if code in (errno.EINVAL, errno.ERANGE):
        return CheckFailed(f"{e}: the kernel refused the value written to the freezer file. "
                           "v2's cgroup.freeze and v1's freezer.state take different values "
                           "(cgroup-v2.rst \"cgroup.freeze\", cgroup-v1/freezer-subsystem.rst); "
                           "box.cgroup.freezer_file() says which one this is")
    return e


def _call(shown: str, func: Callable[..., object], *args: object) -> object:
    try:
        return attempt(shown, func, *args)
    except CheckFailed as e:
        raise _refused_value(e) from e.__cause__


@exercise(hints=PAUSE_HINTS, answers=(Cgroup.freeze, Cgroup.thaw))
def check_pause_and_resume(pause: Callable[[runtime.Container], object],
                           resume: Callable[[runtime.Container], object]) -> Passed:
    """`pause(box)` freezes a counting container and returns once it is frozen; `resume(box)`
    lets it count again."""
    before = set(runtime.unwaited())
    with tempfile.TemporaryDirectory(prefix="pycontain-check19-") as directory:
        counting = widgets.start_counting(directory)
        box = counting.box
        cgroup = box.cgroup
        assert cgroup is not None
        try:
            expect(_until(lambda: _count(counting.path) > 3),
                   "the counting container never started counting (the check's fault)")
            _call("pause(box)", pause, box)
            frozen = _frozen_by(cgroup)
            if not frozen:
                # a signal is delivered a moment after kill(2) returns: give a stop time to show
                stopped = _until(lambda: box.status().state.startswith("T"), 3.0)
                expect(not stopped,
                       f"the counter is stopped ({box.status().state}): that is SIGSTOP, job "
                       "control, which the process's parent sees and any process may undo "
                       "(\"SIGSTOP is not a freeze\"); the cgroup has a file that freezes")
                late = _until(lambda: bool(_frozen_by(cgroup)), LATE_S)
                expect(not late,
                       "pause(box) returned before the kernel had finished freezing: the "
                       "kernel said frozen only a moment later. Writing the file asks; "
                       "another file says when every task is stopped, and pause returns "
                       "only then (\"Freeze it\")")
                expect(not _asked(cgroup),
                       f"the freezer file was written ({', '.join(_asked(cgroup))}), but the "
                       f"kernel never said frozen within {LATE_S:g} s: read the file that says "
                       "when it is done, and the version's word for done")
                raise CheckFailed(
                    "the kernel does not say the container is frozen (cgroup.events frozen 1, "
                    "v1 freezer.state FROZEN): pause(box) should freeze the container's cgroup "
                    "(\"Freeze it\"; box.cgroup.freezer_file() says where)")
            state = box.status().state
            before_count = _count(counting.path)
            time.sleep(WATCH_S)  # nothing to wait for: a frozen count never changes
            after = _count(counting.path)
            expect(after == before_count,
                   f"the count moved from {before_count} to {after} while frozen")
            _call("resume(box)", resume, box)
            moving = _until(lambda: _count(counting.path) > after, 5.0)
            still = _asked(cgroup)
            expect(not still and moving,
                   f"the count stays at {after} after resume(box): "
                   + (f"{', '.join(still)} still holds it frozen: thawing is a write to the "
                      "file that froze it; no signal, SIGCONT included, wakes a frozen task"
                      if still else "is the counter still stopped?"))
        finally:
            _thaw_all(cgroup)
            counting.stop()
            release_started(before)
    return Passed(f"frozen, the count stood at {after} (state {state}, not T; "
                  f"{os.path.basename(frozen[0])} said so at once), and moved on after "
                  "resume(box)")


def _bomb() -> runtime.Container:
    box = runtime.spawn(workloads.fork_bomb_argv(100, 30), namespaces={"mnt", "uts"},
                        pids_max="max")
    assert box.cgroup is not None
    cgroup = box.cgroup
    if not _until(lambda: int(cgroup.read("pids.current")) >= 20):
        probe.stop(box)
        raise CheckFailed("the fork bomb never reached 20 processes (the check's fault)")
    return box


@exercise(hints=KILL_HINTS, answers=(Cgroup.kill, Cgroup.kill_by_freezing))
def check_kill_tree(kill_tree: Callable[[runtime.Container], object]) -> Passed:
    """`kill_tree(box)` kills every process of a fork bomb's container, however deep."""
    before = set(runtime.unwaited())
    box = _bomb()
    cgroup = box.cgroup
    assert cgroup is not None
    try:
        attempt("kill_tree(box)", kill_tree, box)
        started = time.monotonic()
        empty = _until(lambda: not cgroup.populated(), timeout_s=KILL_S)
        took_s = time.monotonic() - started
        if not empty:
            left = int(cgroup.read("pids.current"))
            expect(not _asked(cgroup),
                   f"{left} processes are still in the container's cgroup, frozen: a frozen "
                   "task gets no signal, SIGKILL included, until it is thawed")
            expect(not box.running,
                   f"{left} processes are still in the container's cgroup, its first process "
                   "among them: what did kill_tree(box) signal?")
            raise CheckFailed(
                f"the first process is gone, but {left} processes are still in the "
                f"container's cgroup {KILL_S:g} s after kill_tree(box) returned: without a PID "
                "namespace its children do not die with it (\"Kill a whole tree at once\"). "
                "What holds all of them?")
    finally:
        _thaw_all(cgroup)
        probe.stop(box)
        release_started(before)
    return Passed(f"every process of the fork bomb was gone {took_s * 1000:.0f} ms after "
                  "kill_tree(box) returned")


def _marks(where: str, name: str) -> int:
    return sum(1 for found in os.listdir(where) if found.startswith(f"{name}-"))


@exercise(hints=STOP_HINTS, stretch=True)
def check_stop_politely(stop: Callable[[runtime.Container, float], object]) -> Passed:
    """Stretch: `stop(box, grace_s)` gives every process SIGTERM, waits at most `grace_s` for
    them to leave, kills the rest, and returns how many it had to kill."""
    before = set(runtime.unwaited())
    with tempfile.TemporaryDirectory(prefix="pycontain-check19-") as where:
        box = runtime.spawn([sys.executable, "-I", "-S", "-c", _TREE, where, str(POLITE),
                             str(STUBBORN)], namespaces={"uts"}, pids_max="max")
        cgroup = box.cgroup
        assert cgroup is not None
        try:
            expect(_until(lambda: _marks(where, "ready") == POLITE + STUBBORN + 1),
                   "the check's tree never got ready (the check's fault)")
            started = time.monotonic()
            killed = attempt("stop(box, grace_s)", stop, box, GRACE_S)
            took_s = time.monotonic() - started
            empty = _until(lambda: not cgroup.populated(), 2.0)
            left = 0 if empty else int(cgroup.read("pids.current"))
            expect(empty, f"{left} processes are still in the container's cgroup after "
                          "stop(box, grace_s) returned: the stubborn ones ignore SIGTERM, and "
                          "what is left after the grace is killed")
            bye = _marks(where, "bye")
            expect(bye == POLITE,
                   f"only {bye} of the {POLITE} processes that leave on SIGTERM did so: each "
                   "process must get SIGTERM (the first one ignores it and passes nothing "
                   "on), and a moment to leave before the kill")
            expect(took_s <= GRACE_S + 3.0,
                   f"stop(box, grace_s) took {took_s:.1f} s with grace_s={GRACE_S:g}: wait at "
                   "most the grace, then kill")
            stubborn = STUBBORN + 1
            expect(killed == stubborn,
                   f"stop(box, grace_s) returned {killed!r}: {stubborn} processes (the first "
                   "one among them) were still there after the grace and had to be killed; "
                   "return how many")
        finally:
            _thaw_all(cgroup)
            probe.stop(box)
            release_started(before)
    return Passed(f"the {POLITE} polite processes left on SIGTERM, and the {stubborn} stubborn "
                  f"ones were killed after the grace, {took_s:.2f} s in all: systemctl stop's "
                  "way (KillMode=control-group), where docker stop signals the first process "
                  "only")
