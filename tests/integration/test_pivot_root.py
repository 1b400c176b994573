"""Lesson 05 on the real kernel: the chroot escape, pivot_root, the container's /dev, /sys, /tmp,
a read-only root, and bad rootfs inputs refused with nothing left behind."""

from __future__ import annotations

import errno
import os

import pytest

import pycontain
from pycontain import lab, procfs, syscalls
from pycontain.audit import escape
from pycontain.checks import CheckFailed, lesson05
from pycontain.errors import SpecError
from pycontain.fs import rootfs
from pycontain.syscalls import MountFlag, UmountFlag

pytestmark = pytest.mark.skipif(rootfs.find_busybox() is None,
                                reason="the escape needs the busybox rootfs (busybox-static)")


@pytest.fixture
def marker(scratch):
    return escape.place_marker(scratch.tempdir("marker"))


def pivot_only(root):
    syscalls.chdir(root)
    syscalls.pivot_root(".", ".")
    syscalls.chdir("/")


def pivot_and_detach(root):
    pivot_only(root)
    syscalls.umount2(".", UmountFlag.MNT_DETACH)


def chroot_and_chdir(root):
    syscalls.chroot(root)
    syscalls.chdir("/")


def host_mounts() -> list[str]:
    return [m.mount_point for m in procfs.mountinfo("self")]


def test_the_escape_reads_the_host_marker_under_chroot(embedded_rootfs, marker):
    out = escape.attempt(marker, embedded_rootfs, root_switch="chroot")
    assert out.escaped(marker), out.result.stderr
    assert out.reached == tuple(sorted(os.listdir("/")))


def test_the_same_escape_fails_under_pivot_root(embedded_rootfs, marker):
    out = escape.attempt(marker, embedded_rootfs)
    assert not out.escaped(marker) and out.read is None
    assert "No such file" in out.result.stderr
    assert out.reached == tuple(sorted(os.listdir(embedded_rootfs)))


def test_pivot_root_without_detaching_leaves_the_old_root_reachable(embedded_rootfs, marker):
    steps = rootfs.record(pivot_only, embedded_rootfs)
    assert escape.foreign_mounts(escape.mounts_inside(embedded_rootfs, root_switch=steps))
    assert escape.attempt(marker, embedded_rootfs, root_switch=steps).escaped(marker)
    detached = rootfs.record(pivot_and_detach, embedded_rootfs)
    assert not escape.attempt(marker, embedded_rootfs, root_switch=detached).escaped(marker)


def test_the_old_root_is_gone_from_mountinfo_inside(embedded_rootfs):
    inside = escape.mounts_inside(embedded_rootfs)
    assert escape.foreign_mounts(inside) == []
    assert [m.mount_point for m in inside][:2] == ["/", "/proc"]
    assert {m.mount_point for m in inside} >= {"/", "/proc", "/dev", "/dev/pts", "/dev/shm",
                                                "/sys", "/tmp"}
    assert len(inside) < len(procfs.mountinfo("self"))


def test_dev_holds_exactly_the_minimal_nodes(embedded_rootfs):
    result = pycontain.run(["sh", "-c", "ls -A /dev; echo --; ls -A /dev/pts; readlink /dev/ptmx;"
                            " echo x > /dev/shm/x && cat /dev/shm/x; head -c 4 /dev/zero | wc -c"],
                           rootfs=embedded_rootfs)
    assert result.status == 0, result.stderr
    dev, pts = result.stdout.split("--\n")
    assert set(dev.split()) == {*rootfs.DEVICES, *rootfs.DEV_LINKS, "pts", "shm"}
    assert pts.split() == ["ptmx", "pts/ptmx", "x", "4"]  # a fresh devpts: no host terminals


def test_sys_is_read_only_with_and_without_a_network_namespace(embedded_rootfs):
    for namespaces in ("mnt,pid,net", "mnt,pid"):
        result = pycontain.run(["sh", "-c", "grep ' /sys ' /proc/self/mountinfo; "
                                            "touch /sys/kernel/x"],
                               rootfs=embedded_rootfs, namespaces=namespaces)
        assert result.status != 0
        assert " ro," in result.stdout and os.strerror(errno.EROFS) in result.stderr
        assert result.stdout.split(" - ")[1].startswith("sysfs")  # fresh, or the host's bound


def test_tmp_is_a_private_tmpfs(embedded_rootfs):
    result = pycontain.run(["sh", "-c", "grep ' /tmp ' /proc/self/mountinfo; touch /tmp/x"],
                           rootfs=embedded_rootfs)
    assert result.status == 0 and " - tmpfs " in result.stdout
    assert not os.path.exists(os.path.join(embedded_rootfs, "tmp/x"))


