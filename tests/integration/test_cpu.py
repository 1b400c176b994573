"""Lesson 15's claims on the real kernel, on cgroup v1 and v2: cpu.weight (v1 cpu.shares)
divides one busy CPU in proportion, cpu.max (v1 cfs_quota_us/cfs_period_us) caps a burner and
cpu.stat counts the throttling, a quota stretches a bursty request's latency, the flags are
refused before anything is made, and the exercise's check passes and fails when it should.
Bounds are generous: the accuracy targets are bench/cpu_accuracy.py's."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

import pycontain
from pycontain import runtime, workloads
from pycontain.cgroups import detect
from pycontain.cgroups.limits import Limits
from pycontain.checks import CheckFailed, lesson15
from pycontain.observe import sharing

V1 = detect().version("cpu") == 1


def test_pycontain_run_cpus_caps_a_burner_near_a_quarter_of_a_cpu():
    # the heaviest weight, so that a busy machine (other tests) does not starve the burner
    # below its cap: what is measured is the cap
    done = subprocess.run([sys.executable, "-m", "pycontain", "run", "--cpus", "0.25",
                           "--cpu-weight", "10000", "--", *workloads.burn_argv(3.0)],
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    cpu_s, wall_s = workloads.burned(done.stdout)
    assert 0.10 <= cpu_s / wall_s <= 0.40, done.stdout


def test_the_cgroup_holds_the_translated_knobs_and_both_v1_hierarchies():
    box = pycontain.spawn(["sleep", "30"], namespaces={"pid"}, cpu_max=0.5, cpu_weight=300)
    try:
        assert box.cgroup.read("cpu.max") == "50000 100000"
        assert box.cgroup.read("cpu.weight") == "300"
        stat = box.cgroup.read_keyed("cpu.stat")
        assert {"usage_usec", "nr_periods", "nr_throttled", "throttled_usec"} <= set(stat)
        if V1:  # cpu and cpuacct are separate hierarchies here: one directory in each
            assert {"cpu", "cpuacct"} <= set(box.cgroup.dirs) or detect().hierarchy(
                "cpu") == detect().hierarchy("cpuacct")
            with open(os.path.join(box.cgroup._dir("cpu"), "cpu.shares")) as f:
                assert f.read().strip() == "3072"  # the kernel's: weight 100 is 1024
            with open(os.path.join(box.cgroup._dir("cpu"), "cpu.cfs_quota_us")) as f:
                assert f.read().strip() == "50000"
    finally:
        box.kill()
        box.wait()


def test_cpu_shares_is_written_the_way_runc_does_on_v2():
    box = pycontain.spawn(["sleep", "30"], namespaces={"pid"}, cpu_shares=1024)
    try:
        assert box.cgroup.read("cpu.weight") == ("100" if V1 else "39")  # v1: 1024 itself
    finally:
        box.kill()
        box.wait()


def test_weights_one_to_three_share_one_cpu_about_one_to_three():
    run = sharing.share_experiment(100, 300, seconds=3.0)
    assert 2.0 <= run.ratio(*run.burned_s) <= 4.5, run.burned_s  # the lesson's 1:3
    used = run.usage_s["cpu.weight 300"]
    assert used[-1] > used[0]  # cpu.stat usage_usec (v1 cpuacct.usage) counted it
    if importlib.util.find_spec("matplotlib"):
        assert run.figure().axes[0].get_legend() is not None


def test_cpu_max_throttles_a_burner_and_nr_throttled_climbs():
    run = sharing.throttle_experiment(0.25, seconds=3.0)
    assert run.used_cpus <= 0.40, run.burned  # at most the cap (less on a busy machine)
    throttled = run.stat["nr_throttled"]
    assert throttled[-1] > throttled[0] and throttled[-1] >= 5  # of ~30 periods
    assert run.stat["throttled_usec"][-1] > 0


def test_a_quota_stretches_bursty_requests_while_their_average_stays_below_it():
    run = sharing.latency_experiment(0.2)
    capped = next(label for label in run.latencies_ms if label.startswith("cpu.max"))
    assert len(run.latencies_ms[capped]) == 12
    assert run.used_percent[capped] < 20  # the average is below the cap...
    # ...but a 30 ms request cannot fit in 20 ms of quota: one waits most of a period
    assert run.worst_ms(capped) >= 30 + 0.5 * (100 - 20)


@pytest.mark.parametrize("words, flag", [
    (["--cpus", "0"], "--cpus"), (["--cpus", "-1"], "--cpus"), (["--cpus", "abc"], "--cpus"),
    (["--cpus", str((os.cpu_count() or 1) + 1)], "--cpus"),
    (["--cpu-weight", "0"], "--cpu-weight"), (["--cpu-weight", "10001"], "--cpu-weight"),
    (["--cpu-shares", "1"], "--cpu-shares"), (["--cpu-shares", "262145"], "--cpu-shares"),
    (["--cpu-weight", "100", "--cpu-shares", "1024"], "--cpu-shares"),
])
def test_bad_cpu_flags_are_refused_before_anything_is_made(words, flag):
    # without PYCONTAIN_ALLOW_HOST the preflight would refuse this machine: an error about the
    # flag instead shows it was refused before the preflight, so before anything was made
    quiet = {k: v for k, v in os.environ.items() if k != "PYCONTAIN_ALLOW_HOST"}
    done = subprocess.run([sys.executable, "-m", "pycontain", "run", *words, "--", "true"],
                          capture_output=True, text=True, timeout=30, env=quiet)
    assert done.returncode == 125
    assert done.stderr.startswith(f"pycontain: {flag} must be"), done.stderr
    assert "Traceback" not in done.stderr


def test_the_check_passes_four_to_one():
    passed = lesson15.check_four_to_one(Limits(cpu_weight=100), Limits(cpu_weight=400))
    assert "within 25% of 4 to 1" in passed
    assert runtime.unwaited() == []


@pytest.mark.parametrize("batch,web,says", [
    (Limits(cpu_weight=400), Limits(cpu_weight=100), "not the other way round"),  # swapped
    (Limits(cpu_weight=300), Limits(cpu_weight=300), "about even"),
    (Limits(cpu_weight=100), Limits(cpu_weight=200), "what ratio did you give"),
])
def test_the_check_says_what_the_measured_ratio_means(batch, web, says):
    with pytest.raises(CheckFailed, match=says):
        lesson15.check_four_to_one(batch, web)
    assert runtime.unwaited() == []  # the burners went, and their cgroups with them


@pytest.mark.skipif(V1, reason="runc's formula for docker's --cpu-shares applies on v2 only")
def test_on_v2_docker_shares_out_of_proportion_are_named():
    with pytest.raises(CheckFailed, match="runc's formula"):
        lesson15.check_four_to_one(Limits(cpu_shares=2), Limits(cpu_shares=8))


def test_the_stretch_wants_a_night_cap_that_never_bites_by_day():
    passed = lesson15.check_day_and_night(Limits(cpu_weight=100, cpu_max=0.5),
                                          Limits(cpu_weight=400))
    assert "the cap never bit" in passed
    with pytest.raises(CheckFailed, match="The cap bit by day"):  # swapped: the cap decides
        lesson15.check_day_and_night(Limits(cpu_weight=400, cpu_max=0.5), Limits(cpu_weight=100))
    assert runtime.unwaited() == []
