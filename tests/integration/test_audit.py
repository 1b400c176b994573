"""Lesson 23 on the real kernel: the audit's lines, and every attack both ways (it works
against a weakened container, it fails against pycontain's defaults), leaving nothing behind."""

from __future__ import annotations

import json
import os
import sys

import pytest

from pycontain import lab
from pycontain.audit import (
    attacks,
    core_pattern,
    escape,
    host_disk,
    leaky_vessels,
    probe,
    self_exe,
    shocker,
)
from pycontain.audit.outcome import DEFAULTS, PRIVILEGED
from pycontain.cgroups import detect
from pycontain.errors import SpecError
from pycontain.fs import rootfs
from pycontain.security import capabilities

pytestmark = pytest.mark.skipif(rootfs.find_busybox() is None,
                                reason="the attacks need the busybox rootfs (busybox-static)")

#: everything the Try-it turns on beyond the defaults: its own user and cgroup namespaces, limits
GREEN = {**DEFAULTS, "namespaces": "cgroup,ipc,mnt,net,pid,uts,user", "memory_max": "64M",
         "pids_max": 20, "cgroup_view": True}


@pytest.fixture(autouse=True)
def nothing_left():
    before = set(lab.leftovers())
    yield
    assert set(lab.leftovers()) - before == set()


@pytest.fixture
def marker(scratch):
    return escape.place_marker(scratch.tempdir("marker"))


def test_the_probe_of_a_container_without_isolation_is_red_where_it_shares(embedded_rootfs):
    report = probe.audit(namespaces=(), **PRIVILEGED)
    red = {f.name for f in report.red}
    assert {"ns mnt", "ns net", "ns pid", "ns user", "capabilities", "seccomp", "no_new_privs",
            "mknod", "mounts", "network", "ipc"} <= red
    assert "made" in report["mknod"].evidence


def test_the_defaults_leave_only_user_cgroup_and_limits_red(embedded_rootfs):
    report = probe.audit(rootfs=embedded_rootfs, overlay=True, **DEFAULTS)
    assert {f.name for f in report.red} == {"ns user", "ns cgroup", "cgroup limits"}, report
    assert report["read-only paths"].ok and report["masked paths"].ok


def test_every_line_green_with_user_namespace_and_limits(embedded_rootfs):
    report = probe.audit(rootfs=embedded_rootfs, overlay=True, **GREEN)
    assert report.green, report


def test_systempaths_unconfined_lets_core_pattern_open_for_writing(embedded_rootfs):
    weak = probe.audit(rootfs=embedded_rootfs, **{**DEFAULTS, "readonly_paths": ()})
    assert "core_pattern (opened for writing)" in weak["read-only paths"].evidence
    strong = probe.audit(rootfs=embedded_rootfs, **DEFAULTS)
    assert strong["read-only paths"].ok


def test_pycontain_audit_exit_status_and_json(cli, embedded_rootfs):
    red = cli("audit", "--rootfs", embedded_rootfs)
    assert red.returncode == 1 and "RED  ns user" in red.stdout, red.stderr
    green = cli("audit", "--json", "--rootfs", embedded_rootfs, "--memory", "64M",
                "--pids-limit", "20", "--user-namespace",
                "--namespaces", "cgroup,ipc,mnt,net,pid,uts")
    lines = [json.loads(line) for line in green.stdout.splitlines()]
    assert green.returncode == 0 and all(line["ok"] is not False for line in lines), green.stdout


@pytest.mark.parametrize("words, flag", [(["--memory", "lots"], "--memory"),
                                         (["-d"], "--detach"), (["--", "ls"], "command")])
def test_pycontain_audit_bad_input_names_the_flag(cli, words, flag):
    done = cli("audit", *words)
    assert done.returncode == 125 and flag in done.stderr, done.stderr


def test_leaky_vessels_both_ways(marker):
    assert leaky_vessels.attempt(marker, weakened=True, **DEFAULTS).escaped
    checked = leaky_vessels.attempt(marker, weakened=True, checked=True, **DEFAULTS)
    assert not checked.escaped and "(unreachable)" in checked.evidence
    default = leaky_vessels.attempt(marker, weakened=False, **DEFAULTS)
    assert not default.escaped and "ENOENT" in default.evidence


def test_host_disk_both_ways(scratch):
    assert host_disk.attempt(scratch.tempdir("disk"), weakened=True, **PRIVILEGED).escaped
    default = host_disk.attempt(scratch.tempdir("disk"), weakened=False, **DEFAULTS)
    assert not default.escaped and "mknod" in default.evidence


def test_the_chroot_escape_against_the_assembled_runtime(marker, embedded_rootfs):
    assert escape.attempt(marker, embedded_rootfs, root_switch="chroot", **DEFAULTS
                          ).escaped(marker)
    assert not escape.attempt(marker, embedded_rootfs, **DEFAULTS).escaped(marker)


#: `--cap-add DAC_READ_SEARCH`: the capability the shocker needs, back
READ_SEARCH = DEFAULTS["capabilities"] | {"CAP_DAC_READ_SEARCH"}


