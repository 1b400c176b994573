"""Mount propagation (lesson 04) without root: calls recorded, mountinfo parsed, input refused."""

from __future__ import annotations

import os

import pytest

from pycontain import syscalls
from pycontain.checks import CheckFailed
from pycontain.checks.lesson04 import validate_calls
from pycontain.errors import SpecError
from pycontain.namespaces import mnt
from pycontain.procfs import Mount
from pycontain.syscalls import CloneFlag, MountFlag, UmountFlag
from pycontain.testing import RecordingSyscalls, recorded

NEWNS = CloneFlag.CLONE_NEWNS


def line(mount_id: int, parent: int, point: str, optional: str = "", fstype: str = "ext4",
         source: str = "/dev/vda") -> str:
    return f"{mount_id} {parent} 8:1 / {point} rw {optional} - {fstype} {source} rw".replace(
        "  ", " ")


@pytest.mark.parametrize("optional,kind", [
    ("", "private"), ("shared:3", "shared"), ("master:3", "slave"),
    ("shared:4 master:3", "shared,slave"), ("unbindable", "unbindable"),
])
def test_propagation_is_read_from_the_optional_fields(optional, kind):
    assert mnt.propagation(Mount.parse(line(30, 1, "/m", optional))) == kind


def test_describe_names_the_filesystem_type_and_the_kernel_fields():
    assert mnt.describe(Mount.parse(line(30, 1, "/m", "master:3", "tmpfs"))) == (
        "tmpfs, slave (master:3)")
    assert mnt.describe(Mount.parse(line(30, 1, "/m", "unbindable"))) == "ext4, unbindable"
    assert mnt.describe(None) == "-"


@pytest.mark.parametrize("kind,flag", sorted(mnt.PROPAGATION_FLAGS.items()))
def test_set_propagation_is_one_mount_call_without_source(kind, flag):
    with recorded() as kernel:
        mnt.set_propagation("/m", kind)
        mnt.set_propagation("/m", kind, recursive=True)
    assert kernel.calls == [("mount", (None, "/m", None, flag, None)),
                            ("mount", (None, "/m", None, flag | MountFlag.MS_REC, None))]


def test_make_private_is_what_init_does():
    with recorded() as kernel:
        mnt.make_private()
    assert kernel.calls == [("mount", (None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE,
                                       None))]


@pytest.mark.parametrize("kind", ["public", "", "SHARED", "rprivate", None])
def test_an_unknown_propagation_type_is_refused_before_any_call(kind):
    with recorded() as kernel, pytest.raises(SpecError) as caught:
        mnt.set_propagation("/m", kind)
    assert kernel.calls == []
    assert caught.value.parameter == "kind"
    assert "'shared', 'private', 'slave', 'unbindable'" in str(caught.value)


def test_diff_lists_what_only_one_side_has_and_what_propagates_differently(monkeypatch):
    tables = {
        1: [line(1, 0, "/", "shared:1"), line(2, 1, "/proc", "", "proc", "proc"),
            line(3, 1, "/tmp/pycontain-a", "shared:7"), line(4, 1, "/host-only")],
        2: [line(10, 0, "/"), line(11, 10, "/proc", "", "proc", "proc"),
            line(12, 10, "/tmp/pycontain-a"), line(13, 12, "/tmp/pycontain-a/in", "", "tmpfs")],
    }
    monkeypatch.setattr(mnt.procfs, "mountinfo",
                        lambda pid: [Mount.parse(text) for text in tables[pid]])
    found = mnt.diff(1, 2)
    assert found.only_first == ["/host-only"]
    assert found.only_second == ["/tmp/pycontain-a/in"]
    assert found.changed == ["/", "/tmp/pycontain-a"]
    assert found.same == 1  # /proc
    text = repr(found).splitlines()
    assert text[0].split() == ["mount", "point", "host", "container"]
    assert text[2].split() == ["/tmp/pycontain-a", "ext4,", "shared", "(shared:7)", "ext4,",
                               "private"]
    assert text[-1] == "(1 other mount points are alike on both sides)"
    assert "<table>" in found._repr_html_()
    below = mnt.diff(1, 2, ("a", "b"), under="/tmp/pycontain-a")
    assert [row[0] for row in below.rows] == ["/tmp/pycontain-a", "/tmp/pycontain-a/in"]
    assert below.same == 0


