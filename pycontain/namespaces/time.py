"""The time namespace: a container whose CLOCK_MONOTONIC and CLOCK_BOOTTIME are shifted (lesson 11).

A time namespace holds two offsets, one for CLOCK_MONOTONIC and one for CLOCK_BOOTTIME; a
process inside reads the host's clock plus the offset. CLOCK_REALTIME, the wall clock, has no
offset: it is one clock for the whole machine (NTP and `date -s` set it for everyone), so a
container always agrees with the host on what time it is, but not on how long ago it booted.

Two rules shape how a runtime uses it:

- `unshare(CLONE_NEWTIME)` does not move the caller: like CLONE_NEWPID, it only decides where
  the caller's *children* go (see /proc/self/ns/time_for_children). `pycontain.init` therefore
  forks after it, as it does for a PID namespace.
- the offsets are written to `/proc/<pid>/timens_offsets` of the process that unshared, after
  unshare and before the first process enters the namespace; once one has, the kernel freezes
  them (EACCES).

    >>> validate_offsets({"boottime": 86400})
    {'boottime': 86400}
    >>> offsets_text({"boottime": 86400, "monotonic": -1.5})
    'boottime 86400 0\\nmonotonic -2 500000000\\n'

See also: time_namespaces(7), unshare(1) (--boottime, --monotonic), clock_gettime(2).
"""

from __future__ import annotations

import math
import time as clocks  # the standard library's, not this module

from pycontain.errors import SpecError, SyscallError
from pycontain.kernfs import write_once

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

#: the clocks a time namespace can shift, and their clock_gettime(2) ids
CLOCKS = {"monotonic": 1, "boottime": 7}  # CLOCK_MONOTONIC, CLOCK_BOOTTIME
#: the largest offset accepted, either way: ten years is already more than any lesson needs
MAX_OFFSET_S = 10 * 365 * 86400


def validate_offsets(offsets: Mapping[str, float] | None) -> dict[str, float]:
    """Check `{"boottime": seconds, "monotonic": seconds}`; return it as a plain dict.

    Refused: other clocks, non-numbers, offsets beyond ten years, and a negative offset that
    would put the clock before zero inside (the kernel refuses that too, with ERANGE).
    """
    if offsets is None:
        return {}
    if not hasattr(offsets, "items"):
        raise SpecError("time_offsets", "a dict such as {'boottime': 86400}", offsets)
    checked: dict[str, float] = {}
    for clock, value in dict(offsets).items():
        if clock not in CLOCKS:
            raise SpecError("time_offsets", "keyed by 'monotonic' or 'boottime'", clock,
                            hint="only these two clocks have offsets; CLOCK_REALTIME, the wall "
                                 "clock, is shared by every time namespace (lesson 11)")
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value)):
            raise SpecError(f"time_offsets[{clock!r}]", "a number of seconds", value)
        if abs(value) > MAX_OFFSET_S:
            raise SpecError(f"time_offsets[{clock!r}]",
                            f"at most {MAX_OFFSET_S} seconds (ten years) either way", value,
                            hint="an offset shifts the clock, it does not replace it (lesson 11)")
        now = clock_now(clock)
        if now + value < 0:
            raise SpecError(f"time_offsets[{clock!r}]",
                            f"at least -{int(now)} seconds: the clock reads {now:.0f} s now",
                            value, hint="inside, the clock would read less than zero, from "
                                        "before the machine booted; the kernel refuses it "
                                        "(ERANGE) (lesson 11)")
        checked[clock] = value
    return checked


def clock_now(clock: str) -> float:
    """What `clock` ("monotonic" or "boottime") reads now, in this process's time namespace."""
    return clocks.clock_gettime(CLOCKS[clock])


def offsets_text(offsets: Mapping[str, float]) -> str:
    """The lines timens_offsets takes: `<clock> <seconds> <nanoseconds>`, nanoseconds >= 0."""
    lines = []
    for clock, value in offsets.items():
        nanoseconds = round(value * 1_000_000_000)
        seconds, nanoseconds = divmod(nanoseconds, 1_000_000_000)
        lines.append(f"{clock} {seconds} {nanoseconds}\n")
    return "".join(lines)


def write_offsets(offsets: Mapping[str, float], pid: int | str = "self") -> None:
    """Write `offsets` to /proc/<pid>/timens_offsets: the time namespace `pid` made for its
    children. Call it after unshare(CLONE_NEWTIME) and before the first fork."""
    if not offsets:
        return
    path = f"/proc/{pid}/timens_offsets"
    text = offsets_text(offsets)
    try:
        write_once(path, text)
    except OSError as e:
        raise SyscallError("write timens_offsets", (path, text), e.errno or 0) from None


def read_offsets(pid: int | str = "self") -> dict[str, float]:
    """The offsets of the time namespace of `pid`'s children, from /proc/<pid>/timens_offsets."""
    with open(f"/proc/{pid}/timens_offsets") as f:
        found = {}
        for line in f:
            clock, seconds, nanoseconds = line.split()
            found[clock] = int(seconds) + int(nanoseconds) / 1e9
    return found
