"""The memory controller: how much memory a cgroup may use, and what happens beyond (lesson 14).

`memory.max` is the hard limit: past it the kernel reclaims, and when nothing more can be
reclaimed the OOM killer kills a process in the cgroup (counted as `oom_kill` in
`memory.events`). `memory.high` is a throttle (v2 only): past it the cgroup's tasks are slowed
down and pushed to reclaim, never killed. `memory.swap.max` caps swap. cgroup v1 spells them
differently, and one of them means something else:

=====================  ==================================  =====================================
v2 (the lessons)       v1                                  translation
=====================  ==================================  =====================================
memory.max             memory.limit_in_bytes               same bytes; `max` is -1 on write
memory.high            (none)                              refused: soft_limit_in_bytes is not it
memory.swap.max        memory.memsw.limit_in_bytes         v1 caps memory + swap: max + swap.max
memory.current         memory.usage_in_bytes               same bytes
memory.peak            memory.max_usage_in_bytes           same bytes
memory.events          memory.oom_control, memory.failcnt  oom_kill, and max (= failcnt)
=====================  ==================================  =====================================

    >>> to_v1({"memory.max": str(32 << 20), "memory.swap.max": "0"})
    [('memory.limit_in_bytes', '33554432'), ('memory.memsw.limit_in_bytes', '33554432')]
    >>> to_v1({"memory.max": "max"})
    [('memory.limit_in_bytes', '-1')]
    >>> files = {"memory.limit_in_bytes": "33554432\\n",
    ...          "memory.memsw.limit_in_bytes": "9223372036854771712\\n"}
    >>> read_v1("memory.max", files.get), read_v1("memory.swap.max", files.get)
    ('33554432', 'max')
    >>> try:
    ...     to_v1({"memory.high": "1000"})
    ... except ValueError as e:
    ...     print(str(e)[:70])
    memory.high has no cgroup v1 equivalent: memory.soft_limit_in_bytes is

See also: Documentation/admin-guide/cgroup-v2.rst ("Memory"), cgroup-v1/memory.rst.
"""

from __future__ import annotations

from pycontain.cgroups.controllers.field import Counter, Field, size
from pycontain.errors import SpecError
from pycontain.sizes import format_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: the least memory.max or memory.high accepted, as `docker run --memory` (6M): the kernel
#: charges the container's processes for their own pages, page tables and kernel stacks, so
#: with 64 KiB even /bin/true is OOM-killed as it starts (measured on cgroup v1), and a real
#: program needs megabytes; the kernel itself takes any value
MINIMUM = "6M"
_CHARGED = ("the container's processes are charged for their own pages, so with too little even "
            "/bin/true is {fate} as it starts: like Docker, pycontain takes 6 MiB or more "
            "(lesson 14)")

#: the limits this controller offers (`Limits`, `Spec`, `pycontain run`; see `field`)
FIELDS = (
    Field("memory_max", "memory.max", size(minimum=MINIMUM, why=_CHARGED.format(fate="OOM-killed")),
          flag="--memory", metavar="SIZE",
          help="memory.max: the hard memory limit, past which the OOM killer acts (64M, 1.5G, "
               "max; at least 6M)",
          doc="memory.max, the hard limit: past it, the OOM killer", lesson=14),
    Field("memory_high", "memory.high",
          size(minimum=MINIMUM, why=_CHARGED.format(fate="throttled to a crawl")),
          flag="--memory-high", metavar="SIZE",
          help="memory.high: the throttle below --memory (cgroup v2 only; at least 6M)",
          doc="memory.high, the throttle (v2 only): past it, the cgroup is slowed", lesson=14),
    Field("memory_swap_max", "memory.swap.max", size(zero=True),
          flag="--memory-swap", metavar="SIZE",
          help="memory.swap.max: the swap the container may use, 0 for none (unlike docker's "
               "--memory-swap, swap only, not memory + swap)",
          doc="memory.swap.max, swap the cgroup may use (0: none)", lesson=14),
)

#: v2 knob -> the v1 file that holds it (None: v1 has no equivalent, see V2_ONLY)
FILES: dict[str, str | None] = {
    "memory.max": "memory.limit_in_bytes",
    "memory.high": None,
    "memory.swap.max": "memory.memsw.limit_in_bytes",  # memory + swap on v1: translated
    "memory.current": "memory.usage_in_bytes",
    "memory.peak": "memory.max_usage_in_bytes",
    "memory.events": "memory.oom_control",  # oom_kill; `max` comes from memory.failcnt
    "memory.stat": "memory.stat",  # keys differ between versions; read, not translated
}

V2_ONLY = {
    "memory.high": (
        "memory.soft_limit_in_bytes is not it: a soft limit only matters when the whole machine "
        "runs short of memory, and never throttles the cgroup; memory.high throttles the cgroup "
        "as soon as it is crossed. Use memory.max, or a cgroup v2 machine (the lab VM)"),
}

