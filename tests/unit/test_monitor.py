"""monitor: a fixed sampling clock, a bounded history, clean stops, waits that wake on events.

Files in a temp dir stand in for cgroup files here; the real kernel's notifications and the ENODEV
of a removed cgroup are proven in tests/integration/test_monitor.py.
"""

from __future__ import annotations

import math
import threading
import time

import pytest

from pycontain.cgroups import events as events_module
from pycontain.observe import monitor
from pycontain.observe.monitor import Monitor, Probe


@pytest.fixture
def counter(tmp_path):
    path = tmp_path / "memory.current"
    path.write_text("4096\n")
    return path


def test_samples_at_the_asked_rate_and_stops_cleanly(counter):
    m = Monitor([Probe("memory.current", str(counter))], hz=50).start()
    assert m.wait_samples(50, timeout_s=30) >= 50  # an event, not a 1 s window: slow days pass
    m.stop()
    times = m.times_s()
    # On the 50 Hz clock: the last sample is tick len - 1 + missed (every tick since the start
    # is either sampled or counted as missed), and no tick is ever sampled before it is due.
    assert times == sorted(times)
    assert times[-1] >= (len(times) - 1 + m.missed) * 0.02 - 1e-3
    assert not m.running and "pycontain-monitor" not in [t.name for t in threading.enumerate()]
    assert m.series()["memory.current"][0] == 4096
    m.stop()  # twice is fine


def test_history_is_bounded(counter):
    with Monitor([Probe("x", str(counter))], hz=200, keep=5) as m:
        m.wait_samples(20, timeout_s=2)
        time.sleep(0.1)
    assert len(m.times_s()) == 5


def test_values_follow_the_file(counter):
    with Monitor([Probe("x", str(counter))], hz=100) as m:
        m.wait_samples(2)
        counter.write_text("8192\n")
        deadline = time.monotonic() + 2
        while m.latest()["x"] != 8192 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert m.latest()["x"] == 8192


def test_bad_arguments_are_refused(counter):
    with pytest.raises(ValueError, match="hz"):
        Monitor([Probe("x", str(counter))], hz=0)
    with pytest.raises(ValueError, match="probes"):
        Monitor([])
    with pytest.raises(FileNotFoundError):
        Monitor([Probe("x", str(counter) + ".missing")]).start()


def test_parsers():
    assert monitor.integer("max\n") == math.inf
    assert monitor.keyed("populated")("populated 0\nfrozen 0\n") == 0
    assert monitor.pressure("some", "avg10")("some avg10=12.50 avg60=1 avg300=0 total=5\n") == 12.5
    with pytest.raises(ValueError, match="oom_kill"):
        monitor.keyed("oom_kill")("low 0\n")


def test_rates():
    assert monitor.rates([0, 1, 2], [0, 4, 4]) == [0.0, 4.0, 0.0]


def later(seconds, action):
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_wait_for_samples_a_file_that_does_not_notify(tmp_path):
    events = tmp_path / "memory.oom_control"  # v1: no inotify; sampled every poll_s
    events.write_text("oom_kill 0\n")
    assert not events_module.notifies(str(events))

    def kill() -> None:
        with open(events, "r+") as f:
            f.write("oom_kill 1\n")

    later(0.2, kill)
    start = time.monotonic()
    kills = monitor.wait_for_count(str(events), "oom_kill", timeout_s=5)
    assert 0.15 < time.monotonic() - start < 1
    assert kills == 1 and type(kills) is int and str(kills) == "1"  # lesson 14 showed "1.0"


def test_wait_for_sleeps_on_inotify_for_a_notifying_file(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("")  # what marks a v2 directory
    events = tmp_path / "cgroup.events"
    events.write_text("populated 1\nfrozen 0\n")
    assert events_module.notifies(str(events))

    def end() -> None:  # rewrite in place, as the kernel does: never an empty file in between
        with open(events, "r+") as f:
            f.write("populated 0\nfrozen 0\n")

    later(0.3, end)
    start = time.monotonic()
    # poll_s is huge: only the inotify event can wake the wait in time
    events_module.wait_for(str(events), lambda t: monitor.keyed("populated")(t) == 0,
                           timeout_s=5, poll_s=100)
    assert 0.25 < time.monotonic() - start < 1.5


def test_wait_for_times_out_with_the_last_contents(tmp_path):
    events = tmp_path / "pids.events"
    events.write_text("max 0\n")
    with pytest.raises(TimeoutError, match="max 0"):
        monitor.wait_for_count(str(events), "max", timeout_s=0.2)


def test_rises_marks_the_sample_where_the_counter_went_up_not_a_later_one():
    # lesson 14's OOM marker: samples of memory.current (MiB) and memory.events oom_kill; the
    # kernel counted the kill at 0.33 s while usage was still at the limit, freed it at 0.34 s
    times = [0.30, 0.31, 0.32, 0.33, 0.34, 0.35, 0.36]
    current = [30, 31, 32, 32, 0.2, 0.2, math.nan]
    oom_kill = [0, 0, 0, 1, 1, 1, math.nan]
    assert monitor.rises(times, oom_kill) == [0.33]
    assert current[times.index(0.33)] == 32  # the marker sits at the kill, before the drop
    assert monitor.rises(times, [0, 1, 1, 2, math.nan, 2, 3]) == [0.31, 0.33, 0.36]
    assert monitor.rises(times, [1] * 7) == [0.30]  # counted before the first sample
    assert monitor.rises(times, [0] * 7) == []


def test_link_bytes_samples_a_links_counters_as_the_kernel_counts_them():
    import socket

    # lo: every host has it and anyone may read its statistics; what it sends it receives
    with Monitor(monitor.link_bytes("lo"), hz=100) as watch:
        watch.wait_samples(1)
        before = watch.latest()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for _ in range(10):
                udp.sendto(b"x" * 1000, ("127.0.0.1", 9))  # discard: nobody needs to listen
        count = len(watch.times_s())
        watch.wait_samples(count + 2)
        after = watch.latest()
    assert set(before) == {"sent_bytes", "received_bytes"}
    assert after["sent_bytes"] - before["sent_bytes"] >= 10 * 1000
    assert after["received_bytes"] - before["received_bytes"] >= 10 * 1000
