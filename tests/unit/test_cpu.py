"""The cpu controller's translations and refusals (lesson 15), without a kernel: docker's
--cpus and --cpu-shares into cpu.max and cpu.weight, v2 to v1 and back."""

from __future__ import annotations

import pytest

from pycontain.cgroups import controllers
from pycontain.cgroups.controllers import cpu
from pycontain.cgroups.limits import Limits
from pycontain.errors import SpecError


@pytest.mark.parametrize("given, kept", [
    (1.5, "150000 100000"), ("0.25", "25000 100000"), (2, "200000 100000"),
    ("0.01", "1000 100000"), ("max", "max 100000"), ("max 50000", "max 50000"),
    ("20000 50000", "20000 50000"),
])
def test_cpus_become_cpu_max(given, kept):
    assert Limits(cpu_max=given).settings() == {"cpu.max": kept}


@pytest.mark.parametrize("given", [0, "0", -1, "-1", "abc", "", "nan", "inf", True, "0.001",
                                   "500 100000", "1000 999", "1000 2000000", "1 2 3",
                                   (cpu.online_cpus() + 1)])
def test_bad_cpus_are_refused_naming_the_parameter(given):
    with pytest.raises(SpecError) as caught:
        Limits(cpu_max=given)
    assert caught.value.parameter == "cpu_max" and "number of CPUs" in caught.value.accepted


@pytest.mark.parametrize("name, bad", [("cpu_weight", 0), ("cpu_weight", 10001),
                                       ("cpu_weight", "max"), ("cpu_shares", 1),
                                       ("cpu_shares", 262145), ("cpu_shares", 1.5)])
def test_weights_and_shares_out_of_range_are_refused(name, bad):
    with pytest.raises(SpecError, match=f"`{name}` must be a whole number"):
        Limits(**{name: bad})


def test_weight_and_shares_together_are_refused():
    with pytest.raises(SpecError) as caught:
        Limits(cpu_weight=100, cpu_shares=1024)
    assert caught.value.parameter == "cpu_shares" and "cpu_weight" in caught.value.accepted


def test_runc_and_the_kernel_translate_differently():
    # runc: 1 + ((shares - 2) * 9999) // 262142; runc 1.3.1 wrote 77 for 2000 (runc issue 4896)
    assert [cpu.weight_from_shares(s) for s in (2, 1024, 2000, 2048, 262144)] == [
        1, 39, 77, 79, 10000]
    assert [cpu.shares_from_weight(w) for w in (1, 100, 300, 10000)] == [10, 1024, 3072, 102400]
    for weight in (1, 50, 100, 300, 10000):  # what v1 reads back is what was written
        assert cpu.weight_of_shares_file(cpu.shares_from_weight(weight)) == weight


def test_v1_writes_the_period_before_the_quota_and_v2_writes_shares_as_a_weight():
    settings = Limits(cpu_max=0.5, cpu_shares=2048).settings()
    assert controllers.to_v1(settings) == [("cpu", "cpu.cfs_period_us", "100000"),
                                           ("cpu", "cpu.cfs_quota_us", "50000"),
                                           ("cpu", "cpu.shares", "2048")]
    assert controllers.to_v2(settings) == {"cpu.max": "50000 100000", "cpu.weight": "79"}


def test_cpu_limits_need_cpuacct_too_on_v1():
    from pycontain.cgroups import v1

    assert Limits(cpu_weight=200).controllers() == ("memory", "pids", "cpu")
    assert {"cpu", "cpuacct"} <= v1._needed(Limits(cpu_weight=200).controllers())
