"""Lesson 18's claims on the real kernel: a container pinned with cpuset.cpus runs only there
(its cgroup's cpuset.cpus.effective and its process's Cpus_allowed_list agree), two pinned
burners share one CPU and free ones may run on every CPU, a bad list or a CPU the parent
cannot hand out is refused before anything is created (naming the flag on the command line), a
v1 cpuset cgroup made by pycontain takes tasks while a bare one refuses them (ENOSPC), and the
check passes and fails when it should."""

from __future__ import annotations

import errno
import os

import pytest

import pycontain
from pycontain import cgroups, procfs, runtime, workloads
from pycontain.cgroups.controllers import cpuset
from pycontain.cgroups.limits import Limits
from pycontain.checks import CheckFailed, lesson18
from pycontain.errors import CgroupError, SpecError
from pycontain.observe import probe, widgets

CPUS = sorted(os.sched_getaffinity(0))
LAST = CPUS[-1]
V1 = cgroups.detect().version("cpuset") == 1


def _gone(cgroup: cgroups.Cgroup | None) -> bool:
    """Whether every directory of a container's cgroup is removed (the session's own check
    asserts that nothing at all is left; other sessions' cgroups come and go meanwhile)."""
    return cgroup is not None and not any(os.path.isdir(d) for d in cgroup.dirs.values())


