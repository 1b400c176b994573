"""Lesson 04 on the real kernel: mounts propagate between mount namespaces until made private.

Every mount is made inside a /tmp/pycontain-* directory, by processes other than this one, and
each test proves that nothing is left mounted below it afterwards.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest

import pycontain
from pycontain import helper, procfs, syscalls
from pycontain.checks import CheckFailed, lesson04
from pycontain.errors import SpecError, SyscallError
from pycontain.namespaces import mnt
from pycontain.syscalls import CloneFlag, MountFlag


def mounted_at_or_below(base: str) -> list[str]:
    return [m.mount_point for m in procfs.mountinfo("self")
            if m.mount_point == base or m.mount_point.startswith(base + "/")]


@pytest.fixture
def base(scratch):
    """A shared mount point of our own; afterwards, nothing is mounted at or below it."""
    path = mnt.demo_dir(scratch.tempdir("test-mnt"))
    helper.in_fresh_process(mnt.share, path)
    yield path
    helper.in_fresh_process(mnt.release, path)
    assert mounted_at_or_below(path) == []


def test_share_makes_a_directory_a_shared_mount_point_of_the_host(scratch):
    path = mnt.demo_dir(scratch.tempdir("test-mnt"))
    assert not mnt.is_mount_point(path)
    helper.in_fresh_process(mnt.share, path)
    helper.in_fresh_process(mnt.share, path)  # twice: still one mount, still shared
    try:
        assert mounted_at_or_below(path) == [path]
        assert mnt.propagation(mnt.find_mount(path)) == "shared"
    finally:
        helper.in_fresh_process(mnt.release, path)
    assert mounted_at_or_below(path) == []


@pytest.mark.parametrize("kind,box_to_host,host_to_box", [
    ("shared", True, True),       # the copy stays in the peer group: both ways
    ("private", False, False),    # out of the group: neither way
    ("slave", False, True),       # receives from its master, sends nothing
    ("unbindable", False, False),  # private, and no bind source either
])
def test_propagation_type_decides_which_way_mounts_travel(base, kind, box_to_host, host_to_box):
    seen = mnt.experiment(base, kind)
    assert (seen.box_to_host, seen.host_to_box) == (box_to_host, host_to_box)
    assert seen.outlived_box == box_to_host  # a leaked mount belongs to the host's namespace
    assert seen.in_box.split(", ", 1)[1].startswith(kind)  # "ext4, slave (master:7)"
    assert mounted_at_or_below(base) == [base]  # the experiment undid its mounts
    assert mnt.propagation(mnt.find_mount(base)) == "shared"  # and left the host's copy alone


def test_util_linux_unshare_agrees(base):
    """The same leak without pycontain's helpers: unshare(1) with and without a private copy."""
    for name, propagation, leaks in [("kept", "unchanged", True), ("gone", "private", False)]:
        target = os.path.join(base, name)
        os.mkdir(target)
        subprocess.run(["unshare", "--mount", f"--propagation={propagation}", "mount", "-t",
                        "tmpfs", "tmpfs", target], check=True)
        assert mnt.is_mount_point(target) == leaks, name


def test_a_pycontain_container_keeps_its_mounts_and_differs_from_the_host(base):
    inside = os.path.join(base, "inside")
    os.mkdir(inside)
    script = f"mount -t tmpfs tmpfs {inside} && echo mounted && exec sleep 30"
    with pycontain.spawn(["sh", "-c", script], namespaces={"mnt"}) as box:
        assert box.process.stdout.readline() == "mounted\n"
        seen = mnt.diff(os.getpid(), box.pid)
        assert inside in seen.only_second
        assert base in seen.changed  # shared on the host, private inside (init made it so)
        assert mnt.propagation(mnt.find_mount(base, box.pid)) == "private"
        assert all(mnt.propagation(m) == "private" for m in procfs.mountinfo(box.pid))
        assert not mnt.is_mount_point(inside)  # the host never saw it
        assert mnt.diff(os.getpid(), os.getpid()).rows == ()
    assert mounted_at_or_below(base) == [base]


def test_propagation_of_a_plain_directory_is_einval_with_a_hint(base):
    plain = os.path.join(base, "plain")
    os.mkdir(plain)
    with pytest.raises(SyscallError) as caught:
        helper.in_fresh_process(mnt.set_propagation, plain, "private")
    assert (caught.value.call, caught.value.errno) == ("mount", errno.EINVAL)
    assert caught.value.arguments == (None, plain, None, MountFlag.MS_PRIVATE, None)
    assert "not a mount point" in caught.value.hint and "(lesson 04)" in caught.value.hint
    assert str(caught.value).startswith(
        f"mount(None, '{plain}', None, MS_PRIVATE, None) failed: EINVAL")


