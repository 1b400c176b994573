"""The checks of lesson 11, shift the clock.

The Try-it is what time namespaces exist for: a process moved from another machine (CRIU's
restore) must find its clocks where it left them. The check hands the learner's function the
readings of that other machine, then reads both clocks *inside* the container it ran, next to
the host's. It recognises the wrong turns seen when the exercise was tried: the reading given as
the offset (an offset is added to the host's clock), the offset's sign turned round, one clock
shifted and not the other, the wall clock subtracted, no time namespace. Whatever the function
started is stopped when it raises (`checks.attempt`, `checks.release_children`).
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable, Mapping

from pycontain import procfs
from pycontain.checks import (
    RETURN_RESULT,
    CheckFailed,
    Passed,
    attempt,
    children,
    expect,
    output_lines,
    release_children,
)
from pycontain.checks.exercise import exercise
from pycontain.errors import SpecError
from pycontain.namespaces import time as timens
from pycontain.runtime import Result

DAY_S = 86400
#: what the check asks the container to run: its two clocks, then its time namespace
READ_CLOCKS = [sys.executable, "-c", "import os, time; print(time.clock_gettime("
               "time.CLOCK_MONOTONIC), time.clock_gettime(time.CLOCK_BOOTTIME)); "
               "print(os.readlink('/proc/self/ns/time'))"]
#: what the stretch's command reads: its uptime, then its time namespace
REPORT = ["sh", "-c", "cat /proc/uptime; readlink /proc/self/ns/time"]
#: rounding and a busy machine: how far a clock may be from where it should be, in seconds
SLACK_S = 2.0

CARRY_HINTS = (
    "Reread \"A container that booted a day ago\": an offset is not the time a clock reads, it "
    "is what the kernel *adds* to the host's clock. What must it add to reach the reading you "
    "were given?",
    "Read the host's two clocks the way the first section did (time.clock_gettime), just "
    "before you start the container; a reading may be smaller than the host's: an offset may "
    "be negative.",
    "One offset per clock, in the one dict pycontain.run takes (its docstring names the "
    "parameter); both clocks of the dict you were given.",
)
UNSHARE_HINTS = (
    "unshare(1)'s man page: which option makes a time namespace, and which two set its offsets?",
    "pycontain's init forks after writing the offsets; the man page says what unshare(1) does "
    "about the new namespace with and without --fork. Try both and read /proc/self/ns/time.",
)


def _readings(before: Mapping[str, float]) -> dict[str, float]:
    """The other machine's clocks: booted days earlier, its monotonic clock behind the host's
    (an offset below zero), both random."""
    return {"monotonic": round(before["monotonic"] * random.uniform(0.2, 0.6), 3),
            "boottime": round(before["boottime"] + random.randrange(2, 30) * DAY_S
                              + random.uniform(0, 3600), 3)}


def _host() -> dict[str, float]:
    return {clock: timens.clock_now(clock) for clock in ("monotonic", "boottime")}


def _diagnose(clock: str, inside: float, wanted: float, host: float, spent: float) -> None:
    """Raise a CheckFailed that names the mistake when `clock` read `inside`, not `wanted`."""
    if wanted - SLACK_S <= inside <= wanted + spent + SLACK_S:
        return
    if abs(inside - host) <= spent + SLACK_S:
        raise CheckFailed(f"inside, {clock} read {inside:.0f} s, the host's own clock: no "
                          f"offset for {clock}; both clocks must carry on")
    if abs(inside - (host + wanted)) <= spent + SLACK_S:
        raise CheckFailed(f"inside, {clock} read {inside:.0f} s, not {wanted:.0f} s: the "
                          "reading itself was given as the offset, and the kernel added it to "
                          "the host's clock")
    if abs(inside - (2 * host - wanted)) <= 2 * spent + SLACK_S:
        raise CheckFailed(f"inside, {clock} read {inside:.0f} s, not {wanted:.0f} s: the "
                          "offset's sign is turned round (host minus reading)")
    raise CheckFailed(f"inside, {clock} read {inside:.0f} s, the host's {host:.0f} s; it "
                      f"should have read {wanted:.0f} s (give or take the {spent:.1f} s the "
                      "container took to start)")


def _offset_mistake(cause: BaseException | None, clocks: Mapping[str, float],
                    host: Mapping[str, float]) -> str:
    """What an offset pycontain refused says about how it was computed ('' if nothing)."""
    if not (isinstance(cause, SpecError) and cause.parameter.startswith("time_offsets[")):
        return ""
    clock = cause.parameter.split("'")[1] if "'" in cause.parameter else ""
    given = cause.got
    if clock not in clocks or not isinstance(given, int | float):
        return ""
    if abs(given + time.time()) < 10 * DAY_S * 365 and abs(given) > 1e8:
        return (". That offset is about minus the date: time.time() is CLOCK_REALTIME, which "
                "counts from 1970; subtract the reading of the same clock")
    if abs(given - (host[clock] - clocks[clock])) < 60:
        return ". That offset is the host's clock minus the reading: its sign is turned round"
    return ""


def _attempt(shown: str, func: Callable[..., object], *args: object, returns: type,
             instead: str, clocks: Mapping[str, float] = {},
             host: Mapping[str, float] = {}) -> object:
    before = children()
    try:
        return attempt(shown, func, *args, returns=returns, instead=instead)
    except CheckFailed as e:
        stopped = release_children(before)
        raise CheckFailed(f"{e}{_offset_mistake(e.__cause__, clocks, host)}{stopped}") from e


@exercise(hints=CARRY_HINTS, answers=[timens.offsets_text, timens.write_offsets])
def check_carries_on(carry_on: Callable[[list[str], dict[str, float]], object]) -> Passed:
    """Call `carry_on(argv, clocks)` with the readings of another machine's monotonic and
    boottime clocks; the container must read them (plus the time since the call) inside, in a
    time namespace of its own."""
    start = _host()
    clocks = _readings(start)
    result = _attempt(f"carry_on(argv, {clocks})", carry_on, list(READ_CLOCKS), dict(clocks),
                      returns=Result, instead=RETURN_RESULT, clocks=clocks, host=start)
    spent = _host()["monotonic"] - start["monotonic"]
    assert isinstance(result, Result)
    lines = output_lines(result, READ_CLOCKS, 2, "pass argv on unchanged, with the host's "
                                                 "files (no rootfs)")
    expect(procfs.parse_ns_link(lines[1]) != procfs.namespace("self", "time"),
           f"the container was in the host's time namespace ({lines[1]}): its clocks are the "
           "host's, whatever it was given")
    monotonic, boottime = map(float, lines[0].split())
    for clock, inside in (("monotonic", monotonic), ("boottime", boottime)):
        _diagnose(clock, inside, clocks[clock], start[clock], spent)
    return Passed(f"inside, monotonic read {monotonic:,.1f} s and boottime {boottime:,.1f} s: "
                  "both carried on from the other machine's readings, in a time namespace "
                  "of its own, one offset below zero and one above")


@exercise(hints=UNSHARE_HINTS, stretch=True)
def check_unshare_a_day_ago(day_old: Callable[[list[str]], object]) -> Passed:
    """Stretch: call `day_old(argv)`, which runs argv with unshare(1) (no pycontain) and
    returns its `subprocess.CompletedProcess`; argv must read a boottime one day ahead."""
    before = _host()["boottime"]
    done = _attempt(f"day_old({REPORT!r})", day_old, list(REPORT),
                    returns=subprocess.CompletedProcess,
                    instead="return what subprocess.run(..., capture_output=True, text=True) "
                            "returns")
    after = _host()["boottime"]
    assert isinstance(done, subprocess.CompletedProcess)
    out = done.stdout.decode() if isinstance(done.stdout, bytes) else (done.stdout or "")
    err = done.stderr.decode() if isinstance(done.stderr, bytes) else (done.stderr or "")
    lines = out.splitlines()
    expect(done.returncode != 0 or bool(out),
           "unshare(1) exited 0, but the check got no output: capture it (subprocess.run(..., "
           "capture_output=True, text=True))")
    expect(done.returncode == 0 and len(lines) == 2,
           f"unshare(1) exited {done.returncode} and printed {out!r} {err.strip()!r}: "
           "pass argv on unchanged, and read the error: unshare(1) names the option it wants")
    expect(procfs.parse_ns_link(lines[1]) != procfs.namespace("self", "time"),
           f"the command ran in the host's time namespace ({lines[1]}): unshare(1) made none")
    shift = float(lines[0].split()[0]) - before
    expect(DAY_S - SLACK_S <= shift <= DAY_S + (after - before) + SLACK_S,
           f"the command's uptime was {shift:.0f} s ahead of the host's, not one day "
           f"({DAY_S} s): which option sets CLOCK_BOOTTIME's offset, in seconds?")
    return Passed(f"unshare(1) alone made a time namespace a day ahead ({shift:,.0f} s): the "
                  "same unshare(CLONE_NEWTIME) and timens_offsets write as pycontain's init")
