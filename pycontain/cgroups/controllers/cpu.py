"""The cpu controller: how the CPU is shared between cgroups, and capped (lesson 15).

Two mechanisms, both in the kernel's CFS scheduler. `cpu.weight` (1-10000, default 100) is a
*share*: when cgroups compete for a CPU, each gets CPU time in proportion to its weight, and
an idle cgroup's share goes to the others; nothing is capped. `cpu.max` ("QUOTA PERIOD" in
µs, or "max PERIOD") is a *cap*: in each period the cgroup may run QUOTA µs in all, then its
tasks are throttled until the next period starts, even when the CPU is idle. `cpu.stat` counts
the CPU used (`usage_usec`) and the throttling (`nr_periods`, `nr_throttled`,
`throttled_usec`). cgroup v1 spells them differently and splits them over two hierarchies,
`cpu` (shares, quota, throttling) and `cpuacct` (usage), which may be mounted apart:

=================  ===========================================  =================================
v2 (the lessons)   v1                                           translation
=================  ===========================================  =================================
cpu.weight         cpu.shares                                   the kernel's: 100 is 1024
cpu.shares         (a v1 knob; docker's --cpu-shares)           on v2, runc's: weight from shares
cpu.max            cpu.cfs_quota_us, cpu.cfs_period_us          "max" is a quota of -1
cpu.stat           cpu.stat, cpuacct.usage (in cpuacct)         ns -> µs
=================  ===========================================  =================================

The kernel itself relates the two scales by the weight of a nice-0 task: cpu.shares 1024 is
cpu.weight 100 (`sched_weight_from_cgroup`, kernel/sched/core.c). runc, and so docker and
Kubernetes on cgroup v2, map the whole shares range 2-262144 onto 1-10000 instead
(`ConvertCPUSharesToCgroupV2Value`), so `--cpu-shares 1024` becomes cpu.weight 39, not 100
(runc 1.3.2 and crun 1.23 moved to a curve that keeps 1024 at 100, runc issue #4772; the
linear formula is the one most deployed versions use):

    >>> weight_from_shares(2), weight_from_shares(1024), weight_from_shares(262144)
    (1, 39, 10000)
    >>> shares_from_weight(100), shares_from_weight(1), shares_from_weight(10000)
    (1024, 10, 102400)
    >>> to_v1({"cpu.weight": "300", "cpu.max": "25000 100000"})
    [('cpu.shares', '3072'), ('cpu.cfs_period_us', '100000'), ('cpu.cfs_quota_us', '25000')]
    >>> to_v1({"cpu.max": "max 100000"})
    [('cpu.cfs_period_us', '100000'), ('cpu.cfs_quota_us', '-1')]
    >>> to_v2({"cpu.shares": "1024"})
    {'cpu.weight': '39'}
    >>> files = {"cpu.cfs_quota_us": "-1\\n", "cpu.cfs_period_us": "100000\\n",
    ...          "cpu.shares": "3072\\n"}
    >>> read_v1("cpu.max", files.get), read_v1("cpu.weight", files.get)
    ('max 100000', '300')
    >>> files = {"cpu.stat": "nr_periods 40\\nnr_throttled 30\\nthrottled_time 2500000000\\n",
    ...          "cpuacct.usage": "1000000000\\n"}
    >>> read_keyed_v1("cpu.stat", files.get)
    {'usage_usec': 1000000, 'nr_periods': 40, 'nr_throttled': 30, 'throttled_usec': 2500000}

See also: Documentation/admin-guide/cgroup-v2.rst ("CPU"), scheduler/sched-bwc.rst (bandwidth
control), cgroup-v1/cpuacct.rst; docker-run(1) `--cpus`, `--cpu-shares`; runc's
libcontainer/cgroups/utils.go.
"""

from __future__ import annotations

import os

from pycontain.cgroups.controllers.field import Counter, Field
from pycontain.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: docker's period for --cpus, in µs (100 ms, the kernel's default cfs_period_us)
PERIOD_US = 100_000
#: the kernel's bounds on a period and the least quota (sched-bwc.rst: 1 ms to 1 s; 1 ms)
MIN_PERIOD_US, MAX_PERIOD_US, MIN_QUOTA_US = 1_000, 1_000_000, 1_000
MIN_WEIGHT, MAX_WEIGHT, DEFAULT_WEIGHT = 1, 10_000, 100
MIN_SHARES, MAX_SHARES, DEFAULT_SHARES = 2, 262_144, 1024