@pytest.mark.parametrize("kept, seccomp, escapes", [
    (READ_SEARCH, None, True),  # the weakened container
    (READ_SEARCH, "default", True),  # the profile gives the call back with the capability
    (capabilities.DEFAULT, None, False),  # the capability alone stops it
    (capabilities.DEFAULT, "default", False),  # pycontain's defaults
])
def test_shocker_reads_a_host_file_by_handle_only_with_the_capability(scratch, kept, seccomp,
                                                                      escapes):
    outcome = shocker.attempt(scratch.tempdir("shocker"), weakened=kept != capabilities.DEFAULT,
                              **{**DEFAULTS, "capabilities": kept, "seccomp": seccomp})
    assert outcome.escaped is escapes, outcome
    if not escapes:
        assert "open_by_handle_at: EPERM" in outcome.evidence, outcome


def test_core_pattern_opens_for_writing_only_without_read_only_proc_sys():
    with open(core_pattern.PATH) as f:
        before = f.read()
    weak = core_pattern.attempt(weakened=True, **{**DEFAULTS, "readonly_paths": ()})
    assert weak.escaped and "upper" in weak.evidence, weak
    default = core_pattern.attempt(weakened=False, **DEFAULTS)
    assert not default.escaped and "Read-only file system" in default.evidence, default
    with open(core_pattern.PATH) as f:
        assert f.read() == before  # opened, never written


def test_every_attack_of_the_lesson_escapes_the_weak_container_only(scratch):
    where = scratch.tempdir("attacks")
    seen = {name: (attacks.run(name, where, weakened=True).escaped,
                   attacks.run(name, where, weakened=False).escaped) for name in attacks.PLAY}
    assert seen == dict.fromkeys(attacks.PLAY, (True, False)), seen
    with pytest.raises(SpecError, match="`attack` must be one of"):
        attacks.run("rowhammer", where, weakened=True)


def test_the_try_it_check_names_red_lines_and_lessons_not_options(embedded_rootfs):
    from pycontain.checks import CheckFailed, lesson23

    weak = {"rootfs": embedded_rootfs, "overlay": True, "namespaces": "mnt,pid,uts",
            "capabilities": None, "no_new_privs": False, "seccomp": None, "masked_paths": (),
            "readonly_paths": ()}
    with pytest.raises(CheckFailed) as failed:
        lesson23.check_every_line_green(lambda: weak)
    message = str(failed.value)
    assert "- ns net:" in message and "lesson 08" in message and "- seccomp:" in message
    assert not any(option in message for option in ("user_namespace", "namespaces=", "DEFAULTS",
                                                    "readonly_paths", "memory_max"))
    assert "every line" in lesson23.check_every_line_green(lambda: {**weak, **GREEN})


HOST_PIDS = self_exe.HOST_PIDS


@pytest.mark.parametrize("options, escapes, evidence", [
    ({**PRIVILEGED, **HOST_PIDS}, True, "Text file busy"),  # held, then written once free
    ({**DEFAULTS, **HOST_PIDS}, False, "Permission denied"),  # ptrace's check: capabilities
    ({**PRIVILEGED, "volumes": HOST_PIDS["volumes"]}, False, "Text file busy"),  # PID ns
    (DEFAULTS, False, "-> /bin/busybox"),  # init exec'd: /proc/1/exe is the container's own
    ({**DEFAULTS, "init": True}, False, "Text file busy"),  # PID 1 runs it as long as any
])
def test_proc_self_exe_overwrites_only_a_runtime_it_outlives(scratch, options, escapes,
                                                             evidence):
    where = scratch.tempdir("self-exe")
    outcome = self_exe.attempt(where, weakened=escapes, **options)
    assert outcome.escaped is escapes and evidence in outcome.evidence, outcome
    assert os.path.realpath(sys.executable) not in outcome.evidence  # only ever the copy


def _weak(embedded_rootfs):
    return {"rootfs": embedded_rootfs, "overlay": True, "namespaces": "mnt,pid,uts",
            **PRIVILEGED}


@pytest.mark.parametrize("change, line, says", [
    ({"memory_max": "64M", "pids_max": 20}, "- cgroup limits: no cgroup files in sight",
     "has its limits, but cannot see them"),
    ({"cgroup_view": True}, "- cgroup limits: no cgroup files in sight",
     "no limits at all"),
    ({"memory_max": "64M", "cgroup_view": True}, "max", "nothing caps the number of its "
                                                       "processes"),
    ({"memory_max": "max", "pids_max": 20, "cgroup_view": True}, "- cgroup limits:",
     "memory.max is 'max', which is no limit"),
    ({**GREEN, "uid_map": [(0, 0, 65536)]}, "- ns user:", "root inside is root outside again"),
])
def test_the_try_it_check_names_the_wrong_turn(embedded_rootfs, change, line, says):
    from pycontain.checks import CheckFailed, lesson23

    options = {**_weak(embedded_rootfs), **DEFAULTS,
               "namespaces": GREEN["namespaces"], **change}
    with pytest.raises(CheckFailed) as failed:
        lesson23.check_every_line_green(lambda: options)
    message = str(failed.value)
    assert "1 of 21 lines are still red" in message and line in message and says in message