def test_read_only_root_refuses_writes_with_erofs(embedded_rootfs, cli):
    result = pycontain.run(["sh", "-c", "touch /tmp/ok; touch /x"], rootfs=embedded_rootfs,
                           read_only=True)
    assert result.status != 0 and os.strerror(errno.EROFS) in result.stderr
    assert not os.path.exists(os.path.join(embedded_rootfs, "x"))
    done = cli("run", "--rootfs", embedded_rootfs, "--read-only", "--", "mkdir", "/new")
    assert done.returncode == 1 and os.strerror(errno.EROFS) in done.stderr
    assert cli("run", "--rootfs", embedded_rootfs, "--", "touch", "/tmp/x").returncode == 0


def bad_rootfs(scratch, kind: str) -> str:
    root = scratch.tempdir("bad-rootfs")
    if kind == "missing":
        return str(root / "nothing")
    if kind == "file":
        (root / "file").write_text("")
        return str(root / "file")
    if kind != "no-sh":
        (root / "bin").mkdir()
        (root / "bin/sh").symlink_to("busybox")
        (root / kind).symlink_to("/")
    return str(root)


@pytest.mark.parametrize("kind,says", [
    ("missing", "an existing directory"), ("file", "a directory, not a file"),
    ("no-sh", "a shell at /bin/sh"), ("proc", "/proc is a directory"),
    ("sys", "/sys is a directory"), ("dev", "/dev is a directory"),
    ("tmp", "/tmp is a directory")])
def test_bad_rootfs_is_refused_with_nothing_left_mounted(scratch, kind, says):
    root = bad_rootfs(scratch, kind)
    mounts, left = host_mounts(), lab.leftovers()
    with pytest.raises(SpecError) as info:
        pycontain.run(["sh"], rootfs=root)
    assert info.value.parameter == "rootfs" and says in str(info.value)
    assert host_mounts() == mounts and lab.leftovers() == left


def test_a_working_directory_left_outside_the_root_is_refused(embedded_rootfs):
    steps = rootfs.record(lambda root: syscalls.chroot(root), embedded_rootfs)  # no chdir
    with pytest.raises(SpecError) as info:
        pycontain.run(["true"], rootfs=embedded_rootfs, root_switch=steps)
    assert info.value.parameter == "root_switch" and info.value.got == "(unreachable)"


def test_the_lesson_check_passes_only_for_pivot_root_and_detach():
    assert lesson05.check_pivot_into(pivot_and_detach)
    for wrong, says in ((chroot_and_chdir, "read the host's marker"),
                        (pivot_only, "old root are still"), (lambda root: None, "no system calls")):
        with pytest.raises(CheckFailed, match=says):
            lesson05.check_pivot_into(wrong)


def pivots_with_os_chdir(root):  # the wrong turn: os.chdir is not recorded
    os.chdir(root)
    syscalls.pivot_root(".", ".")
    syscalls.umount2(".", UmountFlag.MNT_DETACH)
    syscalls.chdir("/")


def raises_after_a_call(root):
    syscalls.chdir(root)
    raise ValueError("not yet")


@pytest.mark.parametrize("wrong,says", [
    (pivots_with_os_chdir, "changed the working directory of this notebook's own process"),
    (chroot_and_chdir, "Which call changes the root of the whole mount namespace?"),
    (pivot_only, "which call takes a mount out of the namespace"),
    (raises_after_a_call, "raised ValueError: not yet"),
])
def test_the_check_names_the_wrong_turn_not_the_calls(wrong, says):
    cwd, mounts, left = os.getcwd(), host_mounts(), lab.leftovers()
    with pytest.raises(CheckFailed) as info:
        lesson05.check_pivot_into(wrong)
    assert says in str(info.value)
    assert "pivot_root('.', '.')" not in str(info.value)  # a diagnosis, not the solution
    assert os.getcwd() == cwd  # an os.chdir in the learner's function is undone
    assert host_mounts() == mounts and lab.leftovers() == left


def test_the_success_output_shows_the_librarys_pivot():
    passed = lesson05.check_pivot_into(pivot_and_detach)
    assert "def pivot(" in passed._repr_markdown_() and "def pivot(" not in passed


def read_only_pivot(root):
    syscalls.mount(None, root, None, MountFlag.MS_REMOUNT | MountFlag.MS_BIND | MountFlag.MS_RDONLY)
    pivot_and_detach(root)


def test_the_stretch_wants_a_read_only_root_and_a_writable_tmp(embedded_rootfs):
    image = sorted(os.listdir(embedded_rootfs))
    assert "read-only" in lesson05.check_read_only_pivot(read_only_pivot)
    with pytest.raises(CheckFailed, match="still writable"):
        lesson05.check_read_only_pivot(pivot_and_detach)
    assert sorted(os.listdir(embedded_rootfs)) == image  # /etc/x was removed from the image


def test_nothing_is_left_behind(embedded_rootfs, marker):
    mounts, left, image = host_mounts(), lab.leftovers(), sorted(os.listdir(embedded_rootfs))
    for switch in ("chroot", "pivot_root"):
        escape.attempt(marker, embedded_rootfs, root_switch=switch, read_only=True)
    assert host_mounts() == mounts and lab.leftovers() == left
    assert sorted(os.listdir(embedded_rootfs)) == image