def _allowed(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        return procfs.parse_status(f.read())["Cpus_allowed_list"]


def test_a_pinned_container_may_run_on_its_cpu_only():
    box = pycontain.spawn(["sleep", "60"], cpuset_cpus=str(LAST))
    try:
        assert box.cgroup is not None and "cpuset" in box.cgroup.layout.where()
        assert box.cgroup.read("cpuset.cpus") == str(LAST)
        assert box.cgroup.read("cpuset.cpus.effective") == str(LAST)
        assert box.cgroup.read("cpuset.mems.effective") != ""
        assert _allowed(box.pid) == str(LAST)
    finally:
        probe.stop(box)
    assert _gone(box.cgroup)


def test_cpuset_mems_reads_back_and_a_fork_inherits_the_pin():
    result = pycontain.run(["sh", "-c", "grep Cpus_allowed_list /proc/self/status"],
                           cpuset_cpus=str(LAST), cpuset_mems="0", timeout_s=30)
    assert result.status == 0, result.stderr
    assert result.stdout.split() == ["Cpus_allowed_list:", str(LAST)]


def test_pinned_burners_share_one_cpu_and_free_ones_spread():
    pinned = widgets.cpuset_experiment(str(LAST), workers=2, seconds=1.5)
    assert pinned.result.status == 0 and pinned.burned is not None
    assert pinned.effective == str(LAST) and pinned.burned["allowed"] == str(LAST)
    assert pinned.burned["ran_on"] == (LAST,)
    assert pinned.burned["cpu_s"] <= 1.15 * pinned.burned["wall_s"]  # one CPU's worth at most
    assert set(pinned.shares) == set(procfs.cpu_times()) and pinned.times_s
    free = widgets.cpuset_experiment(None, workers=2, seconds=1.5)
    assert free.effective is None and free.burned is not None
    assert free.burned["allowed"] == cpuset.format_list(CPUS)
    assert set(free.burned["ran_on"]) <= set(CPUS)  # spread when idle: not asserted, shared host


@pytest.mark.parametrize("wrong", ["0-", "3-1", "a", "", str(LAST + 1), f"0-{LAST + 1}"])
def test_a_bad_list_is_refused_before_anything_is_created(wrong):
    with pytest.raises(SpecError) as caught:
        pycontain.run(["true"], cpuset_cpus=wrong)
    assert caught.value.parameter == "cpuset_cpus"


@pytest.mark.parametrize("wrong", ["0-", "3-1", "a", str(LAST + 1)])
def test_the_command_line_names_the_flag(cli, wrong):
    done = cli("run", "--cpuset-cpus", wrong, "--", "true")
    assert done.returncode == 125
    assert done.stderr.startswith("pycontain: --cpuset-cpus must be"), done.stderr
    assert "hint:" in done.stderr


def test_the_parents_effective_set_bounds_what_may_be_asked():
    parent = cgroups.home(cgroups.detect().hierarchy("cpuset"))
    file = "cpuset.effective_cpus" if V1 else "cpuset.cpus.effective"
    with open(os.path.join(parent, file)) as f:
        offered = f.read().strip()
    Limits(cpuset_cpus=offered).check_host(cgroups.detect())
    with pytest.raises(SpecError, match=f"cpuset.cpus.effective, {offered}"):
        Limits(cpuset_cpus=str(int(offered.split(",")[-1].split("-")[-1]) + 1)).check_host(
            cgroups.detect())


@pytest.mark.skipif(not V1, reason="the empty-cpuset.mems trap is cgroup v1's")
def test_v1_a_bare_cpuset_refuses_a_task_and_one_pycontain_made_takes_it():
    parent = cgroups.home(cgroups.detect().hierarchy("cpuset"))
    raw = os.path.join(parent, cgroups.new_name("test-trap"))
    sleeper = pycontain.spawn(["sleep", "60"])
    cgroups.make_dir(raw)
    try:
        with pytest.raises(CgroupError) as caught:
            cgroups.write_file(os.path.join(raw, "cgroup.procs"), sleeper.pid)
        assert caught.value.errno == errno.ENOSPC
        assert "cpuset.mems" in str(caught.value.hint) and "lesson 18" in str(caught.value.hint)
        made = cgroups.create(["cpuset"], label="test")
        try:
            for file in ("cpuset.cpus", "cpuset.mems"):
                assert made.read(file) == cgroups.read_file(os.path.join(parent, file)).strip()
            made.attach(sleeper.pid)
            assert sleeper.pid in made.procs()
        finally:
            made.remove()
        assert _gone(made)
    finally:
        probe.stop(sleeper)
        cgroups.remove_dir(raw)


@pytest.mark.skipif(V1, reason="cgroup v2: an empty cpuset.mems means the parent's")
def test_v2_an_empty_cpuset_mems_means_the_parents():
    box = pycontain.spawn(["sleep", "60"], cpuset_cpus=str(LAST))
    try:
        assert box.cgroup.read("cpuset.mems") == ""
        assert box.cgroup.read("cpuset.mems.effective") != ""
    finally:
        probe.stop(box)
    assert _gone(box.cgroup)


def test_the_check_passes_a_pinned_container():
    def pin(practice):
        box = pycontain.spawn(["sleep", "60"], cpuset_cpus=str(CPUS[0]))
        practice.defer(lambda: probe.stop(box), "stop it")
        return box

    assert "CPU" in lesson18.check_pinned(pin)


def _spawned(practice, argv=("sleep", "60"), **options):
    box = pycontain.spawn(list(argv), **options)
    practice.defer(lambda: probe.stop(box), "stop it")
    return box


def _self_pinned(practice):  # the notebook's own affinity: every container inherits it
    os.sched_setaffinity(0, {CPUS[0]})
    return _spawned(practice)


def _process_pinned(practice):  # taskset on the container's process, no cpuset
    box = _spawned(practice)
    os.sched_setaffinity(box.pid, {CPUS[0]})
    return box


def _ended(practice):  # waited for: it has ended, and its cgroup with it
    box = _spawned(practice, ["true"], cpuset_cpus=str(CPUS[0]))
    box.wait()
    return box


def _raises(practice):
    pycontain.spawn(["sleep", "60"], cpuset_cpus=str(CPUS[0]))
    raise RuntimeError("oops")


WRONG_TURNS = [
    (lambda p: pycontain.run(["true"], cpuset_cpus=str(CPUS[0])), "still running"),
    (_ended, "not running any more"),
    (lambda p: _spawned(p), "has no cgroup, so no cpuset"),
    (_process_pinned, "a cpuset is the cgroup's"),
    (_self_pinned, "pinned this notebook's own process"),
    (_raises, r"raised RuntimeError: oops \(the check stopped the 1 container"),
    (lambda p: None, "returned None"),
]
if len(CPUS) > 1:
    WRONG_TURNS.append((lambda p: _spawned(p, cpuset_cpus=cpuset.format_list(CPUS)),
                        "not several"))
    if V1:  # v1: limits, but no directory in the cpuset hierarchy
        WRONG_TURNS.append((lambda p: _spawned(p, pids_max=10), "has limits but no cpuset"))


@pytest.mark.parametrize("pin,message", WRONG_TURNS)
def test_the_check_names_the_wrong_turn_and_leaves_nothing(pin, message):
    mine = os.sched_getaffinity(0)
    with pytest.raises(CheckFailed, match=message) as info:
        lesson18.check_pinned(pin)
    assert "cpuset_cpus" not in str(info.value)  # where to look, not the keyword
    assert os.sched_getaffinity(0) == mine  # the notebook's affinity, put back
    assert runtime.unwaited() == []


def test_the_check_stops_a_container_left_running():
    kept = []

    def forgotten(practice):
        kept.append(pycontain.spawn(["sleep", "60"], cpuset_cpus=str(CPUS[0])))
        return kept[0]

    with pytest.raises(CheckFailed, match="left the container running"):
        lesson18.check_pinned(forgotten)
    assert not kept[0].running


def test_the_stretch_wants_one_cpu_and_half_of_it():
    def half(argv, **options):
        return pycontain.spawn(argv, namespaces={"pid", "mnt"}, **options)

    assert "the cpuset says where, cpu.max how much" in lesson18.check_half_a_cpu(
        lambda argv: half(argv, cpuset_cpus=str(LAST), cpu_max=0.5))
    with pytest.raises(CheckFailed, match="nothing caps how much"):
        lesson18.check_half_a_cpu(lambda argv: half(argv, cpuset_cpus=str(LAST)))
    # v1: no cpuset directory for it; v2: the cgroup's cpuset is the parent's, several CPUs
    with pytest.raises(CheckFailed, match="has no cgroup, so no cpuset|has limits but no cpuset|"
                       "may use one CPU, not several" if len(CPUS) > 1 else "ran on"):
        lesson18.check_half_a_cpu(lambda argv: half(argv, cpu_max=0.5))
    with pytest.raises(CheckFailed, match="at most 0.5"):
        lesson18.check_half_a_cpu(lambda argv: half(argv, cpuset_cpus=str(LAST), cpu_max=0.8))
    assert runtime.unwaited() == []


def test_a_burner_is_bounded_by_itself():
    result = pycontain.run(workloads.spread_argv(1, 0.3), timeout_s=30)
    assert result.status == 0 and workloads.spread_report(result.stdout)["workers"] == 1
