"""The checks of lesson 14, limit memory and meet the OOM killer.

`check_keep_under_high` runs a fixed memory hog (`TRY_HOG`: 4 MiB steps up to 48 MiB, then it
holds them for half a second) in a container with the learner's `Limits`, and reads the
kernel's counters before the container's cgroup goes. It passes when the hog finished (exit
0) with no OOM kill (`memory.events` oom_kill 0) under a real memory limit, and, on cgroup v2,
when memory.high held it back (`memory.events` high > 0). cgroup v1 has no memory.high, and
nothing else that throttles: its one lever is the hard limit, so the v1 exercise is to size it
from the measured peak. There it passes when the hog finished with no OOM kill and
memory.limit_in_bytes leaves at most `V1_HEADROOM_BYTES` above the peak
(memory.max_usage_in_bytes): a limit that still protects the machine.
"""

from __future__ import annotations

from pycontain import runtime, workloads
from pycontain.checks import CheckFailed, Passed, expect
from pycontain.checks.exercise import exercise

MiB = 1 << 20
#: the hog of the exercise: step, seconds between steps, cap, seconds it holds the cap
TRY_HOG = ("4M", 0.05, "48M", 0.5)
TIME_LIMIT_S = 120.0  # memory.high 40M, 18 MiB below the need: ~45 s in a quiet v2 test guest
#: v1: how far memory.max may sit above the hog's peak (about 58 MiB); a quarter of the need
V1_HEADROOM_BYTES = 16 * MiB
#: the stretch: v2, throttled (memory.events high > 0) and finished within STRETCH_TIME_S;
#: v1, memory.max at most STRETCH_V1_HEADROOM_BYTES above the peak
STRETCH_TIME_S = 10.0
STRETCH_V1_HEADROOM_BYTES = 10 * MiB

HIGH_HINTS = (
    "First find out which version your memory controller is: the setup cell printed it. The "
    "Try-it's two bullets are two different exercises; v1 has no memory.high at all.",
    "v2: the section \"Throttle instead of kill\" ran this very hog under a memory.high; how "
    "far below its need was that, and did memory.max ever matter? v1: run the hog once under "
    "a generous memory_max and read the peak of its Result.",
    "v2: memory.high a little below the ~58 MiB the hog needs, memory.max far above it. v1: "
    "memory.max is the peak plus a few MiB, well under 16.",
)
STRETCH_HINTS = (
    "v2: the throttle's cost grows steeply with how far the hog is over memory.high. Time the "
    "hog (its Result, or the hog's own `allocated` lines) under a few values of memory.high.",
    "Both: the hog's need varies a little from run to run; measure its peak (its Result's "
    "`memory_peak_bytes`, under a generous memory_max) more than once. v2: memory.high a few "
    "MiB under the least of them holds it back only near its end; v1: the headroom just above "
    "the most.",
)


def run_hog(limits: object) -> tuple[runtime.Result, dict[str, int], int, int]:
    """Run TRY_HOG with `limits`; (result, memory.events, peak bytes, cgroup version)."""
    step, every_s, cap, hold_s = TRY_HOG
    box = runtime.spawn(workloads.hog_argv(step, every_s, cap, hold_s), namespaces={"pid", "mnt"},
                        limits=limits)
    cgroup = box.cgroup
    assert cgroup is not None  # limits were given
    try:
        box.process.wait(timeout=TIME_LIMIT_S)
    except Exception:  # subprocess.TimeoutExpired: wait() below kills it
        pass
    events = cgroup.read_keyed("memory.events")  # before wait(): it removes the cgroup
    peak = int(cgroup.read("memory.peak")) if cgroup.version == 1 else 0
    result = box.wait(timeout_s=1.0)
    return result, events, result.memory_peak_bytes or peak, cgroup.version


def _limits_for_this_machine(limits: object, v2: bool) -> None:
    """The wrong turns caught before the hog runs: not a Limits, no memory.max, and the knob
    the other cgroup version has (v2 without memory.high; v1 with one)."""
    from pycontain.cgroups.limits import Limits

    expect(isinstance(limits, Limits),
           f"`limits` is {limits!r}; make it a Limits(...) with sizes such as '64M' (the "
           "section \"Throttle instead of kill\" made some)"
           + ("" if v2 else "; this machine's memory controller is cgroup v1"))
    assert isinstance(limits, Limits)
    expect(limits.memory_max not in (None, "max"),
           f"{limits} sets no memory.max: with no hard limit nothing is kept in check. The "
           "exercise asks for a limit the hog lives with: set memory_max")
    if v2:
        expect(limits.memory_high not in (None, "max"),
               f"{limits} sets no memory.high: on cgroup v2 the exercise is to *throttle* the "
               "hog with memory.high, below what it needs, while memory.max stays out of reach")
    else:
        expect(limits.memory_high in (None, "max"),
               f"{limits} sets memory.high, but this machine's memory controller is cgroup v1, "
               "which has no memory.high (nor any throttle): the v1 exercise is to size "
               "memory_max from the hog's measured peak, and leave memory_high out")


