"""Lesson 09 on the real kernel: a rootless run, a container made by an unprivileged user.

The user is 65534 ("nobody"), reached with setpriv(1), with a group of its own (65533) so that
the gid map is seen to follow the caller's gid and not its uid. No user is created.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

from pycontain import lab, procfs
from pycontain.observe import both_sides

UID, GID = 65534, 65533

if shutil.which("setpriv") is None:
    pytest.skip("setpriv (util-linux) is not installed", allow_module_level=True)


@pytest.fixture
def secret(scratch):
    """A host file only root may read, in a directory anyone may pass through."""
    top = scratch.tempdir("rootless")
    os.chmod(top, 0o711)
    path = top / "secret"
    path.write_text("host root only\n")
    os.chmod(path, 0o600)
    return str(path)


def nobody(cli, *args):
    return cli(*args, user=UID, env={**os.environ, "HOME": "/tmp"})


def test_rootless_root_inside_is_the_caller_outside(secret):
    host_name = socket.gethostname()
    seen = both_sides.rootless(
        f"id -u; id -g; hostname rootless-box && hostname; cat {secret}; stat -c %u {secret}",
        uid=UID, gid=GID)
    assert seen["inside"] == ["0", "0", "rootless-box", f"cat: {secret}: Permission denied",
                              "65534"]  # the host's root is unmapped inside: the overflow id
    assert seen["outside (/proc/<pid>/status)"] == (UID, GID)
    assert (seen["uid_map"], seen["gid_map"]) == (f"0 {UID} 1", f"0 {GID} 1")
    assert socket.gethostname() == host_name
    assert not os.path.exists(f"/proc/{seen['pid']}")  # ended with its maker


def test_rootless_cli_run_gets_its_own_namespaces(cli):
    done = nobody(cli, "run", "--user-namespace", "--", "sh", "-c",
                  "id -u; cat /proc/self/uid_map /proc/self/setgroups; echo $$; "
                  "readlink /proc/self/ns/user /proc/self/ns/pid")
    assert done.returncode == 0, done.stderr
    uid, uid_map, setgroups, pid, user_ns, pid_ns = done.stdout.splitlines()
    assert (uid, uid_map.split(), setgroups, pid) == ("0", ["0", str(UID), "1"], "deny", "1")
    assert user_ns != f"user:[{procfs.namespace('self', 'user').inode}]"
    assert pid_ns != f"pid:[{procfs.namespace('self', 'pid').inode}]"


def test_rootless_map_root_takes_only_the_own_uid(cli):
    done = nobody(cli, "run", "--map-root", str(UID), "--namespaces", "uts", "--",
                  "cat", "/proc/self/uid_map")
    assert (done.stdout.split(), done.returncode) == (["0", str(UID), "1"], 0), done.stderr


@pytest.mark.parametrize("args,parameter,words", [
    (["--namespaces", "uts"], "needs root", "--user-namespace"),
    (["--map-root", "100000"], "--map-root must be", f"your own uid, {UID}"),
    (["--user-namespace", "--pids-limit", "10"], "--pids-limit must be set only when "
                                                 "pycontain runs as root, got '10'",
     "only root may create"),
    (["--user-namespace", "--memory", "64M"], "--memory must be set only when pycontain runs "
                                              "as root, got '64M'", "rootless run has none"),
])
def test_rootless_refusals_name_the_rule_and_create_nothing(cli, args, parameter, words):
    before = lab.leftovers()
    done = nobody(cli, "run", *args, "--", "true")
    assert done.returncode == 125 and "Traceback" not in done.stderr
    assert parameter in done.stderr and words in done.stderr and "hint:" in done.stderr
    assert "{'" not in done.stderr  # a sentence, not a Python dict
    assert lab.leftovers() == before


def test_rootless_maps_are_checked_before_anything_is_created():
    code = ("from pycontain.errors import SpecError\n"
            "from pycontain import Spec\n"
            "for maps in ({'uid_map': [(0, 100000, 65536)]}, {'gid_map': [(0, 65534, 2)]},\n"
            "             {'uid_map': [(0, 65534, 1), (1, 65535, 1)]}):\n"
            "    try:\n"
            "        Spec(['true'], user_namespace=True, **maps)\n"
            "    except SpecError as e:\n"
            "        print(e.parameter, 'when not root' in str(e))\n"
            "print(Spec(['true'], user_namespace=True, uid_map=[(5, 65534, 1)]).id_maps)\n")
    assert _python_as_nobody(code).splitlines() == ["uid_map True", "gid_map True", "uid_map True",
                                 f"(((5, {UID}, 1),), ((0, {GID}, 1),))"]


def _python_as_nobody(code: str) -> str:
    import subprocess
    import sys

    done = subprocess.run(["setpriv", f"--reuid={UID}", f"--regid={GID}", "--clear-groups",
                           sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_rootless_time_namespace_with_an_offset(cli):
    done = nobody(cli, "run", "--user-namespace", "--boottime-offset", "86400", "--",
                  "cat", "/proc/uptime")
    assert done.returncode == 0, done.stderr
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])
    assert 86400 <= float(done.stdout.split()[0]) - host + 1 <= 86400 + 60


def test_rootless_run_in_the_embedded_rootfs_leaves_no_layer(cli, embedded_rootfs):
    before = lab.leftovers()
    done = nobody(cli, "run", "--user-namespace", "--rootfs", embedded_rootfs, "--", "sh", "-c",
                  "touch /made && stat -c %u /made /bin/busybox")
    assert (done.stdout.split(), done.returncode) == (["0", "65534"], 0), done.stderr
    # overlayfs leaves work/work mode 000, owned by the rootless user: still removed
    assert lab.leftovers() == before