MEMORY_V2 = detect().version("memory") == 2


@pytest.mark.skipif(not MEMORY_V2, reason="memory is on cgroup v1 here: memory.high is refused")
def test_memory_high_on_v2_is_named_a_throttle_not_a_cap(embedded_rootfs):
    from pycontain.checks import CheckFailed, lesson23

    with pytest.raises(CheckFailed, match="memory.high only throttles"):
        lesson23.check_every_line_green(lambda: {**_weak(embedded_rootfs), **GREEN,
                                                 "memory_max": None, "memory_high": "64M"})


@pytest.mark.skipif(MEMORY_V2, reason="on v2 memory.high exists (the test above)")
def test_memory_high_on_v1_is_refused_before_the_audit(embedded_rootfs):
    from pycontain.checks import CheckFailed, lesson23

    with pytest.raises(CheckFailed, match="before any container is made: `memory_high` must be "
                                          "used only on cgroup v2"):
        lesson23.check_every_line_green(lambda: {**_weak(embedded_rootfs), **GREEN,
                                                 "memory_max": None, "memory_high": "64M"})


def test_the_try_it_check_stops_what_harden_started_when_it_raises(embedded_rootfs):
    import pycontain
    from pycontain import runtime
    from pycontain.checks import CheckFailed, lesson23

    started = []

    def harden():
        started.append(pycontain.spawn(["sleep", "60"], rootfs=embedded_rootfs, overlay=True,
                                       namespaces={"mnt", "pid"}, pids_max=10))
        raise RuntimeError("half-way")

    with pytest.raises(CheckFailed, match="harden\\(\\) raised RuntimeError: half-way.*stopped "
                                          "the 1 container"):
        lesson23.check_every_line_green(harden)
    assert not started[0].running and started[0].cgroup.removed
    assert runtime.unwaited() == []


def test_the_try_it_check_stops_a_container_harden_left_running(embedded_rootfs):
    import pycontain
    from pycontain import runtime
    from pycontain.checks import lesson23

    started = []

    def harden():  # the right options, and a container it had no need to start
        started.append(pycontain.spawn(["sleep", "60"], rootfs=embedded_rootfs,
                                       namespaces={"mnt", "pid"}))
        return {**_weak(embedded_rootfs), **GREEN}

    assert "every line" in lesson23.check_every_line_green(harden)
    assert not started[0].running and runtime.unwaited() == []


#: the stretch's answer: --privileged as it is, in a user namespace (and its own net)
CONTAINED = {**PRIVILEGED, "namespaces": "ipc,mnt,net,pid,uts,user"}


def test_the_stretch_passes_with_privileged_in_a_user_namespace():
    from pycontain.checks import lesson23

    with open(core_pattern.PATH) as f:
        before = f.read()
    passed = lesson23.check_privileged_yet_contained(lambda: CONTAINED)
    assert "Root inside is uid 100000 outside" in passed and "Operation not permitted" in passed
    with open(core_pattern.PATH) as f:
        assert f.read() == before


def test_the_stretch_shows_each_attack_privileged_wins():
    from pycontain.checks import CheckFailed, lesson23

    with open(core_pattern.PATH) as f:
        before = f.read()
    with pytest.raises(CheckFailed) as failed:
        lesson23.check_privileged_yet_contained(lambda: {})  # PRIVILEGED, nothing added
    message = str(failed.value)
    assert "3 of the 3 attacks still reach the host" in message
    assert all(f"- {name}:" in message for name in ("host disk", "core_pattern",
                                                    "leaky vessels")), message
    with open(core_pattern.PATH) as f:
        assert f.read() == before  # opened, never written


def test_the_stretch_tells_a_refusal_from_an_attack_that_did_not_run():
    from pycontain.checks import CheckFailed, lesson23

    # no PID namespace: no fresh /proc inside, so two attacks find no file to try
    with pytest.raises(CheckFailed, match="(?s)not because the kernel refused it.*PID namespace"):
        lesson23.check_privileged_yet_contained(lambda: {"namespaces": "mnt,net,user"})


def test_the_stretch_stops_what_contain_started_when_it_raises(embedded_rootfs):
    import pycontain
    from pycontain import runtime
    from pycontain.checks import CheckFailed, lesson23

    started = []

    def contain():
        started.append(pycontain.spawn(["sleep", "60"], rootfs=embedded_rootfs,
                                       namespaces={"mnt", "pid"}, pids_max=10))
        raise RuntimeError("half-way")

    with pytest.raises(CheckFailed, match="contain\\(\\) raised RuntimeError.*stopped the 1"):
        lesson23.check_privileged_yet_contained(contain)
    assert not started[0].running and started[0].cgroup.removed
    assert runtime.unwaited() == []
