"""Lesson 21 on the real kernel: the system call filter of a `pycontain run` container.

By default a container runs under pycontain's profile (`Seccomp: 2` in /proc/self/status):
`unshare` fails with EPERM even where no capability is needed for it (a user namespace), and
works again with the filter off; a profile file in Docker's format (podman's own, or one
written here) is what the kernel then enforces, with each action as the profile says; a bad
profile is refused before anything is made. The lesson's probe: one call under LOG, ERRNO and
KILL_PROCESS, as the process and the kernel's log see it; the exercise's check passes on a
filter that refuses unshare only, and names each mistake otherwise.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

import pycontain
from pycontain import lab, runtime
from pycontain.checks import CheckFailed, lesson21
from pycontain.observe import kernel_log, seccomp_probe
from pycontain.security import seccomp

PODMAN_PROFILE = Path("/usr/share/containers/seccomp.json")
#: a user namespace needs no capability: only the filter can refuse it
UNSHARE = ["unshare", "--user", "true"]


def status_field(text: str, field: str) -> str:
    return next(line.split()[1] for line in text.splitlines() if line.startswith(f"{field}:"))


def test_the_default_filter_is_on_and_refuses_unshare(cli):
    done = cli("run", "--", "cat", "/proc/self/status")
    assert done.returncode == 0, done.stderr
    assert status_field(done.stdout, "Seccomp") == "2"
    refused = cli("run", "--", *UNSHARE)
    assert refused.returncode != 0 and "Operation not permitted" in refused.stderr


@pytest.mark.parametrize("flags", [["--security-opt", "seccomp=unconfined"], ["--privileged"]])
def test_unconfined_or_privileged_has_no_filter_and_unshare_works(cli, flags):
    done = cli("run", *flags, "--", "cat", "/proc/self/status")
    assert status_field(done.stdout, "Seccomp") == "0"
    allowed = cli("run", *flags, "--", *UNSHARE)
    assert allowed.returncode == 0, allowed.stderr


def test_without_no_new_privs_the_filter_is_still_installed(cli):
    """seccomp(2) then needs CAP_SYS_ADMIN: init installs the filter before dropping it."""
    done = cli("run", "--security-opt", "no-new-privileges=false", "--", "cat",
               "/proc/self/status")
    assert done.returncode == 0, done.stderr
    assert (status_field(done.stdout, "Seccomp"), status_field(done.stdout, "NoNewPrivs")) == (
        "2", "0")


def test_a_profile_file_decides_each_call_with_its_action(cli, tmp_path, embedded_rootfs):
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["sync"], "action": "SCMP_ACT_KILL_PROCESS"}]}))
    opt = ["--security-opt", f"seccomp={profile}", "--rootfs", embedded_rootfs]
    refused = cli("run", *opt, "--", "mkdir", "/tmp/d")
    assert refused.returncode != 0 and "Permission denied" in refused.stderr  # EACCES, 13
    killed = cli("run", *opt, "--", "sync")
    assert killed.returncode == 128 + signal.SIGSYS, killed.stderr
    allowed = cli("run", *opt, "--", "sh", "-c", "echo hello")
    assert (allowed.returncode, allowed.stdout) == (0, "hello\n")


@pytest.mark.skipif(not PODMAN_PROFILE.exists(), reason="podman's profile comes with make debs")
def test_podmans_own_profile_runs_a_shell_and_refuses_what_it_refuses(cli, embedded_rootfs):
    opt = ["--security-opt", f"seccomp={PODMAN_PROFILE}"]
    done = cli("run", *opt, "--rootfs", embedded_rootfs, "--", "sh", "-c",
               "echo hi > /tmp/f && cat /tmp/f && grep Seccomp: /proc/self/status")
    assert done.returncode == 0 and done.stdout.split() == ["hi", "Seccomp:", "2"], done.stderr
    refused = cli("run", *opt, "--", "cat", "/proc/self/status")
    assert status_field(refused.stdout, "Seccomp") == "2"


def test_the_python_api_applies_a_profile_and_has_none_by_default():
    plain = pycontain.run(["grep", "Seccomp:", "/proc/self/status"])
    assert plain.stdout.split() == ["Seccomp:", "0"]
    filtered = pycontain.run(UNSHARE, seccomp="default", capabilities=["CHOWN"],
                             no_new_privs=True)
    assert filtered.status != 0 and "Operation not permitted" in filtered.stderr


@pytest.mark.parametrize(("profile", "first"), [
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [', "--security-opt seccomp must be a "
     "seccomp profile in JSON"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["unshar"], "action": '
     '"SCMP_ACT_ERRNO"}]}', "--security-opt seccomp must be a profile whose rules name system "
     "calls, got 'unshar'"),
])
def test_a_bad_profile_is_refused_naming_the_flag_and_creates_nothing(cli, tmp_path, profile,
                                                                        first):
    path = tmp_path / "bad.json"
    path.write_text(profile)
    before = set(lab.leftovers())
    done = cli("run", "--security-opt", f"seccomp={path}", "--", "true",
               env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 125 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0].startswith(f"pycontain: {first}"), done.stderr
    assert sorted(tmp_path.iterdir()) == [path] and not set(lab.leftovers()) - before


def test_the_filter_a_container_runs_under_is_the_one_compiled():
    """What init installed is what `compile` made: the kernel reports one filter, and the
    listing's unshare rule is the one that refused (same errno)."""
    program = seccomp.compile(seccomp.DEFAULT, frozenset())
    assert any(i.note == "unshare" for i in program)
    done = pycontain.run(["python3", "-c", "import ctypes, os; libc = ctypes.CDLL(None, "
                          "use_errno=True); print(libc.unshare(0x10000000), ctypes.get_errno())"],
                         seccomp=seccomp.DEFAULT, capabilities=["CHOWN"], no_new_privs=True)
    assert done.stdout.split() == ["-1", "1"], done.stderr


