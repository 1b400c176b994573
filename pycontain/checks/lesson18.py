"""The checks of lesson 18, pin to cpus.

The check starts nothing itself: it reads the kernel's own files while the learner's container
runs: the cgroup's `cpuset.cpus.effective` (v1 `cpuset.effective_cpus`) and the container's
process's affinity, `Cpus_allowed_list` in /proc/<pid>/status, then whether the container and
its cgroup are gone after `practice.close()`.

It recognises the wrong turns seen when the exercise was tried: a container that has ended
(`pycontain.run`, a command that does not last), no cgroup or no cpuset in it, more than one
CPU, and an affinity set with sched_setaffinity(2) (`os.sched_setaffinity`, `taskset`) instead
of a cpuset: on the notebook's own process, which every container it starts then inherits
(the check puts the notebook's affinity back and says so), or on the container's process,
which may widen it again at any time. Whatever `pin` started is stopped when it raises.

The stretch, `check_half_a_cpu`, combines lessons 15 and 18: `half(argv)` runs the check's
two-worker burner on one CPU and at most half of it; the check reads the cpuset and cpu.max
from the kernel while it runs, then what the burner says it used and where it ran.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from pycontain import procfs, runtime, workloads
from pycontain.cgroups.controllers import cpuset
from pycontain.checks import (
    CheckFailed,
    Passed,
    abandon,
    attempt,
    expect,
    expect_closed,
    release_started,
)
from pycontain.checks.exercise import exercise
from pycontain.errors import CgroupError
from pycontain.lab import Lab
from pycontain.runtime import Container

#: the stretch: the burner's workers and seconds, and how much of a CPU it may use
HALF_WORKERS, HALF_SECONDS = 2, 2.0
HALF_CPUS, HALF_SLACK = 0.5, 0.1

PIN_HINTS = (
    "\"Pin a container\" did it to a sleeper: which option of pycontain.spawn gives the "
    "container a cgroup whose cpuset lists its CPUs? The notebook's own affinity is not the "
    "container's cpuset.",
    "The check reads the container while it runs, after your function has returned: start "
    "something that lasts, leave its stop to practice.close() with practice.defer(undo, what), "
    "and return the container.",
    "The CPUs you may choose from are the setup cell's CPUS; a cpuset is a list in the "
    "kernel's grammar (\"0\", \"0-1\", \"0,2\"), as a string.",
)
HALF_HINTS = (
    "Two questions, two controllers: *where* may it run (this lesson) and *how much* may it "
    "use (lesson 15, \"Cap it: cpu.max\"). One container may have both.",
    "Two workers on one CPU share it; a cap of half a CPU holds both together, since cpu.max "
    "counts all the cgroup's tasks on all CPUs.",
)
RUNNING = ("return the container, still running (what pycontain.spawn returns): the check reads "
           "its cgroup and its process while it runs; a Result is what a container leaves once "
           "it has ended")


def _allowed(pid: int) -> list[int]:
    with open(f"/proc/{pid}/status") as f:
        return list(cpuset.parse_list(procfs.parse_status(f.read())["Cpus_allowed_list"],
                                 "Cpus_allowed_list"))


def _one_cpu(box: Container, what: str) -> list[int]:
    """The container's cgroup's effective CPUs, one of them, as its process's affinity."""
    allowed = _allowed(box.pid)
    if box.cgroup is None:
        raise CheckFailed(
            f"the container has no cgroup, so no cpuset, though its process may run on CPU(s) "
            f"{cpuset.format_list(allowed)} only: an affinity (sched_setaffinity(2), taskset) "
            "is the process's own wish, which it may widen again at any time; a cpuset is "
            f"the cgroup's, which it cannot leave. Which option of pycontain.spawn gives {what} "
            "a cpuset (\"Pin a container\")?")
    try:
        effective = list(cpuset.parse_list(box.cgroup.read("cpuset.cpus.effective"),
                                           "cpuset.cpus.effective"))
    except CgroupError:  # v1: a container with other limits has no cpuset directory
        raise CheckFailed(f"the container's cgroup has limits but no cpuset: {what} must be "
                          "pinned by its cgroup (\"Pin a container\")") from None
    expect(len(effective) == 1,
           f"cpuset.cpus.effective reads {cpuset.format_list(effective)}: {what} may use one "
           "CPU, not several")
    expect(allowed == effective,
           f"the container's process may run on CPUs {cpuset.format_list(allowed)} "
           f"(Cpus_allowed_list), not only on CPU {effective[0]}, its cgroup's "
           "cpuset.cpus.effective")
    return effective