#: v2 knob -> the v1 file that holds it
FILES: dict[str, str | None] = {
    "cpu.weight": "cpu.shares",     # translated: the kernel's 100 = 1024
    "cpu.shares": "cpu.shares",     # docker's word; on v2 it is written as cpu.weight (runc's)
    "cpu.max": "cpu.cfs_quota_us",  # and cpu.cfs_period_us
    "cpu.stat": "cpu.stat",         # usage_usec from cpuacct.usage; times in ns on v1
}

#: what the cpu controller counts (a monitor's series): v1 keeps times in ns, usage in cpuacct
COUNTERS = (
    Counter("cpu_usage_usec", "cpu.stat", "usage_usec", "cpuacct.usage", None, 1 / 1000),
    Counter("cpu_nr_throttled", "cpu.stat", "nr_throttled", "cpu.stat", "nr_throttled"),
    Counter("cpu_throttled_usec", "cpu.stat", "throttled_usec", "cpu.stat", "throttled_time",
            1 / 1000),
)

#: cgroup v1 keeps what cpu.stat adds up in another hierarchy: a container with cpu limits gets
#: a directory there too (`cgroups.v1`)
V1_COMPANIONS = ("cpuacct",)


def weight_from_shares(shares: int) -> int:
    """cpu.weight for docker's cpu.shares, as runc writes it on cgroup v2
    (`ConvertCPUSharesToCgroupV2Value`: 2..262144 onto 1..10000, linearly)."""
    return 1 + ((shares - 2) * 9999) // 262142


