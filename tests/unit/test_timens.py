"""Time namespace offsets without the kernel: validation, the timens_offsets format, the Spec."""

from __future__ import annotations

import errno

import pytest

from pycontain.errors import SpecError, SyscallError
from pycontain.namespaces import time
from pycontain.runtime import Spec


def test_offsets_text_is_seconds_and_non_negative_nanoseconds():
    assert time.offsets_text({"boottime": 86400}) == "boottime 86400 0\n"
    assert time.offsets_text({"monotonic": 1.25}) == "monotonic 1 250000000\n"
    assert time.offsets_text({"monotonic": -1.5}) == "monotonic -2 500000000\n"


def test_a_day_and_ten_years_are_accepted():
    assert time.validate_offsets({"boottime": 86400, "monotonic": 10 * 365 * 86400}) == {
        "boottime": 86400, "monotonic": 10 * 365 * 86400}


@pytest.mark.parametrize("offsets,match", [
    ({"realtime": 60}, "keyed by 'monotonic' or 'boottime'"),
    ({"boottime": 10 * 365 * 86400 + 1}, "at most"),
    ({"boottime": 1e300}, "at most"),
    ({"boottime": float("nan")}, "a number of seconds"),
    ({"boottime": "1d"}, "a number of seconds"),
    ({"boottime": True}, "a number of seconds"),
    ({"boottime": -10 * 365 * 86400}, "at least -"),  # before boot: the clock would be negative
    ([("boottime", 1)], "a dict"),
])
def test_bad_offsets_are_refused(offsets, match):
    with pytest.raises(SpecError, match=match):
        time.validate_offsets(offsets)


def test_realtime_refusal_says_why():
    with pytest.raises(SpecError) as info:
        Spec(["true"], namespaces={"time"}, time_offsets={"realtime": 60})
    assert "wall clock" in str(info.value) and "lesson 11" in str(info.value)


def test_offsets_need_the_time_namespace():
    with pytest.raises(SpecError, match="set only with 'time' among the namespaces"):
        Spec(["true"], namespaces={"pid"}, time_offsets={"boottime": 60})


def test_spec_carries_offsets_to_init():
    spec = Spec(["true"], namespaces={"time"}, time_offsets={"boottime": 86400})
    assert spec.time_offsets == {"boottime": 86400}
    assert spec.to_wire()["time_offsets"] == {"boottime": 86400}
    assert "time_offsets" in repr(spec)
    assert Spec(["true"]).to_wire()["time_offsets"] == {}


def test_time_and_cgroup_are_opt_in():
    assert not {"time", "cgroup"} & Spec(["true"]).namespaces
    assert Spec(["true"], namespaces="time,cgroup").namespaces == {"time", "cgroup"}


def test_a_frozen_namespace_error_has_a_hint():
    e = SyscallError("write timens_offsets", ("/proc/self/timens_offsets", ""), errno.EACCES)
    assert "before the first fork" in str(e)


def test_time_namespace_adds_time_to_the_other_namespaces():
    from pycontain.spec import DEFAULT_NAMESPACES

    spec = Spec(["true"], time_namespace=True, time_offsets={"boottime": 60})
    assert spec.namespaces == DEFAULT_NAMESPACES | {"time"}
    assert Spec(["true"], namespaces="uts", time_namespace=True).namespaces == {"uts", "time"}
    with pytest.raises(SpecError, match="`time_namespace` must be True or False"):
        Spec(["true"], time_namespace="yes")
