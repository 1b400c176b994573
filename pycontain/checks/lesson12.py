"""The checks of lesson 12, meet cgroups.

The check reads the kernel's own files: where the learner's cgroup directories are, what its
`pids.max` and `cgroup.procs` say, and whether `practice.close()` left any directory behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from pycontain import cgroups
from pycontain.checks import Passed, attempt, expect
from pycontain.lab import Lab

LIMIT = 10


def check_child_cgroup(build: Callable[[Lab], object]) -> Passed:
    """Call `build(practice)`: it returns a `Cgroup` with pids.max = 10 holding one sleeping
    process, beneath this process's own cgroup, whose removal `practice` has registered."""
    practice = Lab(check=False)
    made: cgroups.Cgroup | None = None
    try:
        made = attempt("build(practice)", build, practice, returns=cgroups.Cgroup,
                       instead="return the cgroup that cgroups.create(['pids']) gave you")
        _check_state(made)
    except BaseException:
        practice.close()
        if isinstance(made, cgroups.Cgroup):
            made.remove()  # a failed attempt leaves nothing behind
        raise
    practice.close()
    assert made is not None
    left = [d for d in made.dirs.values() if os.path.isdir(d)]
    if left:
        made.remove()
    expect(not left, f"practice.close() left {left}: register the removal, "
                     "practice.defer(cg.remove, 'remove the cgroup') (the check removed it)")
    return Passed(f"{made.name} sat beneath this process's own cgroup with pids.max = {LIMIT} "
                  "and a process of its own, and practice.close() removed every directory")


def _check_state(cg: cgroups.Cgroup) -> None:
    layout = cgroups.detect()
    own = {cgroups.home(h) for h in layout.hierarchies}
    for path in cg.dirs.values():
        expect(os.path.isdir(path), f"{path} does not exist (removed already?)")
        expect(os.path.dirname(path) in own,
               f"{path} is not directly beneath this process's own cgroup (or "
               "$PYCONTAIN_CGROUP_PARENT) in its hierarchy: make it with cgroups.create()")
    pids_max = cgroups.read_file(cg.file("pids.max")).strip()
    expect(pids_max == str(LIMIT),
           f"pids.max reads {pids_max!r}; write {LIMIT}: cg.write('pids.max', {LIMIT})")
    inside = cg.procs()
    expect(bool(inside), "cgroup.procs is empty: start a process (pycontain.spawn(['sleep', "
                         "'300'])) and move it in with cg.attach(box.pid)")
    expect(os.getpid() not in inside,
           "this notebook's own process is in the cgroup: attach the container's PID instead")
