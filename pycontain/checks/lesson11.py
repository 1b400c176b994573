"""The checks of lesson 11, shift the clock."""

from __future__ import annotations

from collections.abc import Callable

from pycontain import procfs
from pycontain.checks import RETURN_RESULT, Passed, attempt, expect, output_lines
from pycontain.runtime import Result

DAY_S = 86400
#: what the check asks the container to run: its uptime, then its time namespace
REPORT = ["sh", "-c", "cat /proc/uptime; readlink /proc/self/ns/time"]
#: start-up time and a busy machine: how much later than the host's the uptime may be read
SLACK_S = 10.0


def _uptime() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def check_booted_a_day_ago(booted_a_day_ago: Callable[[list[str]], object]) -> Passed:
    """Call `booted_a_day_ago(argv)` and verify from the container's own /proc/uptime that it
    reads the host's uptime plus one day, in a time namespace of its own."""
    before = _uptime()
    result = attempt(f"booted_a_day_ago({REPORT!r})", booted_a_day_ago, list(REPORT),
                     returns=Result, instead=RETURN_RESULT)
    after = _uptime()
    lines = output_lines(result, REPORT, 2, "pass argv on unchanged")
    inside = float(lines[0].split()[0])
    expect(procfs.parse_ns_link(lines[1]) != procfs.namespace("self", "time"),
           f"the container was in the host's time namespace ({lines[1]}): ask for "
           "namespaces={'time'}")
    shift = inside - before
    expect(DAY_S - 1 <= shift <= DAY_S + (after - before) + SLACK_S,
           f"the container's uptime was {inside:.0f} s, the host's {before:.0f} s: a shift of "
           f"{shift:.0f} s, not one day ({DAY_S} s); use time_offsets={{'boottime': {DAY_S}}}")
    return Passed(f"the container's uptime read {inside:,.0f} s, the host's {before:,.0f} s: it "
                  "\"booted\" a day earlier, in a time namespace of its own")
