"""procfs parsing on recorded samples (no root, no live /proc needed)."""

from __future__ import annotations

import os

import pytest

from pycontain import procfs

STATUS = """Name:\tsleep
Umask:\t0022
State:\tS (sleeping)
Tgid:\t4242
Ngid:\t0
Pid:\t4242
PPid:\t4241
TracerPid:\t0
Uid:\t0\t0\t0\t0
Gid:\t0\t0\t0\t0
Threads:\t1
NStgid:\t4242\t1
NSpid:\t4242\t1
NSpgid:\t4242\t1
NSsid:\t4100\t0
"""

MOUNTINFO = r"""22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
61 22 0:50 / /tmp/pycontain-a\040b rw,relatime - tmpfs tmpfs rw,size=64k
62 61 253:0 /srv/data /tmp/pycontain-a\040b/data ro master:1 propagate_from:1 - ext4 /dev/vda rw
"""


def test_status_gives_the_pid_in_every_namespace():
    s = procfs.Status.parse(STATUS)
    assert (s.name, s.pid, s.ppid, s.nspid, s.uid, s.threads) == (
        "sleep", 4242, 4241, (4242, 1), (0, 0, 0, 0), 1)


def test_status_without_nspid_falls_back_to_pid():
    s = procfs.Status.parse("Name:\tx\nPid:\t7\n")
    assert s.nspid == (7,)


def test_mountinfo_lines_parse_with_escapes_and_propagation():
    mounts = [procfs.Mount.parse(line) for line in MOUNTINFO.splitlines()]
    assert [m.mount_point for m in mounts] == [
        "/", "/proc", "/tmp/pycontain-a b", "/tmp/pycontain-a b/data"]
    assert mounts[0].shared and not mounts[2].shared
    assert mounts[3].propagation == ("master:1", "propagate_from:1")
    assert (mounts[3].root, mounts[3].fstype, mounts[3].source) == ("/srv/data", "ext4",
                                                                     "/dev/vda")
    assert mounts[3].parent_id == mounts[2].mount_id


def test_namespace_links_parse_and_compare_by_inode():
    a = procfs.parse_ns_link("net:[4026531840]")
    assert a == procfs.NamespaceId("net", 4026531840) and str(a) == "net:[4026531840]"
    with pytest.raises(ValueError):
        procfs.parse_ns_link("net:4026531840")


def test_namespaces_read_from_a_recorded_proc_tree(tmp_path):
    ns = tmp_path / "42" / "ns"
    ns.mkdir(parents=True)
    os.symlink("uts:[4026531838]", ns / "uts")
    os.symlink("pid:[4026531836]", ns / "pid")
    found = procfs.namespaces(42, proc=str(tmp_path))
    assert found == {"pid": procfs.NamespaceId("pid", 4026531836),
                     "uts": procfs.NamespaceId("uts", 4026531838)}


def test_unknown_namespace_type_is_refused():
    with pytest.raises(ValueError, match="ns_type"):
        procfs.namespace("self", "utc")
