"""Lesson 20 on the real kernel: what root inside a `pycontain run` container may still do.

The default keeps Docker's capability set without CAP_MKNOD, in the bounding, permitted and
effective sets, none inheritable or ambient, and sets no_new_privs; each flag changes it as
Docker's does. Every reading is the kernel's own: /proc/self/status inside, or a call that
succeeds or fails with EPERM.
"""

from __future__ import annotations

import os

import pytest

from pycontain import lab
from pycontain.security import capabilities
from pycontain.security.capabilities import DEFAULT

UID = 65534


def status_inside(cli, *flags: str) -> tuple[capabilities.Sets, str]:
    done = cli("run", *flags, "--", "cat", "/proc/self/status")
    assert done.returncode == 0, done.stderr
    no_new_privs = next(line.split()[1] for line in done.stdout.splitlines()
                        if line.startswith("NoNewPrivs:"))
    return capabilities.parse_status(done.stdout), no_new_privs


def test_the_default_keeps_dockers_set_without_mknod_and_no_new_privs(cli):
    sets, no_new_privs = status_inside(cli)
    assert sets.effective == sets.permitted == sets.bounding == DEFAULT
    assert sets.inheritable == sets.ambient == frozenset()
    assert no_new_privs == "1"


def test_root_inside_cannot_make_a_block_device(cli, embedded_rootfs):
    done = cli("run", "--rootfs", embedded_rootfs, "--", "mknod", "/tmp/sda", "b", "8", "0")
    assert done.returncode != 0 and "Operation not permitted" in done.stderr


def test_cap_drop_chown_makes_chown_fail_with_eperm(cli, embedded_rootfs):
    script = "touch /tmp/f && chown 1 /tmp/f && echo changed"
    kept = cli("run", "--rootfs", embedded_rootfs, "--", "sh", "-c", script)
    assert (kept.stdout, kept.returncode) == ("changed\n", 0), kept.stderr
    dropped = cli("run", "--cap-drop", "chown", "--rootfs", embedded_rootfs, "--",
                  "sh", "-c", script)
    assert dropped.returncode != 0 and "Operation not permitted" in dropped.stderr


def test_cap_add_sys_admin_allows_a_mount_inside(cli, embedded_rootfs):
    script = "mount -t tmpfs none /tmp && grep -c ' /tmp tmpfs ' /proc/mounts"
    refused = cli("run", "--rootfs", embedded_rootfs, "--", "sh", "-c", script)
    assert refused.returncode != 0 and "permission denied" in refused.stderr.lower()  # EPERM
    allowed = cli("run", "--cap-add", "SYS_ADMIN", "--rootfs", embedded_rootfs, "--",
                  "sh", "-c", script)
    assert allowed.returncode == 0 and int(allowed.stdout) >= 1, allowed.stderr
    sets, _ = status_inside(cli, "--cap-add", "CAP_SYS_ADMIN,mknod")
    assert sets.effective == sets.bounding == DEFAULT | {"CAP_SYS_ADMIN", "CAP_MKNOD"}


def test_cap_drop_all_leaves_root_with_nothing(cli):
    sets, _ = status_inside(cli, "--cap-drop", "ALL", "--cap-add", "kill")
    assert sets.effective == sets.permitted == sets.bounding == {"CAP_KILL"}


def test_privileged_keeps_every_capability_and_no_new_privs_off(cli):
    sets, no_new_privs = status_inside(cli, "--privileged")
    mine = capabilities.read()
    assert sets.bounding == mine.bounding and sets.effective == mine.effective
    assert no_new_privs == "0"


def test_no_new_privileges_false_turns_it_off_and_keeps_the_default_set(cli):
    sets, no_new_privs = status_inside(cli, "--security-opt", "no-new-privileges=false")
    assert no_new_privs == "0" and sets.bounding == DEFAULT


def test_a_user_namespace_run_as_root_keeps_the_default_set_after_its_uid_change(cli):
    """With --map-root, init changes uid to the mapped root (setresuid) before the sets are
    chosen: capset afterwards still works, with no keep-caps, since the new uid is root."""
    sets, no_new_privs = status_inside(cli, "--map-root", "200000", "--namespaces",
                                       "uts,pid,mnt")
    assert sets.effective == sets.permitted == sets.bounding == DEFAULT
    assert no_new_privs == "1"


def test_a_rootless_run_keeps_the_default_set(cli):
    done = cli("run", "--user-namespace", "--", "cat", "/proc/self/status", user=UID,
               env={**os.environ, "HOME": "/tmp"})
    assert done.returncode == 0, done.stderr
    sets = capabilities.parse_status(done.stdout)
    assert sets.effective == sets.permitted == sets.bounding == DEFAULT
    assert "NoNewPrivs:\t1" in done.stdout


@pytest.mark.parametrize(("args", "first"), [
    (["--cap-add", "MAKE_COFFEE"], "--cap-add must be capability names such as CHOWN or "
                                   "CAP_NET_RAW (any case), or ALL, got 'MAKE_COFFEE'"),
    (["--cap-drop", "chown,nope"], "--cap-drop must be capability names such as CHOWN"),
    (["--privileged", "--cap-add", "SYS_ADMIN"], "--cap-add must be left out with --privileged"),
    (["--security-opt", "apparmor=unconfined"], "--security-opt must be no-new-privileges, "
                                                "no-new-privileges=true, "
                                                "no-new-privileges=false, seccomp="),
])
def test_refusals_name_the_flag_and_create_nothing(cli, tmp_path, args, first):
    before = set(lab.leftovers())
    done = cli("run", *args, "--", "true", env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 125 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0].startswith(f"pycontain: {first}"), done.stderr
    assert not list(tmp_path.iterdir()) and not set(lab.leftovers()) - before


def test_help_says_what_a_container_may_do(cli):
    text = cli("run", "--help").stdout
    assert "--cap-add" in text and "--cap-drop" in text and "--privileged" in text
    assert "no-new-privileges=false" in text and "not MKNOD" in text
