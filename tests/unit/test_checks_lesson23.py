"""Lesson 23's checks name the wrong turns they can see in the learner's options before any
container starts (issue 18); what only an audit or an attack shows (limits unseen, root mapped
to root, the attacks against --privileged) is in tests/integration/test_audit.py."""

from __future__ import annotations

import os
import re

import pytest

from pycontain import runtime
from pycontain.audit import probe
from pycontain.audit.outcome import DEFAULTS, PRIVILEGED
from pycontain.checks import CheckFailed, lesson23
from pycontain.fs import rootfs

pytestmark = [pytest.mark.skipif(rootfs.find_busybox() is None,
                                 reason="the checks' options name the busybox rootfs"),
              pytest.mark.skipif(os.geteuid() != 0, reason="the checks build the container's "
                                 "Spec as the notebook does, as root (limits, id maps)")]


def weak() -> dict[str, object]:
    return {"rootfs": str(rootfs.ensure()), "overlay": True, "namespaces": "mnt,pid,uts",
            **PRIVILEGED}


@pytest.mark.parametrize("returned, says", [
    (None, "returned None: it must return the options"),
    (["--user-namespace", "--memory", "64M"], "returned command-line flags"),
    (probe.Report([]), "returned the audit's Report"),
    ("cgroup,ipc,mnt", "return a dict of pycontain.run options"),
    ({"argv": ["sh"]}, "names a command"),
])
def test_a_return_value_that_is_not_options_is_named(returned, says):
    with pytest.raises(CheckFailed, match=re.escape(says)):
        lesson23.check_every_line_green(lambda: returned)
    assert runtime.unwaited() == []


def test_an_option_run_does_not_have_is_named_with_its_close_spellings():
    with pytest.raises(CheckFailed) as info:
        lesson23.check_every_line_green(lambda: {**weak(), "memory": "64M", "pids_limit": 20})
    told = str(info.value)
    assert "'memory' (close: memory_max" in told and "'pids_limit' (close: pids_max" in told
    assert "help(pycontain.Spec)" in told and runtime.unwaited() == []


def test_a_refused_option_is_named_before_any_container_starts():
    # a user namespace on a rootfs wants its own network namespace too (lesson 09)
    with pytest.raises(CheckFailed, match="before any container is made: `namespaces` must "
                                          "be a set with 'net'"):
        lesson23.check_every_line_green(lambda: {**weak(), **DEFAULTS,
                                                 "namespaces": "cgroup,ipc,mnt,pid,uts,user"})
    assert runtime.unwaited() == []


def test_another_rootfs_is_refused():
    with pytest.raises(CheckFailed, match="keep WEAK's `rootfs`"):
        lesson23.check_every_line_green(lambda: {**weak(), "rootfs": "/"})


@pytest.mark.parametrize("limits, view, says", [
    ({}, True, "no limits at all, so pycontain made it no cgroup"),
    ({"memory_max": 64 << 20, "pids_max": 20}, False, "has its limits, but cannot see them"),
    ({"memory_max": 64 << 20}, True, "nothing caps the number of its processes (pids.max"),
    ({"pids_max": 20}, True, "nothing caps its memory (memory.max"),
    ({"memory_max": "max", "pids_max": 20}, True, "memory.max is 'max', which is no limit"),
    ({"memory_max": 64 << 20, "pids_max": "max"}, True, "pids.max is 'max'"),
    # cgroup v2 only (v1 refuses memory_high before: tests/integration/test_audit.py)
    ({"memory_high": 64 << 20, "pids_max": 20}, True, "memory.high only throttles"),
])
def test_the_cgroup_limits_line_says_which_limit_is_wrong(limits, view, says):
    told = lesson23.limits_why(limits, view)
    assert says in told
    assert not any(option in told for option in ("memory_max", "pids_max", "cgroup_view"))


def test_a_user_namespace_mapping_root_to_root_is_explained_by_its_map():
    told = lesson23._why("ns user", "user:[4026532243], but its uid_map makes uid 0 inside "
                                    "uid 0 outside")
    assert "root inside is root outside again" in told and "lesson 09" in told
    assert "the same inode" in lesson23._why("ns user", "user:[4026531837]: the host's")


@pytest.mark.parametrize("options, says", [
    ({"seccomp": "default"}, "`seccomp` is 'default', not None"),
    ({"capabilities": DEFAULTS["capabilities"]}, "puts back a default --privileged takes away"),
    ({"readonly_paths": DEFAULTS["readonly_paths"]}, "`readonly_paths` is"),
    ({"rootfs": "/"}, "leave out rootfs: each attack chooses"),
    ({"namespaces": "mnt,pid,net,user", "user": "1000"}, "runs as uid 1000 inside"),
    ({"namespaces": "mnt,pid,net,user", "uid_map": [(0, 0, 65536)]},
     "its uid_map makes uid 0 inside uid 0 outside"),
    ({"namespaces": "mnt,pid,user"}, "`namespaces` must be a set with 'net'"),
    ({"pids": 20}, "'pids' (close: pids_max"),
])
def test_the_stretch_names_the_wrong_turn_before_any_attack(options, says):
    with pytest.raises(CheckFailed, match=re.escape(says)) as info:
        lesson23.check_privileged_yet_contained(lambda: options)
    assert "user_namespace" not in str(info.value)  # where to look, not the option
    assert runtime.unwaited() == []


def test_the_hints_name_no_option_of_the_answer():
    for check in (lesson23.check_every_line_green, lesson23.check_privileged_yet_contained):
        for text in check.hints.texts:
            assert not any(option in text for option in
                           ("memory_max", "pids_max", "cgroup_view", "user_namespace=",
                            "namespaces=", '"user"', "'user'")), text