def test_stacked_mounts_count_by_the_top_one(monkeypatch):
    monkeypatch.setattr(mnt.procfs, "mountinfo", lambda pid: [
        Mount.parse(line(1, 0, "/")), Mount.parse(line(2, 1, "/m", "shared:1")),
        Mount.parse(line(3, 2, "/m", "", "tmpfs"))])
    assert mnt.find_mount("/m").fstype == "tmpfs"
    assert mnt.is_mount_point("/m/") and not mnt.is_mount_point("/m/x")


def test_demo_dir_accepts_only_directories_inside_pycontain_temp_dirs(scratch, tmp_path):
    inside = scratch.tempdir("unit")
    (inside / "sub").mkdir()
    (inside / "escape").symlink_to("/etc")
    assert mnt.demo_dir(inside / "sub") == os.path.realpath(inside / "sub")
    for bad in ("/", "/tmp", "/etc", str(tmp_path), str(inside / "escape"),
                str(inside / "missing"), f"{inside}/../../etc"):
        with pytest.raises(SpecError) as caught:
            mnt.demo_dir(bad)
        assert caught.value.parameter == "path"
        assert "/pycontain-*" in str(caught.value) and "lesson 04" in str(caught.value)


def test_the_demonstration_helpers_refuse_host_paths_before_any_call():
    with recorded() as kernel:
        for helper, args in [(mnt.share, ("/mnt",)), (mnt.mount_tmpfs, ("/tmp",)),
                             (mnt.release, ("/",)), (mnt.enter_box, ("/", "private"))]:
            with pytest.raises(SpecError):
                helper(*args)
    assert kernel.calls == []


def test_the_box_unshares_then_changes_its_copy_then_mounts(scratch):
    base = mnt.demo_dir(scratch.tempdir("unit"))
    os.mkdir(os.path.join(base, mnt.FROM_BOX))
    with recorded() as kernel:
        mnt.enter_box(base, "slave")
        with pytest.raises(SpecError):
            mnt.enter_box(base, "sideways")
    assert kernel.names() == ["unshare", "mount", "mount"]
    assert kernel.calls[0] == ("unshare", (NEWNS,))
    assert kernel.calls[1] == ("mount", (None, base, None, MountFlag.MS_SLAVE, None))
    source, target, fstype, flags, data = kernel.calls[2][1]
    assert (source, target, fstype, data) == ("tmpfs", f"{base}/from-box", "tmpfs", "size=1m")


def test_share_binds_a_plain_directory_onto_itself_then_gives_it_its_own_peer_group(scratch):
    base = mnt.demo_dir(scratch.tempdir("unit"))
    with recorded() as kernel:
        mnt.share(base)
    assert kernel.calls == [("mount", (base, base, None, MountFlag.MS_BIND, None)),
                            ("mount", (None, base, None, MountFlag.MS_PRIVATE, None)),
                            ("mount", (None, base, None, MountFlag.MS_SHARED, None))]


class Unmounting(RecordingSyscalls):
    """A kernel whose umount2 removes the top mount at the target, and whatever `takes_along`
    says an unmount propagates to."""

    def __init__(self, table: list[Mount], takes_along: dict[str, str]) -> None:
        super().__init__()
        self.table = table
        self.takes_along = takes_along

    def umount2(self, target: str, flags: UmountFlag | int = 0) -> None:
        super().umount2(target, flags)
        for point in (target, self.takes_along.get(target)):
            matching = [m for m in self.table if m.mount_point == point]
            if matching:
                self.table.remove(matching[-1])