def shares_from_weight(weight: int) -> int:
    """cpu.shares for cpu.weight, as the kernel relates them (`sched_weight_from_cgroup`:
    weight 100 = 1024, a nice-0 task), within v1's 2..262144."""
    return max(MIN_SHARES, min(MAX_SHARES, (weight * 1024 + 50) // 100))


def weight_of_shares_file(shares: int) -> int:
    """cpu.weight as the kernel reports it for v1's cpu.shares (`sched_weight_to_cgroup`)."""
    return max(MIN_WEIGHT, min(MAX_WEIGHT, (shares * 100 + 512) // 1024))


def online_cpus() -> int:
    """How many CPUs are online: the most `--cpus` may ask for (as docker says)."""
    return os.cpu_count() or 1


def cpus(given: object, parameter: str) -> str:
    """Parse a CPU cap into cpu.max's "QUOTA PERIOD": a number of CPUs (docker's `--cpus
    1.5`: quota = cpus × 100000 µs), or cpu.max's own spelling ("50000 100000", "max").

    >>> cpus("1.5", "cpu_max"), cpus(0.25, "cpu_max"), cpus("max", "cpu_max")
    ('150000 100000', '25000 100000', 'max 100000')
    >>> cpus("20000 50000", "cpu_max")
    '20000 50000'
    """
    form = (f"a number of CPUs above 0 and at most {online_cpus()} (the CPUs online), such as "
            "0.5 or 1.5, or cpu.max's own 'QUOTA PERIOD' in µs ('50000 100000', 'max')")
    text = str(given).strip() if isinstance(given, str | int | float) and not isinstance(
        given, bool) else None
    words = text.split() if text else []
    if len(words) == 2 or words == ["max"]:
        quota, period = (words + [str(PERIOD_US)])[:2]
        if (quota == "max" or quota.isdigit()) and period.isdigit():
            if not MIN_PERIOD_US <= int(period) <= MAX_PERIOD_US:
                raise SpecError(parameter, form, given, hint=f"the period must be "
                                f"{MIN_PERIOD_US}-{MAX_PERIOD_US} µs (sched-bwc.rst)")
            if quota != "max" and int(quota) < MIN_QUOTA_US:
                raise SpecError(parameter, form, given,
                                hint=f"the kernel takes a quota of at least {MIN_QUOTA_US} µs")
            return f"{quota} {period}"
        raise SpecError(parameter, form, given)
    try:
        count = float(words[0]) if len(words) == 1 else float("nan")
    except ValueError:
        count = float("nan")
    if not 0 < count <= online_cpus():  # NaN too
        hint = (f"this machine has {online_cpus()} CPUs online; a quota above them could never "
                "be used up" if count > online_cpus() else
                "--cpus caps the CPU time per 100 ms period: 0.5 is half of one CPU")
        raise SpecError(parameter, form, given, hint=hint)
    quota_us = round(count * PERIOD_US)
    if quota_us < MIN_QUOTA_US:
        raise SpecError(parameter, form, given,
                        hint=f"the kernel takes a quota of at least {MIN_QUOTA_US} µs: 0.01 CPUs")
    return f"{quota_us} {PERIOD_US}"


def _whole(what: str, least: int, most: int, hint: str) -> Callable[[object, str], int]:
    def parse(given: object, parameter: str) -> int:
        value = given.strip() if isinstance(given, str) else given
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
            raise SpecError(parameter, f"a whole number{what} from {least} to {most}", given,
                            hint=hint)
        return value

    return parse


#: the limits this controller offers (`Limits`, `Spec`, `pycontain run`; see `field`)
FIELDS = (
    Field("cpu_max", "cpu.max", cpus, flag="--cpus", metavar="CPUS",
          help="cpu.max: the CPU time the container may use, in CPUs (docker's: 1.5 is a quota "
               "of 150000 µs per 100000 µs period)",
          doc="cpu.max, a cap: CPUs (1.5), or 'QUOTA PERIOD' in µs", lesson=15),
    Field("cpu_weight", "cpu.weight",
          _whole("", MIN_WEIGHT, MAX_WEIGHT,
                 f"cpu.weight is a share under contention; the default is {DEFAULT_WEIGHT}"),
          flag="--cpu-weight", metavar="N",
          help="cpu.weight: the container's share of the CPU when busy, 1-10000 (default 100)",
          doc="cpu.weight, a share when CPUs are busy (1-10000, default 100)", lesson=15),
    Field("cpu_shares", "cpu.shares",
          _whole(" of shares", MIN_SHARES, MAX_SHARES,
                 f"docker's --cpu-shares, v1's cpu.shares; the default is {DEFAULT_SHARES}"),
          flag="--cpu-shares", metavar="N",
          help="cpu.shares: docker's word for the share, 2-262144 (default 1024; on cgroup "
               "v2 written as cpu.weight, the way runc translates it)",
          doc="cpu.shares, docker's share (2-262144; v2: runc's cpu.weight)", lesson=15),
)


def check(values: Mapping[str, int | str], given: Mapping[str, object]) -> None:
    """Refuse cpu_weight and cpu_shares together: they set the same thing.

    >>> check({"cpu_weight": 100, "cpu_shares": 1024}, {"cpu_shares": 1024})
    Traceback (most recent call last):
    ...
    pycontain.errors.SpecError: `cpu_shares` must be given without cpu_weight, got 1024
      hint: both set the cgroup's share of the CPU (cpu.weight on v2, cpu.shares on v1): give one
    """
    if "cpu_weight" in values and "cpu_shares" in values:
        raise SpecError("cpu_shares", "given without cpu_weight", given["cpu_shares"],
                        hint="both set the cgroup's share of the CPU (cpu.weight on v2, "
                             "cpu.shares on v1): give one")


def to_v1(settings: Mapping[str, str]) -> list[tuple[str, str]]:
    """The v1 writes, in order, for v2 `settings`: the period before the quota, so that the
    kernel checks the quota against the period it goes with."""
    writes = []
    for knob, value in settings.items():
        if knob == "cpu.weight":
            writes.append(("cpu.shares", str(shares_from_weight(int(value)))))
        elif knob == "cpu.max":
            quota, period = value.split()
            writes += [("cpu.cfs_period_us", period),
                       ("cpu.cfs_quota_us", "-1" if quota == "max" else quota)]
        else:
            writes.append((FILES[knob] or knob, value))
    return writes


def to_v2(settings: Mapping[str, str]) -> dict[str, str]:
    """v2 writes for `settings`: docker's cpu.shares becomes cpu.weight, as runc converts it."""
    return {("cpu.weight" if knob == "cpu.shares" else knob):
            (str(weight_from_shares(int(value))) if knob == "cpu.shares" else value)
            for knob, value in settings.items()}


def read_v1(knob: str, read: Callable[[str], str]) -> str:
    """`knob` as v2 would show it, from v1 files (`read(file)` returns one's text)."""
    if knob == "cpu.max":
        quota = read("cpu.cfs_quota_us").strip()
        return f"{'max' if quota == '-1' else quota} {read('cpu.cfs_period_us').strip()}"
    if knob == "cpu.weight":
        return str(weight_of_shares_file(int(read("cpu.shares"))))
    return read(FILES[knob] or knob).strip()


def read_keyed_v1(knob: str, read: Callable[[str], str]) -> dict[str, int]:
    """cpu.stat as v2 shows it, from v1's cpu.stat (times in ns) and cpuacct.usage (ns)."""
    if knob != "cpu.stat":
        raise ValueError(f"{knob} is not a keyed file of the cpu controller")
    stat = dict(line.split() for line in read("cpu.stat").splitlines() if line.strip())
    return {"usage_usec": int(read("cpuacct.usage")) // 1000,
            "nr_periods": int(stat["nr_periods"]), "nr_throttled": int(stat["nr_throttled"]),
            "throttled_usec": int(stat["throttled_time"]) // 1000}
