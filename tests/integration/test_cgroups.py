"""The cgroup managers on the real kernel: create, attach, read, write, freeze, kill, remove."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

import pycontain
from pycontain import cgroups
from pycontain.checks import CheckFailed, lesson12
from pycontain.errors import CgroupError
from pycontain.namespaces import pid as pid_namespace
from pycontain.observe import cgroup_tree, probe


def own_cgroups() -> set[str]:
    with open("/proc/self/cgroup") as f:
        return {line.split(":", 2)[2].strip() for line in f}


@pytest.fixture
def cgroup():
    cg = cgroups.create(label="test")
    yield cg
    cg.remove()


@pytest.fixture
def sleeper():
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def test_detect_finds_memory_and_pids():
    layout = cgroups.detect()
    assert layout.mode in ("v1", "v2", "hybrid")
    assert layout.version("memory") in (1, 2) and layout.version("pids") in (1, 2)


def test_created_beneath_our_own_cgroup_and_named_pycontain(cgroup):
    layout = cgroups.detect()
    for path in cgroup.dirs.values():
        assert os.path.basename(path).startswith("pycontain-")
        assert any(os.path.dirname(path) == cgroups.home(h) for h in layout.hierarchies)


def test_values_read_back_as_written(cgroup):
    cgroup.set({"memory.max": str(48 << 20), "pids.max": "17"})
    assert cgroup.read("memory.max") == str(48 << 20) and cgroup.read("pids.max") == "17"
    cgroup.write("memory.max", "max")
    assert cgroup.read("memory.max") == "max"
    assert cgroup.read_keyed("memory.events")["oom_kill"] == 0
    assert cgroup.read_keyed("pids.events") == {"max": 0} or "max" in cgroup.read_keyed(
        "pids.events")


def test_a_misspelt_knob_fails_and_creates_nothing(cgroup):
    path = os.path.join(cgroup.file("pids.max").rsplit("/", 1)[0], "pids.maxx")
    with pytest.raises(CgroupError) as caught:
        cgroups.write_file(path, "5")
    assert caught.value.errno in (errno.ENOENT, errno.EPERM, errno.EACCES)
    assert "failed to write '5' to pids.maxx" in str(caught.value)
    assert not os.path.exists(path)


def test_a_bad_value_reads_as_the_kernel_said(cgroup):
    with pytest.raises(CgroupError) as caught:
        cgroup.write("pids.max", "-5")
    assert caught.value.errno == errno.EINVAL
    assert str(caught.value).startswith("failed to write '-5' to pids.max: EINVAL")
    assert "hint:" in str(caught.value)


def test_rmdir_of_a_populated_cgroup_is_ebusy_then_remove_kills(cgroup, sleeper):
    cgroup.attach(sleeper.pid)
    assert sleeper.pid in cgroup.procs() and cgroup.populated()
    with pytest.raises(CgroupError) as caught:
        cgroups.remove_dir(next(iter(cgroup.dirs.values())))
    assert caught.value.errno == errno.EBUSY
    cgroup.remove()
    assert sleeper.wait(5) == -9
    assert not any(os.path.exists(d) for d in cgroup.dirs.values())
    cgroup.remove()  # idempotent


def test_freeze_and_thaw(cgroup, sleeper):
    cgroup.attach(sleeper.pid)
    cgroup.freeze()
    assert cgroup.frozen()
    cgroup.thaw()
    assert not cgroup.frozen()


def test_remove_depth_first(cgroup):
    for path in cgroup.dirs.values():
        os.mkdir(os.path.join(path, "pycontain-child"))
    cgroup.remove()
    assert not any(os.path.exists(d) for d in cgroup.dirs.values())


def test_this_process_never_joins(cgroup, sleeper):
    before = own_cgroups()
    cgroup.attach(sleeper.pid)
    assert own_cgroups() == before and os.getpid() not in cgroup.procs()
    assert not any(cgroup.name in path for path in own_cgroups())


def test_tree_shows_our_cgroup(cgroup):
    assert cgroup.name in cgroup_tree.tree()


def test_cleanup_sweep_kills_then_removes_deepest_first(cgroup, sleeper):
    """What `pycontain cleanup` does to a leftover: kill, wait until empty, rmdir."""
    cgroup.attach(sleeper.pid)
    for top in cgroup.dirs.values():
        os.mkdir(os.path.join(top, "pycontain-inner"))
    for top in cgroup.dirs.values():
        for path in cgroups.walk_up(top):
            cgroups.base.remove_cgroup(path)
    assert sleeper.wait(5) == -9
    assert not any(os.path.exists(d) for d in cgroup.dirs.values())


def test_unremoved_lists_what_this_process_created_until_removed():
    cg = cgroups.create(["pids"], label="test")
    try:
        assert cg in cgroups.unremoved()
    finally:
        cg.remove()
    assert cg not in cgroups.unremoved()


# --- lesson 12's checks ------------------------------------------------------------------------


#: asks for 30 processes and keeps those it got, for a minute (a failed fork does not end it)
ASKS = ["sh", "-c", "for i in $(seq 30); do (sleep 60 &) 2>/dev/null; done; sleep 60"]


@pytest.fixture
def nothing_left():
    """No container, no cgroup of this process's, and this process where it was, after a check."""
    from pycontain import runtime

    boxes, made, where = set(runtime.unwaited()), cgroups.unremoved(), own_cgroups()
    yield
    assert set(runtime.unwaited()) <= boxes
    assert [cg for cg in cgroups.unremoved() if cg not in made] == []
    assert own_cgroups() == where


