"""The checks of lesson 15, share the cpu.

`check_four_to_one` runs two CPU burners pinned to one CPU for three seconds, one with the
learner's `batch` limits and one with their `web` limits (`observe.sharing.share_experiment`),
and passes when the web server got `TARGET` times the CPU of the batch job, within
`TOLERANCE` (the lesson asks for 10 %; the check allows 25 %, so that a busy machine does not
fail a right answer). It must be a *share* (cpu.weight or cpu.shares), not a cap: a cpu.max
would hold the batch job back even when the web server is idle.
"""

from __future__ import annotations

from pycontain.checks import Passed, expect

TARGET = 4.0
TOLERANCE = 0.25


def check_four_to_one(batch: object, web: object) -> Passed:
    """Verify that `web` gets about four times the CPU of `batch` when both compete for one
    CPU, through a share (cpu.weight or cpu.shares), not a cap."""
    from pycontain.cgroups.limits import Limits
    from pycontain.observe import sharing

    for name, limits in (("batch", batch), ("web", web)):
        expect(isinstance(limits, Limits),
               f"`{name}` is {limits!r}; make it a Limits(cpu_weight=...) (or cpu_shares=...)")
        assert isinstance(limits, Limits)
        expect(limits.cpu_max in (None, "max") or str(limits.cpu_max).startswith("max "),
               f"`{name}` sets cpu.max ({limits}): a cap holds the job back even when the CPU "
               "is idle. The exercise asks for a share: cpu_weight or cpu_shares")
        expect(limits.cpu_weight is not None or limits.cpu_shares is not None,
               f"`{name}` ({limits}) sets no share: give it a cpu_weight (or cpu_shares)")
    assert isinstance(batch, Limits) and isinstance(web, Limits)
    run = sharing.share_experiment(batch, web, seconds=3.0)
    first, second = run.burned_s
    ratio = run.ratio(first, second)
    seen = (f"the web server's burner got {run.burned_s[second]:.2f} s of CPU and the batch "
            f"job's {run.burned_s[first]:.2f} s in 3 s pinned to CPU {run.cpu}: {ratio:.2f} to 1")
    expect(abs(ratio - TARGET) <= TOLERANCE * TARGET,
           f"{seen}; the target is {TARGET:g} to 1. cpu.weight (and cpu.shares) divide a busy "
           "CPU in proportion: choose two whose ratio is 4" + (
               " (cpu_shares on cgroup v2 goes through runc's formula, which is not "
               "proportional: compare the cpu.weight each becomes)"
               if batch.cpu_shares is not None or web.cpu_shares is not None else ""))
    return Passed(f"{seen}: within {TOLERANCE:.0%} of {TARGET:g} to 1")
