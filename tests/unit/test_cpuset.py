"""The cpuset controller without the kernel: CPU lists, their errors, the parent's set, v1 names,
and where the CPUs a process ran on are read from (lesson 18)."""

from __future__ import annotations

import pytest

from pycontain import cgroups, procfs, workloads
from pycontain.cgroups import controllers
from pycontain.cgroups.controllers import cpuset
from pycontain.cgroups.limits import Limits
from pycontain.cli import FLAG_OF
from pycontain.errors import SpecError


@pytest.mark.parametrize(("given", "kept"), [
    ("0", "0"), (1, "1"), ("0-1", "0-1"), ("1,0", "0-1"), ("0-2,5,7-8", "0-2,5,7-8"),
    (" 3 ", "3"), ("2,2-3", "2-3")])
def test_a_cpu_list_is_kept_in_its_shortest_spelling(given, kept):
    assert Limits(cpuset_cpus=given).cpuset_cpus == kept
    assert Limits(cpuset_cpus=given).settings() == {"cpuset.cpus": kept}


@pytest.mark.parametrize(("given", "said"), [
    ("0-", "'0-' is not a number or a range"), ("3-1", "runs backwards: write 1-3"),
    ("a", "'a' is not a number"), ("", "name at least one"), ("1,,2", "'' is not a number"),
    ("-1", "'-1' is not a number"), ("0-9000", "above the kernel's limit"),
    (True, "name at least one"), (1.0, "name at least one")])
def test_a_malformed_list_is_refused_naming_the_parameter_and_the_form(given, said):
    with pytest.raises(SpecError) as caught:
        Limits(cpuset_cpus=given)
    assert caught.value.parameter == "cpuset_cpus"
    assert "0, 0-3 or 0,2-3" in caught.value.accepted and said in caught.value.hint


def test_the_command_line_names_the_flag():
    with pytest.raises(SpecError) as caught:
        Limits(cpuset_mems="x")
    assert caught.value.worded(FLAG_OF).startswith("--cpuset-mems must be a list of memory nodes")


def test_a_container_with_a_cpuset_gets_the_cpuset_controller():
    assert Limits(cpuset_cpus="0").controllers() == ("memory", "pids", "cpuset")
    assert "cpuset" not in Limits(pids_max=5).controllers()


def test_v1_names_and_the_files_v1_copies_from_the_parent():
    assert controllers.v1_file("cpuset.cpus.effective") == "cpuset.effective_cpus"
    assert controllers.v1_file("cpuset.mems.effective") == "cpuset.effective_mems"
    assert controllers.to_v1({"cpuset.cpus": "1", "cpuset.mems": "0"}) == [
        ("cpuset", "cpuset.cpus", "1"), ("cpuset", "cpuset.mems", "0")]
    assert cpuset.V1_INHERIT == ("cpuset.cpus", "cpuset.mems")


@pytest.mark.parametrize(("values", "said"), [
    ({"cpuset_cpus": "2"}, "2 is not among them: a cgroup gets a subset"),
    ({"cpuset_cpus": "0-3"}, "2-3 are not among them"),
    ({"cpuset_mems": "1"}, "effective memory nodes, online ones only")])
def test_cpus_the_parent_cannot_hand_out_are_refused(values, said):
    parent = {"cpuset.cpus.effective": "0-1", "cpuset.mems.effective": "0"}
    with pytest.raises(SpecError) as caught:
        cpuset.check_parent(values, parent.get)
    assert caught.value.parameter in values and said in caught.value.hint


def test_a_parent_without_cpuset_files_leaves_the_refusal_to_the_manager():
    cpuset.check_parent({"cpuset_cpus": "7"}, lambda knob: "")


def _layout(tmp_path, effective):
    """A hybrid machine whose v1 cpuset hierarchy's root offers `effective` CPUs."""
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("")
    (tmp_path / "cpuset").mkdir()
    (tmp_path / "cpuset" / "cpuset.effective_cpus").write_text(effective + "\n")
    (tmp_path / "cpuset" / "cpuset.effective_mems").write_text("0\n")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(f"32 31 0:29 / {tmp_path}/cpuset rw - cgroup cgroup rw,cpuset\n"
                         f"36 31 0:33 / {tmp_path}/unified rw - cgroup2 cgroup2 rw\n")
    own = tmp_path / "cgroup"
    own.write_text("3:cpuset:/\n0::/\n")
    return cgroups.detect(mountinfo=str(mountinfo), proc_cgroup=str(own))


def test_limits_read_the_parents_effective_set_through_its_v1_name(tmp_path, monkeypatch):
    monkeypatch.delenv("PYCONTAIN_CGROUP_PARENT", raising=False)
    layout = _layout(tmp_path, "0-1")
    Limits(cpuset_cpus="1").check_host(layout)
    with pytest.raises(SpecError, match="cpuset.cpus.effective, 0-1"):
        Limits(cpuset_cpus="0-2").check_host(layout)


def test_where_a_process_ran_and_how_busy_each_cpu_was():
    stat = "7 (a (b) c) R " + " ".join(str(n) for n in range(4, 39)) + " 3 0"
    assert procfs.processor(stat) == 3
    with open("/proc/self/stat") as f:
        assert procfs.processor(f.read()) in procfs.cpu_times()
    shares = procfs.busy_shares({0: (0, 100)}, {0: (25, 200)})
    assert shares == {0: 0.25}


def test_the_burner_is_bounded_and_its_report_is_read_back():
    with pytest.raises(ValueError, match="workers"):
        workloads.spread(0, 1)
    with pytest.raises(ValueError, match="seconds"):
        workloads.spread(1, workloads.TIME_CEILING_S + 1)
    assert workloads.spread_report("nothing") is None
    assert workloads.spread_argv(2, 1.5)[-4:] == ["--workers", "2", "--seconds", "1.5"]
