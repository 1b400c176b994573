"""cgroups without the kernel: detection from fake mount tables, translations, Limits parsing."""

from __future__ import annotations

import pytest

from pycontain import cgroups
from pycontain.cgroups import controllers
from pycontain.cgroups.limits import Limits
from pycontain.errors import SpecError
from pycontain.runtime import Result
from pycontain.sizes import parse_size

HYBRID_MOUNTS = """\
31 23 0:28 / {root} rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / {root}/memory rw,relatime - cgroup cgroup rw,memory
33 31 0:30 / {root}/pids rw,relatime - cgroup cgroup rw,pids
34 31 0:31 / {root}/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / {root}/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
36 31 0:33 / {root}/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_SELF = "5:name=systemd:/\n4:cpu,cpuacct:/\n3:pids:/\n2:memory:/ops/1234\n0::/\n"


def _fake(tmp_path, mounts, own, controllers_file=""):
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text(controllers_file)
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(mounts.format(root=tmp_path))
    proc = tmp_path / "cgroup"
    proc.write_text(own)
    return cgroups.detect(mountinfo=str(mountinfo), proc_cgroup=str(proc))


def test_detect_hybrid_says_where_each_controller_lives(tmp_path):
    layout = _fake(tmp_path, HYBRID_MOUNTS, HYBRID_SELF, "hugetlb\n")
    assert layout.mode == "hybrid"
    assert layout.version("memory") == 1 and layout.version("hugetlb") == 2
    assert layout.hierarchy("cpuacct").controllers == ("cpu", "cpuacct")
    assert layout.hierarchy("memory").own_dir == f"{tmp_path}/memory/ops/1234"
    assert layout.unified.own_dir == f"{tmp_path}/unified"
    assert "v1" in layout.where()["pids"] and "memory" in repr(layout)


def test_detect_v2(tmp_path):
    mounts = "30 23 0:27 / {root}/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"
    layout = _fake(tmp_path, mounts, "0::/system.slice/jupyter.service\n",
                   "cpuset cpu io memory pids\n")
    assert layout.mode == "v2" and layout.version("memory") == 2
    assert layout.unified.own_dir == f"{tmp_path}/unified/system.slice/jupyter.service"


def test_translations_side_by_side():
    assert controllers.v1_file("memory.current") == "memory.usage_in_bytes"
    assert controllers.v1_file("memory.peak") == "memory.max_usage_in_bytes"
    assert controllers.to_v1({"memory.max": "100", "memory.swap.max": "50"}) == [
        ("memory", "memory.limit_in_bytes", "100"),
        ("memory", "memory.memsw.limit_in_bytes", "150")]  # v1 caps memory + swap
    with pytest.raises(ValueError, match="memory.high"):
        controllers.to_v1({"memory.high": "100"})
    with pytest.raises(ValueError, match="needs a memory.max"):
        controllers.to_v1({"memory.swap.max": "0"})
    files = {"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
             "memory.failcnt": "7\n"}
    assert controllers.keyed_from_v1("memory.events", files.__getitem__) == {
        "max": 7, "oom_kill": 2}


def test_the_freezer_translates_freeze_to_freezer_state_and_says_when_it_is_done():
    from pycontain.cgroups.controllers import freezer

    assert controllers.v1_file("cgroup.freeze") == "freezer.state"
    assert controllers.v1_file("cgroup.kill") is None
    assert "SIGKILL each" in controllers.v2_only("cgroup.kill")
    assert freezer.to_v1({"cgroup.freeze": "1"}) == [("freezer.state", "FROZEN")]
    assert freezer.to_v1({"cgroup.freeze": " 0\n"}) == [("freezer.state", "THAWED")]
    with pytest.raises(ValueError, match="1 \\(freeze\\) or 0"):
        freezer.to_v1({"cgroup.freeze": "FROZEN"})
    with pytest.raises(ValueError, match="no cgroup v1 equivalent"):
        freezer.to_v1({"cgroup.kill": "1"})
    # asked to freeze (1) while FREEZING, done only at FROZEN; v2 says so in cgroup.events
    reads = {s: freezer.read_v1("cgroup.freeze", {"freezer.state": s + "\n"}.get)
             for s in ("THAWED", "FREEZING", "FROZEN")}
    assert reads == {"THAWED": "0", "FREEZING": "1", "FROZEN": "1"}
    assert [freezer.frozen(s, 1) for s in ("THAWED\n", "FREEZING\n", "FROZEN\n")] == [
        False, False, True]
    assert freezer.frozen("populated 1\nfrozen 1\n", 2)
    assert not freezer.frozen("populated 1\nfrozen 0\n", 2)
    assert freezer.DONE_FILE == {2: "cgroup.events", 1: "freezer.state"}


@pytest.mark.parametrize("text,size", [("64M", 64 << 20), ("1.5G", 3 << 29), ("512k", 512 << 10),
                                       ("64MiB", 64 << 20), ("4096", 4096), (4096, 4096),
                                       ("max", "max")])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("field,value", [
    ("memory_max", "10XB"), ("memory_max", "-5"), ("memory_max", "0"), ("memory_max", "0.5"),
    ("memory_max", "1.3K"), ("memory_max", -5), ("memory_max", True), ("memory_max", "nan"),
    ("memory_swap_max", "-1"), ("pids_max", -1), ("pids_max", 0), ("pids_max", 2.5),
    ("pids_max", "2.5"), ("pids_max", "many")])
def test_bad_limits_name_the_parameter(field, value):
    with pytest.raises(SpecError) as caught:
        Limits(**{field: value})
    assert caught.value.parameter == field and repr(value) in str(caught.value)


@pytest.mark.parametrize("field", ["memory_max", "memory_high"])
@pytest.mark.parametrize("value", ["64", "5M", 4096, "6291455"])
def test_memory_below_6_mib_is_refused_with_the_reason(field, value):
    with pytest.raises(SpecError) as caught:
        Limits(**{field: value})
    assert caught.value.parameter == field and "at least 6M" in str(caught.value)
    assert "OOM-killed" in str(caught.value) or field == "memory_high"


def test_6_mib_is_enough_and_swap_has_no_floor():
    assert Limits(memory_max="6M", memory_high="6M").settings() == {
        "memory.max": str(6 << 20), "memory.high": str(6 << 20)}
    assert Limits(memory_swap_max="1K").settings() == {"memory.swap.max": "1024"}


def test_memory_high_above_memory_max_is_refused():
    with pytest.raises(SpecError, match="at most memory_max"):
        Limits(memory_max="32M", memory_high="64M")
    assert Limits(memory_swap_max=0).settings() == {"memory.swap.max": "0"}  # 0 = no swap


def test_v2_only_knob_refused_on_v1(tmp_path):
    layout = _fake(tmp_path, HYBRID_MOUNTS, HYBRID_SELF, "hugetlb\n")
    with pytest.raises(SpecError) as caught:
        Limits(memory_high="32M").check_host(layout)
    assert caught.value.parameter == "memory_high"
    assert "memory.high" in str(caught.value) and "soft_limit_in_bytes" in str(caught.value)


def test_result_says_why():
    oom = Result(("x",), 1, None, 9, oom_kills=1, limits={"memory.max": str(32 << 20)})
    assert oom.reason == "killed by the OOM killer (memory.max = 32 MiB)" and oom.status == 137
    assert Result(("x",), 1, 3, None).reason == "exited 3"
    assert "after the OOM killer killed 1" in Result(("x",), 1, 1, None, oom_kills=1).reason


def test_only_pycontain_names():
    with pytest.raises(ValueError):
        cgroups.create(name="system.slice")


# --- the view a container gets at /sys/fs/cgroup (lesson 20) ----------------------------------

def test_the_view_names_each_hierarchy_as_the_host_mounts_it():
    from pycontain.cgroups.base import Cgroup
    from pycontain.cgroups.layout import Hierarchy, Layout

    hybrid = Layout("hybrid", (
        Hierarchy(1, "/sys/fs/cgroup/memory", "/", ("memory",), "/op"),
        Hierarchy(1, "/sys/fs/cgroup/cpu,cpuacct", "/", ("cpu", "cpuacct"), "/"),
        Hierarchy(2, "/sys/fs/cgroup/unified", "/", (), "/")))
    box = Cgroup("pycontain-ctr-1", {
        "memory": "/sys/fs/cgroup/memory/op/pycontain-ctr-1",
        "cpu": "/sys/fs/cgroup/cpu,cpuacct/pycontain-ctr-1",
        "unified": "/sys/fs/cgroup/unified/pycontain-ctr-1"}, hybrid)
    assert box.view() == {"memory": "/sys/fs/cgroup/memory/op/pycontain-ctr-1",
                          "cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/pycontain-ctr-1",
                          "unified": "/sys/fs/cgroup/unified/pycontain-ctr-1"}
    v2 = Layout("v2", (Hierarchy(2, "/sys/fs/cgroup", "/", ("memory", "pids"), "/a"),))
    assert Cgroup("c", {"": "/sys/fs/cgroup/a/c"}, v2).view() == {"": "/sys/fs/cgroup/a/c"}
