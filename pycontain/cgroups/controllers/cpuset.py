"""The cpuset controller: which CPUs a cgroup's tasks may run on, and which memory nodes they
may allocate from (lesson 18).

`cpuset.cpus` is a list such as `0-3,6`: the scheduler runs the cgroup's tasks on those CPUs
only, and every task's affinity (`Cpus_allowed_list` in /proc/<pid>/status) is cut down to it.
`cpuset.mems` lists the NUMA memory nodes (`0` on most machines). A cgroup's *effective* set,
`cpuset.cpus.effective`, is what it really gets: its own list, within its parent's effective
set, online CPUs only. cgroup v1 spells the effective files differently, and has a trap:

=====================  =====================  ===============================================
v2 (the lesson)        v1                     note
=====================  =====================  ===============================================
cpuset.cpus            cpuset.cpus            v2: empty means "the parent's"; v1: no CPU
cpuset.mems            cpuset.mems            v1: empty refuses every task (ENOSPC)
cpuset.cpus.effective  cpuset.effective_cpus  what the tasks really get
cpuset.mems.effective  cpuset.effective_mems
=====================  =====================  ===============================================

A new v1 cpuset cgroup starts with both lists empty, and the kernel refuses to move a task
into a cgroup with no CPU or no memory node: writing `cgroup.procs` fails with ENOSPC. So the
v1 manager copies the parent's lists into every cpuset cgroup it creates (`V1_INHERIT`), as
`cgroup.clone_children` would; v2 has no such trap, an empty list there means the parent's.

    >>> parse_list("0-2,5,7-8", "cpuset_cpus")
    (0, 1, 2, 5, 7, 8)
    >>> format_list([0, 1, 2, 5, 7, 8]), format_list([3])
    ('0-2,5,7-8', '3')
    >>> to_v1({"cpuset.cpus": "0", "cpuset.mems": "0"})
    [('cpuset.cpus', '0'), ('cpuset.mems', '0')]
    >>> read_v1("cpuset.cpus.effective", {"cpuset.effective_cpus": "0-1\\n"}.get)
    '0-1'

See also: Documentation/admin-guide/cgroup-v2.rst ("Cpuset"), cgroup-v1/cpusets.rst,
sched_setaffinity(2), cpuset(7), taskset(1), `docker run --cpuset-cpus`.
"""

from __future__ import annotations

from pycontain.cgroups.controllers.field import Field
from pycontain.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

#: v2 knob -> the v1 file that holds it
FILES: dict[str, str | None] = {
    "cpuset.cpus": "cpuset.cpus",
    "cpuset.mems": "cpuset.mems",
    "cpuset.cpus.effective": "cpuset.effective_cpus",
    "cpuset.mems.effective": "cpuset.effective_mems",
}

#: v1 knobs a new cgroup copies from its parent before it can hold a task (ENOSPC otherwise)
V1_INHERIT = ("cpuset.cpus", "cpuset.mems")

#: the most CPUs or memory nodes a list may name: the kernel's NR_CPUS is at most 8192
MOST = 8192


def parse_list(given: object, parameter: str, what: str = "CPUs") -> tuple[int, ...]:
    """The numbers a kernel list names (`0-2,5`: 0, 1, 2, 5), sorted; SpecError naming
    `parameter` for anything else (`0-`, `3-1`, `a`, an empty list).

    >>> parse_list("1,0,1", "cpuset_cpus"), parse_list(2, "cpuset_cpus")
    ((0, 1), (2,))
    >>> parse_list("3-1", "cpuset_cpus")
    Traceback (most recent call last):
    ...
    pycontain.errors.SpecError: `cpuset_cpus` must be a list of CPUs such as 0, 0-3 or 0,2-3 \
(numbers from 0, ranges low-high), got '3-1'
      hint: the range 3-1 runs backwards: write 1-3
    """
    form = f"a list of {what} such as 0, 0-3 or 0,2-3 (numbers from 0, ranges low-high)"
    if isinstance(given, int) and not isinstance(given, bool):
        given = str(given)
    if not isinstance(given, str) or not given.strip():
        raise SpecError(parameter, form, given, hint=f"name at least one of the {what}")
    found: set[int] = set()
    for item in given.strip().split(","):
        low, dash, high = item.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise SpecError(parameter, form, given,
                            hint=f"{item.strip()!r} is not a number or a range low-high")
        first, last = int(low), int(high if dash else low)
        if first > last:
            raise SpecError(parameter, form, given,
                            hint=f"the range {item.strip()} runs backwards: write {last}-{first}")
        if last >= MOST:
            raise SpecError(parameter, form, given, hint=f"{last} is above the kernel's "
                                                         f"limit of {MOST} {what}")
        found.update(range(first, last + 1))
    return tuple(sorted(found))


