"""The checks of lesson 15, share the cpu.

`check_four_to_one` runs two CPU burners pinned to one CPU for three seconds, one with the
learner's `batch` limits and one with their `web` limits (`observe.sharing.share_experiment`,
which starts both at the same moment), and passes when the web server got `TARGET` times the
CPU of the batch job, within `TOLERANCE` (the lesson asks for 10 %; the check allows 25 %, so
that a busy machine does not fail a right answer). It must be a *share*, not a cap: a cpu.max
would hold the batch job back even when the web server is idle.

It recognises the wrong turns seen when the exercise was tried: a cap instead of a share, a
share on one of the two only, the two swapped (the batch job got four times the web server),
the same share twice, and docker's cpu_shares on v2, which runc's formula does not keep in
proportion. The first ones are named before any burner starts.

The stretch, `check_day_and_night`, adds the night: the batch job alone may use half a CPU and
no more (cpu.max), and by day the web server still gets four times its CPU. It runs the batch
job alone for two seconds, then both for three.
"""

from __future__ import annotations

from pycontain.checks import CheckFailed, Passed, expect
from pycontain.checks.exercise import exercise

TARGET = 4.0
TOLERANCE = 0.25
#: the stretch: the batch job's cap alone, in CPUs, and how far above it a measure may land
NIGHT_CPUS = 0.5
NIGHT_SLACK = 0.1

FOUR_TO_ONE_HINTS = (
    "The lesson met two levers of the cpu controller. Which one only matters while the CPU is "
    "contended, and leaves an idle CPU to whoever wants it? (\"Share one CPU by weight\".)",
    "That lever divides a busy CPU in proportion. The first experiment gave 100 and 300 and "
    "measured about 1 to 3: what two numbers give 4 to 1, and which container gets the larger?",
    "Limits takes the same keywords as pycontain.spawn (the sleeper in \"Cap it: cpu.max\" "
    "set both levers). On cgroup v2, prefer the v2 knob over docker's v1 spelling: the "
    "section \"Two scales, two translations\" says why.",
)
DAY_AND_NIGHT_HINTS = (
    "Two conditions, two levers: one holds the batch job back even when it is alone, the "
    "other divides the CPU when both want it. Does a cap change the division while the capped "
    "job wants less than its cap?",
    "By day the batch job gets a fifth of the CPU, well under half a CPU; at night nothing "
    "competes. \"Cap it: cpu.max\" wrote a quarter of a CPU; what is half?",
)


def _limits_pair(batch: object, web: object, *, capped: str = "") -> None:
    """The checks both take two Limits: say what is wrong with them before anything runs.
    `capped` names the one that may (and in the stretch must) have a cpu.max."""
    from pycontain.cgroups.limits import Limits

    for name, limits in (("batch", batch), ("web", web)):
        expect(isinstance(limits, Limits),
               f"`{name}` is {limits!r}; make each a Limits(...) with the knob as its keyword, "
               "as pycontain.spawn takes it (the sleeper in \"Cap it: cpu.max\")")
        assert isinstance(limits, Limits)
        if name != capped:
            expect(limits.cpu_max in (None, "max") or str(limits.cpu_max).startswith("max "),
                   f"`{name}` sets cpu.max ({limits}): a cap holds the job back even when the "
                   "CPU is idle, at night too. The exercise asks for the other lever, the one "
                   "that only matters while the CPU is contended (\"Share one CPU by weight\")")
    assert isinstance(batch, Limits) and isinstance(web, Limits)
    unset = [name for name, limits in (("batch", batch), ("web", web))
             if limits.cpu_weight is None and limits.cpu_shares is None and name != capped]
    expect(not unset,
           f"`{' and '.join(unset)}` sets no share ({batch} / {web}). A container without one "
           "gets no cpu cgroup of its own, so it competes as part of this notebook's cgroup, "
           "not as a container with a known share: give both a share, so that the ratio is "
           "yours")


