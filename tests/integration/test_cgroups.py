"""The cgroup managers on the real kernel: create, attach, read, write, freeze, kill, remove."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from pycontain import cgroups
from pycontain.errors import CgroupError
from pycontain.observe import cgroup_tree


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
