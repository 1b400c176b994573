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

MiB = 1 << 20
#: the hog of the exercise: step, seconds between steps, cap, seconds it holds the cap
TRY_HOG = ("4M", 0.05, "48M", 0.5)
TIME_LIMIT_S = 120.0  # memory.high 40M, 18 MiB below the need: ~45 s in the v2 test guest
#: v1: how far memory.max may sit above the hog's peak (about 58 MiB); a quarter of the need
V1_HEADROOM_BYTES = 16 * MiB


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


def check_keep_under_high(limits: object) -> Passed:
    """Verify that TRY_HOG, run with `limits`, ends by itself with no OOM kill while a limit
    held it back (v2: memory.events high > 0; v1: memory.max at most V1_HEADROOM_BYTES above
    the peak usage)."""
    from pycontain.cgroups import detect
    from pycontain.cgroups.limits import Limits

    expect(isinstance(limits, Limits),
           f"`limits` is {limits!r}; make it a Limits(memory_max=..., memory_high=...) "
           "(sizes such as '64M')")
    assert isinstance(limits, Limits)
    expect(limits.memory_max not in (None, "max"),
           f"{limits} sets no memory.max: with no hard limit nothing is kept in check. The "
           "exercise asks for a limit the hog lives with: set memory_max")
    v2 = detect().version("memory") == 2
    if v2:
        expect(limits.memory_high not in (None, "max"),
               f"{limits} sets no memory.high: on cgroup v2 the exercise is to *throttle* the "
               "hog with memory.high, below what it needs, while memory.max stays out of reach")
    result, events, peak, _ = run_hog(limits)
    hog = f"the hog ({TRY_HOG[0]} steps up to {TRY_HOG[2]}, about 58 MiB with Python itself)"
    if result.oom_killed or events.get("oom_kill", 0):
        raise CheckFailed(
            f"{hog} was {result.reason}; memory.events: {events}. memory.max is the hard "
            "limit: raise it above what the hog needs, and let memory.high do the holding back")
    expect(not result.timed_out,
           f"{hog} did not finish within {TIME_LIMIT_S:g} s ({result.reason}): memory.high is so "
           "far below its need that the kernel throttles it almost to a halt; raise memory.high "
           "a little")
    expect(result.exit_code == 0, f"{hog} {result.reason}: {result.stderr.strip()[-300:]}")
    if v2:
        expect(events.get("high", 0) > 0,
               f"memory.events says high {events.get('high', 0)}: the hog never went above "
               f"memory.high ({limits}). Set memory.high below what the hog needs, so that "
               "the kernel throttles it")
        return Passed(f"{hog} finished with no OOM kill; memory.high held it back "
                      f"{events['high']} times (memory.events high) and memory.max was never "
                      "reached")
    assert isinstance(limits.memory_max, int)
    expect(peak <= limits.memory_max,
           f"the peak usage {workloads.mib(peak)} is above memory.max ({limits})")
    spare = limits.memory_max - peak
    expect(spare <= V1_HEADROOM_BYTES,
           f"{hog} lived, but memory.max ({workloads.mib(limits.memory_max)}) leaves "
           f"{workloads.mib(spare)} unused above its peak (memory.max_usage_in_bytes "
           f"{workloads.mib(peak)}). cgroup v1 has no memory.high: the hard limit is the only "
           "lever, and one far above the need protects nothing. Measure the peak, then set "
           f"memory_max at most {workloads.mib(V1_HEADROOM_BYTES)} above it")
    return Passed(f"{hog} finished with no OOM kill; its peak, {workloads.mib(peak)}, stayed "
                  f"within memory.limit_in_bytes = {workloads.mib(limits.memory_max)}, "
                  f"{workloads.mib(spare)} of headroom (cgroup v1 has no memory.high: a limit "
                  "sized from the measured peak is all it offers)")
