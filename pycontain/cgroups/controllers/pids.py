"""The pids controller: a ceiling on the number of tasks in a cgroup (lesson 13).

A fork(2) or clone(2) that would take `pids.current` above `pids.max` fails with EAGAIN, and
`pids.events` counts the refusals (`max N`). The number counts tasks (threads too), in the
cgroup and all its descendants. cgroup v1 spells every file the same way as v2: the only
translation is none. Moving a process in with `cgroup.procs` ignores the limit: only new
tasks are refused.

    >>> FILES["pids.max"], FILES["pids.events"]
    ('pids.max', 'pids.events')
    >>> to_v1({"pids.max": "20"})
    [('pids.max', '20')]

See also: Documentation/admin-guide/cgroup-v2.rst ("PID"), cgroup-v1/pids.rst, fork(2) EAGAIN.
"""

from __future__ import annotations

from pycontain.cgroups.controllers.field import Counter, Field, count

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

#: v2 knob -> the v1 file that holds it
FILES: dict[str, str | None] = {
    "pids.max": "pids.max",          # "max" or a number of tasks, on both versions
    "pids.current": "pids.current",  # tasks in the cgroup and its descendants now
    "pids.events": "pids.events",    # "max N": forks refused because of pids.max
}

#: what the pids controller counts (a monitor's series): the same files on both versions
COUNTERS = (
    Counter("pids_current", "pids.current", None, "pids.current", None),
    Counter("pids_refused", "pids.events", "max", "pids.events", "max"),
)

#: the limits this controller offers (`Limits`, `Spec`, `pycontain run`; see `field`)
FIELDS = (
    Field("pids_max", "pids.max",
          count("processes", hint="pids.max counts tasks (processes and threads) in the cgroup"),
          flag="--pids-limit", metavar="N",
          help="pids.max: how many processes and threads the container may hold",
          doc="pids.max, how many tasks the cgroup may hold", lesson=13),
)


def to_v1(settings: Mapping[str, str]) -> list[tuple[str, str]]:
    """The v1 writes for v2 `settings`: the same files, the same values."""
    return [(FILES[knob] or knob, value) for knob, value in settings.items()]