def _shares_four_to_one(batch: object, web: object, seconds: float,
                        cap_cpus: float | None = None) -> tuple[str, float]:
    """Run both burners together; return what was seen, or fail saying what the ratio means
    (`cap_cpus`: the batch job's cap, which may have bitten)."""
    from pycontain.cgroups import detect
    from pycontain.observe import sharing

    run = sharing.share_experiment(batch, web, seconds=seconds)  # type: ignore[arg-type]
    first, second = run.burned_s
    ratio = run.ratio(first, second)
    seen = (f"the web server's burner got {run.burned_s[second]:.2f} s of CPU and the batch "
            f"job's {run.burned_s[first]:.2f} s in {seconds:g} s pinned to CPU {run.cpu}: "
            f"{ratio:.2f} to 1")
    if abs(ratio - TARGET) <= TOLERANCE * TARGET:
        return seen, ratio
    batch_cpus = run.burned_s[first] / seconds
    if cap_cpus is not None and ratio < TARGET and batch_cpus >= cap_cpus - NIGHT_SLACK:
        raise CheckFailed(
            f"{seen}: the batch job used {batch_cpus:.2f} CPUs, about its cap of {cap_cpus:g}. "
            "The cap bit by day, so the shares no longer decided: by day the batch job's share "
            "must stay below its cap. Which container's share is the larger?")
    docker_v2 = detect().version("cpu") == 2 and any(
        getattr(limits, "cpu_shares", None) is not None for limits in (batch, web))
    if docker_v2:
        raise CheckFailed(
            f"{seen}; the target is {TARGET:g} to 1. You gave docker's cpu_shares on cgroup "
            "v2: runc's formula turns each into a cpu.weight that is not in proportion (the "
            "section \"Two scales, two translations\"). Compute the weights they became, or "
            "give the v2 knob itself")
    if ratio > 0 and abs(1 / ratio - TARGET) <= TOLERANCE * TARGET:
        raise CheckFailed(
            f"{seen}: the batch job got four times the web server's CPU, not the other way "
            "round. The check passes (batch, web) in that order; which one should be heavier?")
    if 0.75 <= ratio <= 1.33:
        raise CheckFailed(
            f"{seen}: about even. Equal shares divide a busy CPU equally; for 4 to 1 the "
            "shares must differ, in that proportion")
    raise CheckFailed(
        f"{seen}; the target is {TARGET:g} to 1. A share divides a busy CPU in proportion to "
        "the two values: what ratio did you give? (print batch and web: they show it)")


@exercise(hints=FOUR_TO_ONE_HINTS)
def check_four_to_one(batch: object, web: object) -> Passed:
    """Verify that `web` gets about four times the CPU of `batch` when both compete for one
    CPU, through a share (cpu.weight or cpu.shares), not a cap."""
    _limits_pair(batch, web)
    seen, _ = _shares_four_to_one(batch, web, 3.0)
    return Passed(f"{seen}: within {TOLERANCE:.0%} of {TARGET:g} to 1")


@exercise(hints=DAY_AND_NIGHT_HINTS, stretch=True)
def check_day_and_night(batch: object, web: object) -> Passed:
    """Stretch: `batch` alone uses at most NIGHT_CPUS (a cpu.max of exactly that), and `web`
    still gets four times its CPU when both compete."""
    from pycontain.cgroups.controllers import cpu
    from pycontain.observe import sharing

    _limits_pair(batch, web, capped="batch")
    assert batch is not None
    given = getattr(batch, "cpu_max", None)
    quota, _, period = str(given or "max").partition(" ")
    expect(quota != "max",
           f"`batch` sets no cpu.max ({batch}): alone at night it would take the whole CPU; "
           f"it may use {NIGHT_CPUS:g} of a CPU, and a share never holds anyone back")
    cpus = int(quota) / int(period or cpu.PERIOD_US)
    expect(abs(cpus - NIGHT_CPUS) < 0.01,
           f"`batch`'s cpu.max, {given}, is {cpus:.2f} of a CPU: the night budget is "
           f"{NIGHT_CPUS:g}, no less (it is the batch job's time to catch up) and no more")
    night = sharing.share_experiment(batch, seconds=2.0)  # type: ignore[arg-type]
    used = next(iter(night.burned_s.values())) / 2.0
    expect(used <= NIGHT_CPUS + NIGHT_SLACK,
           f"alone, the batch job used {used:.2f} CPUs, above its cap of {NIGHT_CPUS:g}")
    seen, _ = _shares_four_to_one(batch, web, 3.0, cap_cpus=cpus)
    return Passed(f"at night the batch job alone used {used:.2f} CPUs (cpu.max {given}); by "
                  f"day {seen}: the cap never bit while its share was smaller than the cap")
