"""Lesson 20 on the real kernel: what every `pycontain run` container gets by default, as runc,
crun, Docker and podman give it, and `--privileged` taking each away.

By default, as root: Docker's capability set (no CAP_MKNOD, so no block device node), the same
bounding set, `NoNewPrivs: 1`, `Seccomp: 2`; /proc/sys read-only and /proc/keys, /proc/timer_list
masked; with a rootfs and limits its own cgroups read-only at /sys/fs/cgroup, showing its own
limits; the short id as hostname. Each default has its own switch, and the Python API keeps
root's powers unless asked.
"""

from __future__ import annotations

import pytest

import pycontain
from pycontain import cgroups, lab
from pycontain.errors import SpecError
from pycontain.security import capabilities, paths

#: what the container reports: its sets, then one line per check
REPORT = r"""
grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status
if (exec 3<> /proc/sys/kernel/core_pattern) 2>/dev/null; then echo sysctl writable
  else echo sysctl read-only; fi
echo "keys $(wc -c < /proc/keys) timer_list $(wc -c < /proc/timer_list)"
if mknod /tmp/disk b 7 0 2>/dev/null; then echo mknod made; else echo mknod refused; fi
echo "hostname $(hostname)"
"""


def report(cli, *flags: str) -> dict[str, str]:
    done = cli("run", *flags, "--", "sh", "-c", REPORT)
    assert done.returncode == 0, done.stderr
    lines = [line.replace(":", "").split(None, 1) for line in done.stdout.splitlines()]
    return {key: value.strip() for key, value in lines}


def test_a_root_container_gets_every_default(cli, embedded_rootfs):
    seen = report(cli, "--rootfs", embedded_rootfs)
    default = capabilities.mask(capabilities.DEFAULT)
    assert int(seen["CapEff"], 16) == default and int(seen["CapBnd"], 16) == default
    assert (seen["NoNewPrivs"], seen["Seccomp"]) == ("1", "2")
    # core_pattern would run a program as root on the host: it does not even open for
    # writing (tested by opening it read-write, never by writing to it)
    assert seen["sysctl"] == "read-only"
    assert seen["keys"] == "0 timer_list 0"  # /dev/null over the host's keyrings and timers
    assert seen["mknod"] == "refused"  # no CAP_MKNOD
    assert len(seen["hostname"]) == 12 and int(seen["hostname"], 16) >= 0  # its short id


def test_privileged_takes_every_default_away(cli, embedded_rootfs):
    seen = report(cli, "--privileged", "--rootfs", embedded_rootfs,
                  "--security-opt", "no-new-privileges=false")
    everything = capabilities.mask(capabilities.read().effective)  # all that this process has
    assert int(seen["CapEff"], 16) == everything and int(seen["CapBnd"], 16) == everything
    assert (seen["NoNewPrivs"], seen["Seccomp"]) == ("0", "0")
    assert seen["mknod"] == "made"
    assert seen["keys"] != "0 timer_list 0"


def test_privileged_leaves_proc_sys_writable(cli, embedded_rootfs):
    """Proved by opening for writing, never by writing: the host's sysctl stays as it is."""
    probe = ["sh", "-c", "(exec 3<> /proc/sys/kernel/core_pattern) && echo writable; "
                         "grep ' /proc/sys ' /proc/self/mountinfo | grep -c ' ro' || true"]
    privileged = cli("run", "--privileged", "--rootfs", embedded_rootfs, "--", *probe)
    default = cli("run", "--rootfs", embedded_rootfs, "--", *probe)
    assert privileged.stdout.split() == ["writable", "0"], privileged.stderr
    assert default.stdout.split() == ["1"], default.stderr


def test_systempaths_unconfined_unmasks_and_keeps_the_rest(cli, embedded_rootfs):
    seen = report(cli, "--security-opt", "systempaths=unconfined", "--rootfs", embedded_rootfs)
    assert seen["keys"] != "0 timer_list 0"
    assert (seen["NoNewPrivs"], seen["Seccomp"], seen["mknod"]) == ("1", "2", "refused")