@pytest.mark.parametrize("call,args,parameter", [
    ("experiment", ("BASE", "public"), "kind"),
    ("experiment", ("/tmp", "private"), "path"),
    ("experiment", ("/", "private"), "path"),
    ("share", ("/mnt",), "path"),
    ("mount_tmpfs", ("BASE/../..",), "path"),
    ("enter_box", ("BASE", "sideways"), "kind"),
])
def test_bad_input_is_refused_before_anything_is_mounted(base, call, args, parameter):
    before = procfs.mountinfo("self")
    args = tuple(a.replace("BASE", base) for a in args)
    with pytest.raises(SpecError) as caught:
        if call == "experiment":
            mnt.experiment(*args)
        else:
            helper.in_fresh_process(getattr(mnt, call), *args)
    assert caught.value.parameter == parameter
    assert procfs.mountinfo("self") == before
    assert sorted(os.listdir(base)) == []  # not even the experiment's directories


def test_experiment_on_a_directory_that_is_not_shared_is_refused(scratch):
    plain = mnt.demo_dir(scratch.tempdir("test-mnt"))
    with pytest.raises(SpecError) as caught:
        mnt.experiment(plain, "private")
    assert caught.value.parameter == "base" and "mnt.share" in str(caught.value)
    assert mounted_at_or_below(plain) == []


def test_the_widget_runs_the_experiment_headless(base):
    pytest.importorskip("ipywidgets")  # the [lab] extra; the v2 guest runs without it
    from pycontain.observe import widgets

    widget = widgets.propagation_toggle(base, "slave")
    toggle, table = widget.children
    assert toggle.value == "slave" and "master:" in table.value
    toggle.value = "private"  # what a press does
    assert "master:" not in table.value and "private" in table.value
    assert mounted_at_or_below(base) == [base]


NEWNS = CloneFlag.CLONE_NEWNS


def private_base(b):
    return [("unshare", NEWNS), ("mount", None, b, None, MountFlag.MS_PRIVATE),
            ("mount", "tmpfs", f"{b}/secret", "tmpfs", 0)]


def slave_root(b):
    return [("unshare", NEWNS), ("mount", None, "/", None, MountFlag.MS_REC | MountFlag.MS_SLAVE),
            ("mount", "tmpfs", f"{b}/secret", "tmpfs", 0)]


def mounts_in_the_notebook(b):  # a wrong turn: the calls made here, not returned
    syscalls.unshare(NEWNS)
    syscalls.mount(None, b, None, MountFlag.MS_PRIVATE)
    return private_base(b)


def raises_after_a_mount(b):
    syscalls.mount("tmpfs", f"{b}/secret", "tmpfs", 0)
    raise ValueError("not yet")


def check04_mounts():
    return [m for m in procfs.mountinfo("self") if "pycontain-check04" in m.mount_point]