def _ran_to_the_end(limits: object, time_s: float) -> tuple[runtime.Result, dict[str, int],
                                                             int, str]:
    result, events, peak, version = run_hog(limits)
    hog = f"the hog ({TRY_HOG[0]} steps up to {TRY_HOG[2]}, about 58 MiB with Python itself)"
    if result.oom_killed or events.get("oom_kill", 0):
        raise CheckFailed(
            f"{hog} was {result.reason}; memory.events: {events}. memory.max is the hard "
            "limit, and it is below what the hog needs: "
            + ("raise it out of the hog's reach, and let memory.high do the holding back"
               if version == 2 else "cgroup v1 has no throttle, so memory.max must sit above "
               "the peak: measure the peak under a generous limit first"))
    expect(not result.timed_out,
           f"{hog} did not finish within {time_s:g} s ({result.reason}): memory.high is so "
           "far below its need that the kernel throttles it almost to a halt; raise memory.high "
           "a little")
    expect(result.exit_code == 0, f"{hog} {result.reason}: {result.stderr.strip()[-300:]}")
    return result, events, peak, hog


@exercise(hints=HIGH_HINTS)
def check_keep_under_high(limits: object) -> Passed:
    """Verify that TRY_HOG, run with `limits`, ends by itself with no OOM kill while a limit
    held it back (v2: memory.events high > 0; v1: memory.max at most V1_HEADROOM_BYTES above
    the peak usage)."""
    from pycontain.cgroups import detect

    v2 = detect().version("memory") == 2
    _limits_for_this_machine(limits, v2)
    result, events, peak, hog = _ran_to_the_end(limits, TIME_LIMIT_S)
    if v2:
        expect(events.get("high", 0) > 0,
               f"memory.events says high {events.get('high', 0)}: the hog never went above "
               f"memory.high ({limits}). Set memory.high below what the hog needs, so that "
               "the kernel throttles it")
        return Passed(f"{hog} finished with no OOM kill; memory.high held it back "
                      f"{events['high']} times (memory.events high) and memory.max was never "
                      "reached")
    spare = _v1_spare(limits, peak, hog, V1_HEADROOM_BYTES)
    return Passed(f"{hog} finished with no OOM kill; its peak, {workloads.mib(peak)}, stayed "
                  f"within memory.limit_in_bytes = {workloads.mib(peak + spare)}, "
                  f"{workloads.mib(spare)} of headroom (cgroup v1 has no memory.high: a limit "
                  "sized from the measured peak is all it offers)")


def _v1_spare(limits: object, peak: int, hog: str, most: int) -> int:
    memory_max = getattr(limits, "memory_max", None)
    assert isinstance(memory_max, int)
    expect(peak <= memory_max, f"the peak usage {workloads.mib(peak)} is above memory.max "
                               f"({limits})")
    spare = memory_max - peak
    expect(spare <= most,
           f"{hog} lived, but memory.max ({workloads.mib(memory_max)}) leaves "
           f"{workloads.mib(spare)} unused above its peak (memory.max_usage_in_bytes "
           f"{workloads.mib(peak)}). cgroup v1 has no memory.high: the hard limit is the only "
           "lever, and one far above the need protects nothing. Measure the peak, then leave "
           f"at most {workloads.mib(most)} above it")
    return spare


@exercise(hints=STRETCH_HINTS, stretch=True)
def check_finish_in_time(limits: object) -> Passed:
    """Stretch: v2, memory.high holds the hog back (high > 0) and it still finishes within
    STRETCH_TIME_S; v1, memory.max within STRETCH_V1_HEADROOM_BYTES of the peak."""
    import time

    from pycontain.cgroups import detect

    v2 = detect().version("memory") == 2
    _limits_for_this_machine(limits, v2)
    started = time.monotonic()
    result, events, peak, hog = _ran_to_the_end(limits, TIME_LIMIT_S)
    took_s = time.monotonic() - started
    if v2:
        expect(events.get("high", 0) > 0,
               f"memory.events says high {events.get('high', 0)}: memory.high ({limits}) never "
               "held the hog back; it must, and still let it finish in time")
        expect(took_s <= STRETCH_TIME_S,
               f"{hog} finished, throttled, but after {took_s:.1f} s, over the "
               f"{STRETCH_TIME_S:g} s asked for: memory.high is too far below its need")
        return Passed(f"{hog} was held back {events['high']} times and still finished in "
                      f"{took_s:.1f} s (at most {STRETCH_TIME_S:g} s asked)")
    spare = _v1_spare(limits, peak, hog, STRETCH_V1_HEADROOM_BYTES)
    return Passed(f"{hog} finished with {workloads.mib(spare)} of headroom above its peak: on v1, "
                  "with no throttle, a tight hard limit is what is left")
