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
