"""The checks of lesson 13, cap the number of processes.

The check starts nothing itself: it reads the kernel's files of the learner's container while
its fork bomb runs: `pids.max`, `pids.current` and `pids.events`, then whether the container
and its cgroup are gone after `practice.close()`.
"""

from __future__ import annotations

from collections.abc import Callable

from pycontain.checks import Passed, abandon, attempt, expect, expect_closed
from pycontain.lab import Lab
from pycontain.runtime import Container

MOST = 30


def check_contained(contain: Callable[[Lab], object]) -> Passed:
    """Call `contain(practice)`: it returns `(box, events)`, the running fork-bomb container
    with pids.max at most 30, and its pids.events read once the bomb hit the limit."""
    practice = Lab(check=False)
    box: object = None
    try:
        answer = attempt("contain(practice)", contain, practice, returns=tuple,
                         instead="return (box, events)")
        expect(len(answer) == 2, f"contain(practice) returned {answer!r}; return (box, events)")
        box, events = answer
        expect(isinstance(box, Container) and box.cgroup is not None,
               f"{box!r} is not a container with a cgroup: start it with "
               "pycontain.spawn(workloads.fork_bomb_argv(...), pids_max=N)")
        assert isinstance(box, Container) and box.cgroup is not None
        limit = box.cgroup.read("pids.max")
        expect(limit.isdigit() and int(limit) <= MOST,
               f"pids.max reads {limit!r}: choose a limit of at most {MOST}")
        now = box.cgroup.read_keyed("pids.events")
        expect(now.get("max", 0) > 0, "pids.events says no fork was refused yet: is the "
                                      "fork bomb running, with more processes than the limit?")
        expect(isinstance(events, dict) and 0 < events.get("max", 0) <= now["max"],
               f"events is {events!r}; read pids.events once the bomb hit the limit: "
               "box.cgroup.wait_for_event('pids.events', 'max')")
        expect(int(box.cgroup.read("pids.current")) <= int(limit),
               "pids.current is above pids.max")
    except BaseException:
        abandon(practice, box)
        raise
    expect_closed(practice, box, "the fork bomb", "stop the bomb")
    return Passed(f"the bomb stayed at or under pids.max = {limit}; the kernel refused "
                  f"{now['max']} forks (pids.events), and practice.close() removed it all")