def build(practice, *, limit_on="parent", child=True, into_child=True, defer=True,
          argv=("sleep", "300"), pid=None, early=False):
    """The Try-it's answer, and each wrong turn the check knows, by its options."""
    cg = cgroups.create(["pids"], label="try")
    if defer:
        practice.defer(cg.remove, "remove the cgroup")
    if limit_on == "parent":
        cg.write("pids.max", 10)
    inners = [os.path.join(top, "inner") for top in cg.dirs.values()]
    if child:
        for inner in inners:
            cgroups.make_dir(inner)
    if limit_on == "child":
        cgroups.write_file(os.path.join(os.path.dirname(cg.file("pids.max")), "inner",
                                        "pids.max"), 10)
    where = inners if child and into_child else list(cg.dirs.values())

    def place(container):
        for directory in where:
            cgroups.write_file(os.path.join(directory, "cgroup.procs"), pid or container)

    box = pycontain.spawn(list(argv), on_created=None if early else place)
    if defer:
        practice.defer(lambda: probe.stop(box), "stop the container")
    if early:  # moved once the command has forked: its first children stay where they were
        pid_namespace.wait_for_processes(box.pid, 3, timeout_s=60)  # born, on any machine
        place(box.pid)
    return cg


def test_the_check_passes_a_parent_with_its_child(nothing_left):
    passed = lesson12.check_child_cgroup(build)
    assert "its child 'inner' held the container" in passed
    assert "def create" in passed._repr_markdown_()


@pytest.mark.parametrize("options,teaching", [
    ({"child": False}, "there is no child cgroup 'inner'"),
    ({"into_child": False, "child": True}, "the parent's cgroup.procs holds"),
    ({"limit_on": "child"}, "belongs on the parent"),
    ({"defer": False}, "practice.close() left"),
    ({"pid": os.getpid()}, "the check moved it back"),
])
def test_the_check_names_the_wrong_turn(nothing_left, options, teaching):
    with pytest.raises(CheckFailed) as info:
        lesson12.check_child_cgroup(lambda practice: build(practice, **options))
    assert teaching in str(info.value)
    assert "write_file(" not in str(info.value)  # where to look, not the code to write


def test_the_check_refuses_the_containers_own_cgroup(nothing_left):
    def spawned(practice):
        box = pycontain.spawn(["sleep", "300"], pids_max=10)
        practice.defer(lambda: probe.stop(box), "stop the container")
        return box.cgroup

    with pytest.raises(CheckFailed, match="a container's own cgroup"):
        lesson12.check_child_cgroup(spawned)


def test_a_learner_exception_leaves_no_container_and_no_cgroup(nothing_left):
    def raises(practice):
        cgroups.create(["pids"], label="try")  # not registered with practice: the check's job
        pycontain.spawn(["sleep", "300"])
        raise RuntimeError("oops")

    with pytest.raises(CheckFailed, match="stopped the 1 container.*removed the cgroup"):
        lesson12.check_child_cgroup(raises)


def test_the_stretch_passes_a_parent_limit_over_a_child_without_one(nothing_left):
    assert "refused" in lesson12.check_parent_limit_holds(lambda p: build(p, argv=ASKS))


@pytest.mark.parametrize("options,teaching", [
    ({"early": True}, "born before you moved the command"),  # moved after it had forked
    ({}, "does the command in the child ask for more than 10"),  # sleep 300 asks for one
])
def test_the_stretch_names_the_wrong_turn(nothing_left, options, teaching, monkeypatch):
    monkeypatch.setattr(lesson12, "SETTLE_S", 1.0)
    argv = ASKS if options else ("sleep", "300")
    with pytest.raises(CheckFailed, match=teaching):
        lesson12.check_parent_limit_holds(lambda p: build(p, argv=argv, **options))