# ---- lesson 21's probe, the kernel's log and the exercise's check ---------------------------


def test_one_call_under_log_errno_and_kill_as_the_process_and_the_log_see_it(tmp_path):
    answers = {a: seccomp_probe.try_call("mkdir", seccomp_probe.profile_for("mkdir", a),
                                         str(tmp_path))
               for a in ("SCMP_ACT_LOG", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS")}
    logged, refused, killed = answers.values()
    assert logged.answer == "done" and refused.errno_name == "EPERM"
    assert killed.result.status == 128 + signal.SIGSYS
    assert len(list(tmp_path.iterdir())) == 1  # the logged mkdir happened, the others not
    assert logged.records is not None, "root reads /dev/kmsg"
    assert [(r.action, r.pid) for r in logged.records] == [("LOG", logged.result.pid)]
    assert refused.records == []  # an ERRNO is not logged without SECCOMP_FILTER_FLAG_LOG
    assert [(r.action, r.signal) for r in killed.records] == [("KILL_PROCESS", signal.SIGSYS)]


def test_the_kernel_log_reads_only_what_comes_after_it_is_opened():
    with kernel_log.KernelLog() as log:
        assert log.readable and log.seccomp() == []
    assert kernel_log.parse_seccomp("6,1,2,-;eth0: link up") is None


REFUSE = {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}


def allowing(*rules, default="SCMP_ACT_ALLOW"):
    return {"defaultAction": default, "syscalls": list(rules)}


def test_the_check_passes_on_a_filter_that_refuses_unshare_only():
    assert "unshare failed with EPERM" in lesson21.check_refuse_unshare(lambda: allowing(REFUSE))


@pytest.mark.parametrize(("profile", "says"), [
    (None, "returned None (no `return` yet?): return a profile"),
    (allowing({**REFUSE, "names": ["unshar"]}), "did you mean unshare"),
    (allowing(REFUSE, default="SCMP_ACT_ERRNO"), "the default action, here ERRNO(1)"),
    (allowing(REFUSE, default="SCMP_ACT_KILL_PROCESS"), "here KILL_PROCESS"),
    (allowing({**REFUSE, "action": "SCMP_ACT_KILL_PROCESS"}), "unshare killed the process"),
    (allowing({**REFUSE, "errnoRet": 38}), "ENOSYS"),
    (allowing({**REFUSE, "excludes": {"caps": ["CAP_SYS_ADMIN"]}}), "its excludes"),
    ("default", "lists a capability the check's containers keep"),
    (seccomp.DEFAULT, "lists a capability the check's containers keep"),
    ("unconfined", "no filter at all"),
    ([REFUSE], "returned a list: the rules alone have no default action"),
    (allowing({**REFUSE, "names": ["setns"]}), "no rule of the profile names unshare"),
    (allowing({**REFUSE, "action": "SCMP_ACT_LOG"}), "gives SCMP_ACT_LOG, which lets the call"),
    (allowing({**REFUSE, "action": "SCMP_ACT_ALLOW"}), "gives SCMP_ACT_ALLOW, which lets the call"),
    (allowing({**REFUSE, "args": [{"index": 0, "value": 0x20000, "op": "SCMP_CMP_EQ"}]}),
     "compares its arguments"),
    (allowing({**REFUSE, "names": ["unshare", "clone"]}), "fork(2) is clone(2) underneath"),
    (allowing({**REFUSE, "names": ["unshare", "openat"]}), "a rule refuses a call it needs"),
])
def test_the_check_names_the_mistake(profile, says):
    with pytest.raises(CheckFailed) as failed:
        lesson21.check_refuse_unshare(lambda: profile)
    assert says in str(failed.value)
    assert "'names': ['unshare']" not in str(failed.value)  # the answer is not given away


def test_a_run_s_result_is_named_as_not_a_profile():
    ran = pycontain.run(["true"])
    with pytest.raises(CheckFailed, match="what a container left when it ended, not a profile"):
        lesson21.check_refuse_unshare(lambda: ran)


def test_a_learner_exception_stops_the_containers_it_started_and_leaves_nothing():
    started = []

    def raises():
        started.append(pycontain.spawn(["sleep", "60"], seccomp=allowing(REFUSE)))
        raise RuntimeError("half-way")

    for check in (lesson21.check_refuse_unshare, lesson21.check_refuse_user_namespaces):
        with pytest.raises(CheckFailed) as failed:
            check(raises)
        assert "raised RuntimeError: half-way" in str(failed.value)
        assert "the check stopped the 1 container(s)" in str(failed.value)
        assert not started[-1].running
        assert not os.path.exists(f"/proc/{started[-1].pid}")
        assert started[-1] not in runtime.unwaited()
        cgroup = started[-1].cgroup
        assert cgroup is None or not any(os.path.isdir(d) for d in cgroup.dirs.values())
    assert not [d for d in os.listdir("/tmp") if d.startswith("pycontain-check21-")]


NEWUSER = 0x10000000
HOLDS_NEWUSER = {"index": 0, "value": NEWUSER, "valueTwo": NEWUSER, "op": "SCMP_CMP_MASKED_EQ"}
CLONE3_ENOSYS = {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
NO_USER_NAMESPACE = allowing({**REFUSE, "names": ["unshare", "clone"], "args": [HOLDS_NEWUSER]},
                             CLONE3_ENOSYS)


def test_the_stretch_passes_when_no_call_makes_a_user_namespace():
    passed = lesson21.check_refuse_user_namespaces(lambda: NO_USER_NAMESPACE)
    assert "clone3-newuser ENOSYS" in passed and "a thread" in passed


@pytest.mark.parametrize(("profile", "says"), [
    (allowing(REFUSE), "clone(2) with CLONE_NEWUSER: unshare is not the only way in"),
    (allowing({**REFUSE, "names": ["unshare", "clone"], "args": [HOLDS_NEWUSER]}),
     "clone3(2) with CLONE_NEWUSER: its flags are in a struct in memory"),
    (allowing({**REFUSE, "names": ["unshare", "clone"], "args": [
        {"index": 0, "value": NEWUSER, "op": "SCMP_CMP_EQ"}]}, CLONE3_ENOSYS),
     "SCMP_CMP_EQ matches one value only"),
    (allowing({**REFUSE, "names": ["unshare", "clone"], "args": [
        {"index": 0, "value": NEWUSER, "op": "SCMP_CMP_EQ"}]}, CLONE3_ENOSYS),
     "your rule for clone did not match"),
    (allowing({**REFUSE, "names": ["unshare", "clone"], "args": [HOLDS_NEWUSER]},
              {**CLONE3_ENOSYS, "errnoRet": 1}), "falls back to clone(2) only when clone3"),
    (allowing({**REFUSE, "names": ["unshare", "clone", "clone3"]}), "fork(2) is clone(2) without"),
    (allowing({**REFUSE, "names": ["unshare", "clone", "clone3"]}),
     "unshare of a UTS namespace alone makes no user namespace"),
    (allowing({**REFUSE, "action": "SCMP_ACT_KILL_PROCESS"}), "killed the process (SIGSYS"),
])
def test_the_stretch_names_the_way_left_open_or_the_call_it_broke(profile, says):
    with pytest.raises(CheckFailed) as failed:
        lesson21.check_refuse_user_namespaces(lambda: profile)
    assert says in str(failed.value)