@exercise(hints=PIN_HINTS)
def check_pinned(pin: Callable[[Lab], object]) -> Passed:
    """Call `pin(practice)`: it returns a running container pinned to one CPU (cpuset.cpus),
    whose stopping `practice` has registered."""
    practice = Lab(check=False)
    before = set(runtime.unwaited())
    mine = os.sched_getaffinity(0)
    box: object = None
    try:
        try:
            box = attempt("pin(practice)", pin, practice, returns=Container, instead=RUNNING)
        finally:  # the notebook's own affinity, whatever the function did, put back
            narrowed = sorted(os.sched_getaffinity(0))
            if set(narrowed) != mine:
                os.sched_setaffinity(0, mine)
        assert isinstance(box, Container)
        if set(narrowed) != mine:
            raise CheckFailed(
                f"your function pinned this notebook's own process to CPU(s) "
                f"{cpuset.format_list(narrowed)} (os.sched_setaffinity ran here, not in a "
                "container), and every process it starts inherits that; the check put it back "
                f"to {cpuset.format_list(sorted(mine))}. Pin the container by its cgroup "
                "instead (\"Pin a container\")")
        expect(box.running, "the container is not running any more: give it something "
                            "that lasts, such as ['sleep', '60']")
        effective = _one_cpu(box, "the container")
    except BaseException as e:
        abandon(practice, box)
        stopped = release_started(before)
        if isinstance(e, CheckFailed) and stopped:
            raise CheckFailed(f"{e}{stopped}") from e
        raise
    expect_closed(practice, box, "the container", "stop it")
    return Passed(f"the container's process may run on CPU {effective[0]} only "
                  f"(Cpus_allowed_list {effective[0]}, cpuset.cpus.effective of its cgroup), "
                  "and practice.close() removed it all")


@exercise(hints=HALF_HINTS, stretch=True)
def check_half_a_cpu(half: Callable[[list[str]], object]) -> Passed:
    """Stretch: `half(argv)` starts the check's burner (two workers) pinned to one CPU and
    capped at half of it; the check reads both from the kernel, then the burner's report."""
    argv = workloads.spread_argv(HALF_WORKERS, HALF_SECONDS)
    before = set(runtime.unwaited())
    try:
        box = attempt("half(argv)", half, argv, returns=Container, instead=RUNNING)
        assert isinstance(box, Container)
        expect(list(box.spec.argv) == argv,
               f"the container runs {list(box.spec.argv)!r}, not the burner the check gave "
               "half(argv): start argv as given")
        expect(box.running, "the burner has ended already: return its container at once, "
                            "without waiting for it")
        (cpu,) = _one_cpu(box, "the burner")
        assert box.cgroup is not None
        try:
            quota, _, period = box.cgroup.read("cpu.max").partition(" ")
        except CgroupError:  # v1: no directory in the cpu hierarchy
            quota, period = "max", ""
        expect(quota != "max",
               f"the burner is pinned to CPU {cpu}, but nothing caps how much of it it may "
               "use: where it runs is the cpuset's, how much is another controller's")
        cap = int(quota) / int(period)
        expect(cap <= HALF_CPUS, f"cpu.max allows {cap:.2f} of a CPU: at most {HALF_CPUS:g}")
        result = box.wait(timeout_s=HALF_SECONDS + 60)
    finally:
        release_started(before)
    report = workloads.spread_report(result.stdout)
    expect(report is not None, f"the burner {result.reason}: {result.stderr.strip()[-300:]}")
    assert report is not None
    cpu_s, wall_s = float(str(report["cpu_s"])), float(str(report["wall_s"]))
    ran_on = report["ran_on"]
    expect(ran_on == (cpu,), f"the burner ran on CPUs {ran_on}, not only on CPU {cpu}")
    used = cpu_s / wall_s
    expect(used <= HALF_CPUS + HALF_SLACK,
           f"the burner's two workers used {used:.2f} CPUs together, above half a CPU")
    return Passed(f"the burner's two workers ran on CPU {cpu} only and used {used:.2f} CPUs "
                  f"together (cpu.max {quota} {period}): the cpuset says where, cpu.max how "
                  "much")
