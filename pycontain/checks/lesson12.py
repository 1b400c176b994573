"""The checks of lesson 12, meet cgroups.

The checks read the kernel's own files: where the learner's cgroup directories are, what the
parent's `pids.max`, `pids.current` and `cgroup.procs` say and what its child's `cgroup.procs`
says, and whether `practice.close()` left any directory behind. They recognise the wrong turns
seen when the exercise was tried: the process left in the parent (the v2 rule: processes live
in the leaves), no child directory (or one in another hierarchy only), the limit written to
the child instead of the parent, the container's own cgroup from `spawn(pids_max=...)` handed
back, this notebook's own process moved in (the check moves it back where it was).

Clean-up removes only what this check's call made: the cgroups this process created during
the call (`cgroups.unremoved()`), by their recorded paths; never a sweep of a directory that
holds other people's cgroups. Containers the function started are stopped first.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable

from pycontain import cgroups, procfs, runtime
from pycontain.cgroups import v1, v2
from pycontain.cgroups.base import unremoved
from pycontain.checks import CheckFailed, Passed, attempt, expect, release_started
from pycontain.checks.exercise import exercise
from pycontain.errors import CgroupError
from pycontain.lab import Lab

LIMIT = 10
CHILD = "inner"
#: the stretch: how many processes the child's command asks for, against the parent's LIMIT
ASKED = 30
#: how long the stretch waits for the kernel's count of a refused fork
SETTLE_S = 10.0

CHILD_HINTS = (
    "A child cgroup is made the way any cgroup is: reread \"Make a cgroup\" for the system "
    "call, and the v2 rule's cell for the helper that makes it.",
    "On v1 the cgroup has one directory per hierarchy (`cg.dirs`); the child is a directory "
    "in each of them. A process moves by writing its pid to a cgroup.procs file, the child's.",
    "The limit stays on the parent: the kernel counts the processes of a cgroup and all its "
    "descendants against its pids.max (the parent's pids.current shows it).",
)
HIERARCHY_HINTS = (
    "Start a command in the child that asks for more processes than the parent allows, and "
    "keeps them; leave the child's own pids.max at 'max'.",
    "A command that forks at once forks before you have moved it. \"Move a process in\" says "
    "when runtimes move the container's process; help(pycontain.spawn) names that step.",
    "The check waits for the kernel's count of refused forks (pids.events) in the parent or "
    "the child; what must still run when your function returns?",
)


def _own_cgroups() -> dict[str, str]:
    """This process's own directory in each mounted hierarchy, by mount point."""
    return {h.mount: h.own_dir for h in cgroups.detect().hierarchies}


def _move_back(before: dict[str, str], inside: list[str]) -> str:
    """If this process was moved into one of `inside` (the learner's directories), move it back
    where it was before the call, hierarchy by hierarchy; say so ('' when it was not)."""
    from pycontain import settings

    moved = []
    for mount, here in _own_cgroups().items():
        was = before.get(mount)
        if was is None or here == was or \
                not any(here == d or here.startswith(d + "/") for d in inside):
            continue  # not moved, or moved by pycontain itself (v2 delegation)
        try:
            cgroups.write_file(os.path.join(was, "cgroup.procs"), os.getpid())
        except CgroupError:  # v2 delegated: the caller lives in its leaf
            cgroups.write_file(os.path.join(was, settings.SELF_LEAF, "cgroup.procs"),
                               os.getpid())
        moved.append(was)
    return (f" (this notebook's own process had been moved into your cgroup; the check moved it "
            f"back to {moved})") if moved else ""


