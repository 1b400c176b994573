"""Lesson 11 from the command line: --time-namespace, --boottime-offset, --monotonic-offset."""

from __future__ import annotations

import time

import pytest

from pycontain import procfs

DAY = 86400


def uptime() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def test_boottime_offset_shifts_uptime_by_a_day(cli):
    before = uptime()
    done = cli("run", "--time-namespace", "--boottime-offset", str(DAY), "--", "cat",
               "/proc/uptime")
    after = uptime()
    assert done.returncode == 0, done.stderr
    inside = float(done.stdout.split()[0])
    assert before + DAY - 0.01 <= inside <= after + DAY + 0.01


def test_an_offset_alone_implies_the_time_namespace_and_keeps_the_others(cli):
    done = cli("run", "--namespaces", "uts", "--monotonic-offset=-5", "--boottime-offset",
               "3600.5", "--", "sh", "-c",
               "cat /proc/self/timens_offsets; readlink /proc/self/ns/time /proc/self/ns/pid")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["monotonic", "-5", "0"]
    assert lines[1].split() == ["boottime", "3600", "500000000"]
    host = {kind: f"{kind}:[{procfs.namespace('self', kind).inode}]" for kind in ("time", "pid")}
    assert lines[2] != host["time"]  # a time namespace of its own
    assert lines[3] == host["pid"]  # and no pid namespace: only uts and time were asked for


def test_the_wall_clock_is_not_shifted(cli):
    done = cli("run", "--boottime-offset", str(DAY), "--monotonic-offset", str(DAY), "--",
               "date", "+%s")
    assert done.returncode == 0, done.stderr
    assert abs(int(done.stdout) - time.time()) < 60


@pytest.mark.parametrize("args,named", [
    (["--boottime-offset", "a-day"], "--boottime-offset must be a number of seconds"),
    (["--monotonic-offset", "nan"], "--monotonic-offset"),
    (["--boottime-offset", str(11 * 365 * DAY)], "--boottime-offset"),
    (["--boottime-offset", str(-11 * 365 * DAY)], "--boottime-offset"),
    (["--monotonic-offset", str(-1e9)], "ten years"),
])
def test_bad_offsets_exit_125_naming_the_flag(cli, args, named):
    done = cli("run", *args, "--", "true")
    assert done.returncode == 125 and "Traceback" not in done.stderr
    assert done.stderr.startswith("pycontain: ") and named in done.stderr


def test_the_flags_are_in_the_help(cli):
    done = cli("run", "--help")
    for flag in ("--time-namespace", "--boottime-offset SECONDS", "--monotonic-offset SECONDS"):
        assert flag in done.stdout


def test_an_offset_with_the_hosts_network_keeps_the_host_network(cli):
    done = cli("run", "--network", "host", "--boottime-offset", str(DAY), "--", "readlink",
               "/proc/self/ns/net", "/proc/self/ns/time")
    assert done.returncode == 0, done.stderr
    net, timens = done.stdout.splitlines()
    assert net == f"net:[{procfs.namespace('self', 'net').inode}]"  # the host's network
    assert timens != f"time:[{procfs.namespace('self', 'time').inode}]"