def format_list(numbers: Iterable[int]) -> str:
    """A kernel list from numbers: consecutive ones become a range (`0-2,5`)."""
    ranges: list[list[int]] = []
    for n in sorted(set(numbers)):
        if ranges and n == ranges[-1][1] + 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges)


def _list_of(what: str) -> Callable[[object, str], int | str]:
    """A field parser: a kernel list of `what`, kept in its shortest spelling (`0-2`)."""
    def parse(given: object, parameter: str) -> int | str:
        return format_list(parse_list(given, parameter, what))

    return parse


#: the limits this controller offers (`Limits`, `Spec`, `pycontain run`; see `field`)
FIELDS = (
    Field("cpuset_cpus", "cpuset.cpus", _list_of("CPUs"), flag="--cpuset-cpus", metavar="LIST",
          help="cpuset.cpus: the CPUs the container may run on (0, 0-1, 0,2-3), within its "
               "parent cgroup's",
          doc="cpuset.cpus, the CPUs the cgroup's tasks may run on", lesson=18),
    Field("cpuset_mems", "cpuset.mems", _list_of("memory nodes"), flag="--cpuset-mems",
          metavar="LIST",
          help="cpuset.mems: the memory (NUMA) nodes the container may allocate from (0 on "
               "most machines)",
          doc="cpuset.mems, the memory nodes the cgroup's tasks may allocate from", lesson=18),
)


def check_parent(values: Mapping[str, int | str], read: Callable[[str], str]) -> None:
    """Refuse CPUs or memory nodes the parent cgroup cannot hand out: offline ones, or ones
    outside its effective set. `read(knob)` returns the parent's value of a v2 knob, or ""
    where it has none (then the manager reports what is missing when it creates the cgroup).

    >>> parent = {"cpuset.cpus.effective": "0-1", "cpuset.mems.effective": "0"}.get
    >>> check_parent({"cpuset_cpus": "1"}, parent)
    >>> check_parent({"cpuset_cpus": "1-2"}, parent)
    Traceback (most recent call last):
    ...
    pycontain.errors.SpecError: `cpuset_cpus` must be CPUs of the parent cgroup's \
cpuset.cpus.effective, 0-1, got '1-2'
      hint: 2 is not among them: a cgroup gets a subset of its parent's effective CPUs, \
online ones only (lesson 18)
    """
    for name, knob, what in (("cpuset_cpus", "cpuset.cpus.effective", "CPUs"),
                             ("cpuset_mems", "cpuset.mems.effective", "memory nodes")):
        wanted = values.get(name)
        offered = (read(knob) or "").strip()
        if wanted is None or not offered:
            continue
        outside = set(parse_list(wanted, name, what)) - set(parse_list(offered, knob, what))
        if outside:
            raise SpecError(name, f"{what} of the parent cgroup's {knob}, {offered}", wanted,
                            hint=f"{format_list(outside)} {'is' if len(outside) == 1 else 'are'}"
                                 f" not among them: a cgroup gets a subset of its parent's "
                                 f"effective {what}, online ones only (lesson 18)")


def to_v1(settings: Mapping[str, str]) -> list[tuple[str, str]]:
    """The v1 writes for v2 `settings`: the same files, the same lists."""
    return [(FILES[knob] or knob, value) for knob, value in settings.items()]


def read_v1(knob: str, read: Callable[[str], str]) -> str:
    """`knob` as v2 would show it, from v1 files (`read(file)` returns one's text)."""
    return read(FILES[knob] or knob).strip()