#: keyed v2 files rebuilt from v1 files: key -> (v1 file, key in it, or None: the whole file)
KEYED: dict[str, dict[str, tuple[str, str | None]]] = {
    "memory.events": {"max": ("memory.failcnt", None),
                      "oom_kill": ("memory.oom_control", "oom_kill")},
}

#: what the memory controller counts (a monitor's series)
COUNTERS = (
    Counter("memory_current", "memory.current", None, "memory.usage_in_bytes", None),
    Counter("memory_oom_kill", "memory.events", "oom_kill", "memory.oom_control", "oom_kill"),
)

#: what v1 reads back for "no limit": PAGE_COUNTER_MAX pages of 4 KiB, as bytes
V1_UNLIMITED = 9223372036854771712


def check(values: Mapping[str, int | str], given: Mapping[str, object]) -> None:
    """Refuse a memory.high above memory.max: it would never act. `values`: the fields set,
    parsed; `given`: as the caller wrote them.

    >>> check({"memory_max": 32 << 20, "memory_high": 64 << 20}, {"memory_high": "64M"})
    Traceback (most recent call last):
    ...
    pycontain.errors.SpecError: `memory_high` must be at most memory_max (32 MiB), got '64M'
      hint: memory.high throttles below the hard limit memory.max; above it, it would never act
    """
    high, top = values.get("memory_high"), values.get("memory_max")
    if isinstance(high, int) and isinstance(top, int) and high > top:
        raise SpecError("memory_high", f"at most memory_max ({format_size(top)})",
                        given["memory_high"],
                        hint="memory.high throttles below the hard limit memory.max; "
                             "above it, it would never act")


def check_host(values: Mapping[str, int | str], version: int,
               exists: Callable[[str], bool]) -> None:
    """Refuse what this machine's memory controller cannot do: on cgroup v1, a swap limit
    without a memory limit, or where swap is not accounted. `exists(file)`: whether the
    container's memory hierarchy has that file."""
    swap = values.get("memory_swap_max")
    if version != 1 or swap is None:
        return
    if values.get("memory_max", "max") == "max" and swap != "max":
        raise SpecError("memory_swap_max", "given with a memory_max on cgroup v1", swap,
                        hint="v1 has no swap-only limit: memory.memsw.limit_in_bytes caps "
                             "memory + swap, so it is set to memory_max + memory_swap_max "
                             "(lesson 14)")
    if not exists("memory.memsw.limit_in_bytes"):
        raise SpecError("memory_swap_max", "used only where swap is accounted", swap,
                        hint="this kernel has no memory.memsw.* files: boot it with "
                             "swapaccount=1, or use cgroup v2 (lesson 14)")


def to_v1(settings: Mapping[str, str]) -> list[tuple[str, str]]:
    """The v1 writes, in order, for v2 `settings` (values in bytes or `max`).

    memory.memsw.limit_in_bytes caps memory + swap together and may never be below
    memory.limit_in_bytes, so it is written after it, as memory.max + memory.swap.max.

    Raises:
        ValueError: memory.high (no v1 equivalent); memory.swap.max without a memory.max.
    """
    for knob in settings:
        if FILES.get(knob, "") is None:
            raise ValueError(f"{knob} has no cgroup v1 equivalent: {V2_ONLY[knob]}")
    writes = []
    limit = settings.get("memory.max")
    if limit is not None:
        writes.append(("memory.limit_in_bytes", "-1" if limit == "max" else limit))
    swap = settings.get("memory.swap.max")
    if swap is not None:
        if limit is None or (limit == "max" and swap != "max"):
            raise ValueError("memory.swap.max needs a memory.max on cgroup v1: "
                             "memory.memsw.limit_in_bytes caps memory + swap together")
        both = "-1" if "max" in (limit, swap) else str(int(limit) + int(swap))
        writes.append(("memory.memsw.limit_in_bytes", both))
    for knob, value in settings.items():
        if knob not in ("memory.max", "memory.swap.max"):
            writes.append((FILES[knob] or knob, value))
    return writes


def read_v1(knob: str, read: Callable[[str], str]) -> str:
    """`knob` as v2 would show it, from v1 files (`read(file)` returns one's text).

    The 'unlimited' number of bytes reads `max`; memory.swap.max is memsw minus the memory limit.
    """
    def value(file: str) -> str:
        raw = read(file).strip()
        return "max" if raw.isdigit() and int(raw) >= V1_UNLIMITED else raw

    if knob == "memory.swap.max":
        both, limit = value("memory.memsw.limit_in_bytes"), value("memory.limit_in_bytes")
        return "max" if "max" in (both, limit) else str(int(both) - int(limit))
    return value(FILES[knob] or knob)