def test_release_unmounts_one_at_a_time_children_first(scratch, monkeypatch):
    base = mnt.demo_dir(scratch.tempdir("unit"))
    table = [Mount.parse(text) for text in [
        line(1, 0, "/"), line(2, 1, base, "shared:1"), line(3, 2, f"{base}/a", "", "tmpfs"),
        line(4, 2, f"{base}/b", "shared:1"), line(5, 2, f"{base}/b/c", "shared:1"),
        line(6, 1, base + "x")]]
    monkeypatch.setattr(mnt.procfs, "mountinfo", lambda pid: list(kernel.table))
    kernel = Unmounting(table, {f"{base}/b/c": f"{base}/a"})  # an unmount that propagates
    previous = syscalls.use(kernel)
    try:
        mnt.release(base, True)
        assert [m.mount_point for m in kernel.table] == ["/", base, base + "x"]
        mnt.release(base)
    finally:
        syscalls.use(previous)
    detach = UmountFlag.MNT_DETACH
    assert kernel.calls == [("umount2", (f"{base}/b/c", detach)),
                            ("umount2", (f"{base}/b", detach)), ("umount2", (base, detach))]
    assert [m.mount_point for m in kernel.table] == ["/", base + "x"]


def test_experiment_refuses_bad_input_before_starting_anything(scratch):
    base = scratch.tempdir("unit")
    with recorded() as kernel:
        with pytest.raises(SpecError) as kind:
            mnt.experiment(base, "public")
        with pytest.raises(SpecError) as path:
            mnt.experiment("/home", "private")
        with pytest.raises(SpecError) as not_shared:
            mnt.experiment(base, "private")  # a plain directory, not a shared mount point
    assert (kind.value.parameter, path.value.parameter, not_shared.value.parameter) == (
        "kind", "path", "base")
    assert "mnt.share" in str(not_shared.value)
    assert kernel.calls == [] and os.listdir(base) == []


# --- the exercise's calls, checked before any is made ---------------------------------------

BASE = "/tmp/pycontain-ex"


def good() -> list[tuple[object, ...]]:
    return [("unshare", NEWNS), ("mount", None, BASE, None, MountFlag.MS_PRIVATE),
            ("mount", "tmpfs", f"{BASE}/secret", "tmpfs", 0)]


def test_well_formed_calls_pass_as_tuples():
    assert validate_calls(good(), BASE) == good()
    root = [("unshare", NEWNS), ("mount", None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE)]
    assert validate_calls(root, BASE) == root


@pytest.mark.parametrize("calls,words", [
    (None, "returned None; return a list of tuples"),
    ([["unshare", NEWNS]], "return a list of tuples"),
    ([("chroot", BASE)], "needs only unshare, mount, umount2"),
    ([("unshare",)], "unshare takes one argument"),
    ([("mount", "tmpfs")], "mount takes (source, target, fstype, flags, data)"),
    ([("mount", None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE)],
     "would change the propagation of every mount of the host"),
    ([("unshare", NEWNS), ("mount", "tmpfs", "/mnt", "tmpfs", 0)], "reaches outside"),
    ([("unshare", NEWNS), ("mount", None, "/", None, MountFlag.MS_BIND)], "reaches outside"),
    ([("unshare", NEWNS), ("umount2", f"{BASE}/../etc")], "reaches outside"),
    # the earlier attempt's hole: the check, as root, remounting the host's /tmp read-only
    ([("unshare", NEWNS), ("mount", None, BASE, None, MountFlag.MS_REMOUNT | MountFlag.MS_RDONLY)],
     "MS_REMOUNT without MS_BIND changes the options of the whole filesystem"),
    ([("mount", "/tmp", f"{BASE}/secret", None, MountFlag.MS_BIND)], "is outside"),
    ([("mount", "/tmp", f"{BASE}/secret", None, MountFlag.MS_MOVE)], "is outside"),
    ([("unshare", NEWNS), ("mount", "/dev/sda1", f"{BASE}/secret", "ext4", 0)],
     "mounts only a tmpfs"),
    ([("unshare", NEWNS), ("mount", None, BASE, None, "MS_PRIVATE")], "the flags, is a number"),
])
def test_calls_that_are_malformed_or_reach_the_host_are_refused(calls, words):
    with pytest.raises(CheckFailed) as caught:
        validate_calls(calls, BASE)
    assert words in str(caught.value)


def test_a_bind_remount_of_its_own_mount_and_a_propagation_change_with_a_source_pass():
    calls = [("unshare", NEWNS),
             ("mount", None, BASE, None, MountFlag.MS_REMOUNT | MountFlag.MS_BIND
              | MountFlag.MS_RDONLY),
             ("mount", "none", "/", None, MountFlag.MS_REC | MountFlag.MS_SLAVE)]
    assert validate_calls(calls, BASE) == calls