def test_the_masks_hold_without_a_rootfs_and_the_host_keeps_its_files(cli):
    seen = report(cli)
    assert (seen["sysctl"], seen["keys"]) == ("read-only", "0 timer_list 0")
    with open("/proc/self/mountinfo") as f:  # the masks lived in the container's namespace
        assert not any(f" {p} " in line for line in f for p in paths.MASKED + paths.READ_ONLY)


def test_a_hostname_given_wins_and_without_uts_the_host_keeps_its_own(cli):
    named = cli("run", "--hostname", "web-1", "--", "hostname")
    assert named.stdout == "web-1\n", named.stderr
    import socket

    shared = cli("run", "--namespaces", "mnt,pid", "--", "hostname")
    assert shared.stdout == f"{socket.gethostname()}\n", shared.stderr


def view_files() -> tuple[str, str]:
    """Where the container finds its memory and pids limits at /sys/fs/cgroup."""
    if cgroups.detect().version("memory") == 2:
        return "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max"
    return "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max"


def test_the_container_reads_its_own_limits_and_can_change_none(cli, embedded_rootfs):
    memory, pids = view_files()
    before = set(lab.leftovers())
    done = cli("run", "--rootfs", embedded_rootfs, "--memory", "48M", "--pids-limit", "33",
               "--", "sh", "-c", f"cat {memory} {pids}; echo 1 > {pids} || echo refused; "
               f"mkdir /sys/fs/cgroup/escape 2>/dev/null || echo no-mkdir")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(48 << 20), "33", "refused", "no-mkdir"]
    assert "Read-only file system" in done.stderr
    assert not set(lab.leftovers()) - before  # the cgroup went with the container


def test_no_cgroup_view_and_privileged_leave_sys_fs_cgroup_empty(cli, embedded_rootfs):
    for flag in ("--no-cgroup-view", "--privileged"):
        done = cli("run", flag, "--rootfs", embedded_rootfs, "--memory", "48M", "--",
                   "ls", "-A", "/sys/fs/cgroup")
        assert (done.returncode, done.stdout) == (0, ""), (flag, done.stderr)


def test_the_api_keeps_roots_powers_unless_asked(embedded_rootfs):
    plain = pycontain.run(["cat", "/proc/sys/kernel/pid_max", "/proc/keys"], rootfs=embedded_rootfs)
    assert plain.exit_code == 0 and len(plain.stdout.splitlines()) > 1, plain.stderr
    asked = pycontain.run(["sh", "-c", "wc -c < /proc/keys; echo 1 > /proc/sys/kernel/pid_max"],
                          rootfs=embedded_rootfs, masked_paths=paths.MASKED,
                          readonly_paths=paths.READ_ONLY, memory_max="64M", cgroup_view=True)
    assert asked.stdout == "0\n" and "Read-only file system" in asked.stderr


@pytest.mark.parametrize(("options", "says"), [
    ({"masked_paths": ["proc/keys"]}, "`masked_paths` must be absolute paths"),
    ({"readonly_paths": "/proc/sys"}, "`readonly_paths` must be a list of absolute paths"),
    ({"masked_paths": ["/proc/keys"], "namespaces": "uts"},
     "`masked_paths` must be set only with 'mnt' among the namespaces"),
    ({"cgroup_view": True}, "`cgroup_view` must be used only with a rootfs"),
    ({"cgroup_view": "yes"}, "`cgroup_view` must be True or False")])
def test_bad_options_are_refused_before_anything_is_made(options, says):
    before = set(lab.leftovers())
    with pytest.raises(SpecError) as caught:
        pycontain.run(["true"], **options)
    assert str(caught.value).startswith(says)
    assert not set(lab.leftovers()) - before


def test_a_bad_security_opt_names_the_flag(cli):
    done = cli("run", "--security-opt", "systempaths=open", "--", "true")
    assert done.returncode == 125 and "Traceback" not in done.stderr
    assert "--security-opt must be" in done.stderr and "systempaths=unconfined" in done.stderr


def test_a_user_namespace_container_keeps_working_with_the_defaults(cli, embedded_rootfs):
    """In a user namespace the masks are mounts its own root may make (runc rootless)."""
    seen = report(cli, "--user-namespace", "--rootfs", embedded_rootfs)
    assert (seen["sysctl"], seen["keys"], seen["Seccomp"]) == ("read-only", "0 timer_list 0",
                                                               "2")