def _attempt_cgroup(shown: str, build: Callable[[Lab], object], practice: Lab,
                    judge: Callable[[cgroups.Cgroup], None]) -> cgroups.Cgroup:
    """Call `build(practice)`, judge the cgroup it returns, close `practice`; whatever happens,
    stop the containers it started, move this notebook back if it was moved, and remove the
    cgroup it returned if this call made it."""
    before_boxes = set(runtime.unwaited())
    before_cgroups = _own_cgroups()
    existed = unremoved()
    made: object = None
    try:
        made = attempt(shown, build, practice, returns=cgroups.Cgroup,
                       instead="return the cgroup that cgroups.create(...) gave you")
        assert isinstance(made, cgroups.Cgroup)
        mine = [d for d in made.dirs.values() if os.path.isdir(d)]
        back = _move_back(before_cgroups, mine)
        expect(not back, "this notebook's own process was in the cgroup: attach the "
                         f"container's pid instead{back}")
        judge(made)
    except BaseException as e:
        stopped = release_started(before_boxes)
        back = _move_back(before_cgroups, list(made.dirs.values())) \
            if isinstance(made, cgroups.Cgroup) else ""
        practice.close()
        removed = _remove_if_made(existed)
        cause = e.__cause__
        if isinstance(cause, CgroupError) and cause.errno == errno.ENOENT \
                and "pids.max" in cause.message:  # v2: a child without the parent's +pids
            raise CheckFailed(
                f"{e}\nA child cgroup has pids.max only once its parent hands the pids "
                "controller down (v2: the parent's cgroup.subtree_control). Either way, the "
                f"limit of {LIMIT} belongs on the parent, where it holds all beneath it"
                f"{stopped}{back}{removed}") from e
        if isinstance(e, CheckFailed) and (stopped or back or removed):
            raise CheckFailed(f"{e}{stopped}{back}{removed}") from e
        raise
    practice.close()
    stopped = release_started(before_boxes)
    left = [d for top in made.dirs.values() if os.path.isdir(top)
            for d in cgroups.walk_up(top)]
    _remove_if_made(existed)
    expect(not left and not stopped,
           f"practice.close() left {left or 'the container running'}: register, with "
           "practice.defer(undo, what), both the container's stop and the cgroup's removal "
           f"(newest first: the stop runs before the removal). The check removed them{stopped}")
    return made


def _remove_if_made(existed: list[cgroups.Cgroup]) -> str:
    """Remove every cgroup that this process created during the check's call and that is still
    there: by the paths pycontain recorded, nobody else's. Say which ('' when none)."""
    removed = [cg for cg in unremoved() if cg not in existed]
    for cg in removed:
        cg.remove()
    return (f" (the check removed the cgroup(s) your function had made: "
            f"{', '.join(cg.name for cg in removed)})") if removed else ""


def _is_container_cgroup(cg: cgroups.Cgroup) -> None:
    expect(not cg.name.startswith("pycontain-ctr-"),
           f"{cg.name} is a container's own cgroup, which pycontain.spawn(..., pids_max=...) "
           "made: build yours yourself, as \"Make a cgroup\" did")


def _state(cg: cgroups.Cgroup) -> None:
    _is_container_cgroup(cg)
    layout = cgroups.detect()
    own = {cgroups.home(h) for h in layout.hierarchies}
    for path in cg.dirs.values():
        expect(os.path.isdir(path), f"{path} does not exist (removed already?)")
        expect(os.path.dirname(path) in own,
               f"{path} is not directly beneath this process's own cgroup (or "
               "$PYCONTAIN_CGROUP_PARENT) in its hierarchy: make it with cgroups.create()")
    pids_dir = os.path.dirname(cg.file("pids.max"))
    child = os.path.join(pids_dir, CHILD)
    expect(os.path.isdir(child),
           f"there is no child cgroup {CHILD!r} in {pids_dir}, the directory of the pids "
           "hierarchy: that is where pids.max counts")
    limit = cg.read("pids.max")
    child_limit = cgroups.read_file(os.path.join(child, "pids.max")).strip() \
        if os.path.exists(os.path.join(child, "pids.max")) else "max"
    expect(limit == str(LIMIT),
           f"the parent's pids.max reads {limit!r}, the child's {child_limit!r}: the limit of "
           f"{LIMIT} belongs on the parent, {cg.name}" if child_limit == str(LIMIT) else
           f"the parent's pids.max reads {limit!r}; set it to {LIMIT}")
    parents = cgroups.procs(pids_dir)
    inside = cgroups.procs(child)
    expect(not parents,
           f"the parent's cgroup.procs holds {parents}: move the container into the child, "
           f"{CHILD!r}, and leave the parent without processes (on v2 the no-internal-"
           "processes rule demands it as soon as the parent hands controllers down)")
    expect(bool(inside), f"the child's cgroup.procs ({child}) is empty: move the container's "
                         "process in")
    current = int(cg.read("pids.current"))
    expect(current >= len(inside),
           f"the parent's pids.current reads {current}, fewer than the child holds")