@pytest.mark.parametrize("calls,words", [
    (lambda b: None, "returned None"),
    (lambda b: [("unshare", NEWNS), ("mount", "tmpfs", f"{b}/secret", "tmpfs", 0)],
     "still in the host's peer group"),
    (lambda b: [("mount", "tmpfs", f"{b}/secret", "tmpfs", 0)],
     "never left the host's mount namespace"),
    (lambda b: [("unshare", CloneFlag.CLONE_NEWUTS), ("mount", "tmpfs", f"{b}/secret", "tmpfs", 0)],
     "which CLONE_NEW* flag is the mount namespace's"),
    (lambda b: [("mount", None, b, None, MountFlag.MS_PRIVATE), ("unshare", NEWNS),
                ("mount", "tmpfs", f"{b}/secret", "tmpfs", 0)], "no longer shared"),
    (lambda b: [("unshare", NEWNS), ("mount", "tmpfs", f"{b}/secret", "tmpfs", 0),
                ("mount", None, b, None, MountFlag.MS_PRIVATE)], "only after the tmpfs"),
    (lambda b: [("unshare", NEWNS), ("mount", None, "/", None, MountFlag.MS_PRIVATE),
                ("mount", "tmpfs", f"{b}/secret", "tmpfs", 0)], "MS_REC"),
    (lambda b: [("unshare", NEWNS)], "saw no tmpfs"),
    (lambda b: [("unshare", NEWNS), ("mount", None, f"{b}/secret", None,
                                     MountFlag.MS_PRIVATE)], "EINVAL"),
    (lambda b: [("unshare", NEWNS), ("mount", None, b, None,
                                     MountFlag.MS_REMOUNT | MountFlag.MS_RDONLY)],
     "MS_REMOUNT without MS_BIND"),
    (lambda b: [("mount", "/tmp", f"{b}/secret", None, MountFlag.MS_BIND)], "is outside"),
    (mounts_in_the_notebook, "this notebook's own thread was moved into a new mnt namespace"),
    (raises_after_a_mount, "raised ValueError: not yet"),
])
def test_the_check_names_the_wrong_turn_not_the_calls(calls, words):
    cwd, tmp = os.getcwd(), mnt.find_mount("/tmp") or mnt.find_mount("/")
    home = procfs.namespace("thread-self", "mnt")
    with pytest.raises(CheckFailed) as caught:
        lesson04.check_hide_mount(calls)
    assert words in str(caught.value)
    assert "('unshare', CloneFlag.CLONE_NEWNS)" not in str(caught.value)  # never the calls
    assert check04_mounts() == []  # whatever was mounted, the check's Lab unmounted it
    assert procfs.namespace("thread-self", "mnt") == home and os.getcwd() == cwd
    assert (mnt.find_mount("/tmp") or mnt.find_mount("/")) == tmp  # the host's /tmp untouched


@pytest.mark.parametrize("calls", [private_base, slave_root])
def test_the_check_passes_calls_that_keep_the_tmpfs_inside(calls):
    passed = lesson04.check_hide_mount(calls)
    assert "the host never saw it" in passed
    assert "def enter_box" in passed._repr_markdown_()  # the library's calls, only now
    assert check04_mounts() == []


def test_the_stretch_wants_the_hosts_later_mounts_to_arrive_from_a_whole_tree_change():
    assert "rslave" in lesson04.check_runc_default(slave_root)
    with pytest.raises(CheckFailed, match="never reached your process"):
        lesson04.check_runc_default(lambda b: [
            ("unshare", NEWNS), ("mount", None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE),
            ("mount", "tmpfs", f"{b}/secret", "tmpfs", 0)])
    with pytest.raises(CheckFailed, match="by name"):
        lesson04.check_runc_default(lambda b: [
            ("unshare", NEWNS), ("mount", None, b, None, MountFlag.MS_SLAVE),
            ("mount", "tmpfs", f"{b}/secret", "tmpfs", 0)])
    assert check04_mounts() == []


SHARED_HOST = """
import json, os, sys
from pycontain import helper
from pycontain import procfs
from pycontain.namespaces import mnt
parent = sys.argv[1]
base = os.path.join(parent, "base")
os.mkdir(base)
helper.in_fresh_process(mnt.share, base)
groups = [mnt.find_mount(p).propagation for p in (parent, base)]
seen = {k: mnt.experiment(base, k).box_to_host for k in ("shared", "private", "slave")}
helper.in_fresh_process(mnt.release, base)
left = [m.mount_point for m in procfs.mountinfo("self") if m.mount_point.startswith(base)
        or m.mount_point.startswith(parent + "/copy/")]
print(json.dumps({"groups": groups, "leaks": seen, "left": left}))
"""


def test_on_a_host_whose_tmp_is_shared_the_demonstration_keeps_its_own_peer_group(scratch):
    """As on the lab VM (systemd makes / and /tmp shared), simulated in a throw-away namespace:
    the parent is a shared tmpfs with a peer (a bind copy); base must not join their group, and
    everything must be gone after release, the copy's propagated mounts included."""
    parent = mnt.demo_dir(scratch.tempdir("test-mnt"))
    setup = (f"mount -t tmpfs tmpfs {parent} && mount --make-shared {parent} && "
             f"mkdir {parent}/copy && mount --bind {parent} {parent}/copy && "
             f'exec "$0" -c "$1" {parent}')
    done = subprocess.run(["unshare", "--mount", "--propagation=private", "sh", "-c", setup,
                           sys.executable, SHARED_HOST], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (parent_group,), (base_group,) = report["groups"]
    assert parent_group.startswith("shared:") and base_group.startswith("shared:")
    assert parent_group != base_group  # a peer group of its own
    assert report["leaks"] == {"shared": True, "private": False, "slave": False}
    assert report["left"] == []
    assert mounted_at_or_below(parent) == []  # the namespace, and its mounts, are gone
