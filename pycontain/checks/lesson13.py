"""The checks of lesson 13, cap the number of processes.

The check starts nothing itself: it reads the kernel's files of the learner's container while
its fork bomb runs: `pids.max`, `pids.current` and `pids.events`, then whether the container
and its cgroup are gone after `practice.close()`. It recognises the wrong turns seen when the
exercise was tried: a container that has ended already (the function waited for it, so its
cgroup is gone), `pids.events` read before the limit was hit (no wait), no cgroup (no
`pids_max`). Whatever the function started is stopped when it raises (`checks.attempt`).
"""

from __future__ import annotations

from collections.abc import Callable

from pycontain import runtime
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
from pycontain.lab import Lab
from pycontain.runtime import Container

MOST = 30
#: how long the check itself waits for a refused fork when the learner's read came too early
SETTLE_S = 5.0

CONTAIN_HINTS = (
    "Look back at \"Run it with pids.max = 20\": which option of pycontain.spawn gives the "
    "container a cgroup with a pids.max?",
    "The check reads the container's cgroup *after* your function returns, so the bomb must "
    "still run then: leave its stop to practice.close(), through practice.defer(undo, what).",
    "pids.events counts a refused fork only once the bomb has hit the limit. The cgroup has a "
    "method that waits until a key of a keyed file counts an event, and returns what it read.",
)
THREADS_HINTS = (
    "The lesson says what pids.max counts: processes, or tasks? Predict what a bomb of threads "
    "in one process does against the same limit.",
    "The same steps as contain(practice), with workloads.thread_bomb_argv instead of the fork "
    "bomb. The check counts the processes in the cgroup and compares them with pids.current.",
)


def _judge_running(answer: object, name: str) -> tuple[Container, dict[str, int], str,
                                                          dict[str, int]]:
    """The (box, events) a function returned, with the limit and pids.events now."""
    expect(isinstance(answer, tuple) and len(answer) == 2,
           f"{name} returned {answer!r}; return (box, events)")
    assert isinstance(answer, tuple)
    box, events = answer
    expect(isinstance(box, Container), f"{box!r} is not a container: return the one "
                                       "pycontain.spawn(...) gave you")
    assert isinstance(box, Container)
    expect(box.cgroup is not None,
           "the container has no cgroup, so no pids.max: start it with a limit (the section "
           "\"Run it with pids.max = 20\")")
    assert box.cgroup is not None
    if not box.running or box.cgroup.removed:  # the message waits for it: only when it ended
        raise CheckFailed(
            f"the container you returned has ended already ({box.wait().reason}), and its "
            "cgroup went with it: the check reads pids.max and pids.events while the bomb "
            "runs. Did your function wait for it (box.wait(), probe.stop)? Return while it "
            "runs, and leave its stop to practice.close()")
    limit = box.cgroup.read("pids.max")
    expect(limit.isdigit() and int(limit) <= MOST,
           f"pids.max reads {limit!r}: choose a limit of at most {MOST}")
    expect(isinstance(events, dict), f"events is {events!r}: return pids.events as a dict of "
                                     "its keys (what the cgroup's keyed read returns)")
    now = box.cgroup.wait_for_event("pids.events", "max", timeout_s=SETTLE_S)
    expect(now.get("max", 0) > 0,
           f"pids.events still says no fork was refused after {SETTLE_S:g} s more: does the "
           f"bomb ask for more processes than pids.max = {limit}?")
    expect(events.get("max", 0) > 0,
           f"the pids.events you returned says max {events.get('max', 0)}, but the kernel has "
           f"refused {now['max']} forks since: you read it before the bomb hit the limit. "
           "Wait for the kernel's count first; the waiting call returns the events it read")
    expect(events["max"] <= now["max"],
           f"events says max {events['max']}, more than the kernel's {now['max']}: return the "
           "pids.events you read from this container's cgroup")
    expect(int(box.cgroup.read("pids.current")) <= int(limit), "pids.current is above pids.max")
    return box, events, limit, now


def _checked(contain: Callable[[Lab], object], name: str,
             more: Callable[[Container], None] | None = None
             ) -> tuple[Container, str, dict[str, int]]:
    practice = Lab(check=False)
    before = set(runtime.unwaited())
    box: object = None
    try:
        answer = attempt(f"{name}(practice)", contain, practice, returns=tuple,
                         instead="return (box, events)")
        box, _, limit, now = _judge_running(answer, f"{name}(practice)")
        if more is not None:
            more(box)
    except BaseException as e:
        abandon(practice, box)
        stopped = release_started(before)
        if isinstance(e, CheckFailed) and stopped:
            raise CheckFailed(f"{e}{stopped}") from e
        raise
    expect_closed(practice, box, "the fork bomb", "stop the bomb")
    return box, limit, now


@exercise(hints=CONTAIN_HINTS)
def check_contained(contain: Callable[[Lab], object]) -> Passed:
    """Call `contain(practice)`: it returns `(box, events)`, the running fork-bomb container
    with pids.max at most 30, and its pids.events read once the bomb hit the limit."""
    _, limit, now = _checked(contain, "contain")
    return Passed(f"the bomb stayed at or under pids.max = {limit}; the kernel refused "
                  f"{now['max']} forks (pids.events), and practice.close() removed it all")


def _one_process_many_tasks(box: Container) -> None:
    assert box.cgroup is not None
    tasks = int(box.cgroup.read("pids.current"))
    processes = len(box.cgroup.procs())
    expect(processes <= 2 < tasks,
           f"the cgroup holds {processes} processes and {tasks} tasks: the stretch is a bomb "
           "of threads in one process (workloads.thread_bomb_argv), so that a count of "
           "processes sees one while pids.current sees them all")


@exercise(hints=THREADS_HINTS, stretch=True)
def check_threads_contained(contain_threads: Callable[[Lab], object]) -> Passed:
    """Stretch: as `check_contained`, with a thread bomb: one process, many tasks, and
    pids.max refuses the threads beyond it."""
    box, limit, now = _checked(contain_threads, "contain_threads", _one_process_many_tasks)
    return Passed(f"one process, and still pids.max = {limit} held its threads: the kernel "
                  f"refused {now['max']} clone(2)s; pids.max counts tasks, not processes")