@exercise(hints=CHILD_HINTS, answers=[v1.V1Cgroup.create, v2.V2Cgroup.create])
def check_child_cgroup(build: Callable[[Lab], object]) -> Passed:
    """Call `build(practice)`: it returns a `Cgroup` beneath this process's own cgroup, with
    pids.max = 10 and no process of its own, and a child cgroup `inner` holding one sleeping
    container; `practice.close()` must stop it and remove both directories."""
    practice = Lab(check=False)
    seen: dict[str, int] = {}

    def judge(cg: cgroups.Cgroup) -> None:
        _state(cg)
        seen["current"] = int(cg.read("pids.current"))

    made = _attempt_cgroup("build(practice)", build, practice, judge)
    return Passed(f"{made.name} held no process itself, its child {CHILD!r} held the container, "
                  f"and the parent's pids.current ({seen['current']}) counted it against its "
                  f"pids.max = {LIMIT}; practice.close() removed both directories")


def _parent(pid: int) -> int:
    try:
        return procfs.status(pid).ppid
    except (FileNotFoundError, ProcessLookupError):
        return 0


def _events(path: str) -> int:
    try:
        with open(os.path.join(path, "pids.events")) as f:
            return sum(int(line.split()[1]) for line in f if line.startswith("max "))
    except OSError:
        return 0


@exercise(hints=HIERARCHY_HINTS, stretch=True)
def check_parent_limit_holds(overflow: Callable[[Lab], object]) -> Passed:
    """Stretch: call `overflow(practice)`: as `build`, but the container in `inner` asks for
    30 processes while `inner`'s own pids.max stays `max`; the parent's limit of 10 must refuse
    the forks beyond it."""
    practice = Lab(check=False)
    seen: dict[str, int] = {}

    def judge(cg: cgroups.Cgroup) -> None:
        _state(cg)
        pids_dir = os.path.dirname(cg.file("pids.max"))
        child = os.path.join(pids_dir, CHILD)
        own = cgroups.read_file(os.path.join(child, "pids.max")).strip() \
            if os.path.exists(os.path.join(child, "pids.max")) else "max"
        expect(own == "max", f"the child's own pids.max reads {own!r}: leave it at 'max', so "
                             "that only the parent's limit can hold the command")
        inside = set(cgroups.procs(child))
        born_outside = [pid for pid in procfs.pids() if pid not in inside
                        and _parent(pid) in inside]
        expect(not born_outside,
               f"{len(born_outside)} of the command's processes are not in the child: they were "
               "born before you moved the command, in this notebook's cgroup. Move it before "
               "its first instruction runs: help(pycontain.spawn) names the step for that")
        deadline = time.monotonic() + SETTLE_S
        while not (refused := _events(pids_dir) + _events(child)) \
                and time.monotonic() < deadline and cgroups.procs(child):
            time.sleep(0.05)
        expect(refused > 0 or bool(cgroups.procs(child)),
               "the child holds no process any more, and no fork was refused: did the command "
               "end (or your function wait for it)? It must still run when your function "
               "returns")
        expect(refused > 0,
               f"pids.events counts no refused fork after {SETTLE_S:g} s: does the command in "
               f"the child ask for more than {LIMIT} processes, and keep them alive?")
        seen["refused"], seen["current"] = refused, int(cg.read("pids.current"))
        expect(seen["current"] <= LIMIT, "the parent's pids.current is above its pids.max")

    made = _attempt_cgroup("overflow(practice)", overflow, practice, judge)
    return Passed(f"the child had no limit of its own, and still the parent's pids.max = {LIMIT} "
                  f"held it: the kernel refused {seen['refused']} fork(s) of the command in the "
                  f"child (pids.events). A limit holds a cgroup's whole subtree ({made.name})")
