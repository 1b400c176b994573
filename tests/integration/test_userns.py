"""Lesson 09 on the real kernel: root inside a user namespace is an unprivileged uid outside."""

from __future__ import annotations

import errno
import os
import pwd
import shutil

import pytest

import pycontain
from pycontain.errors import SpecError, SyscallError
from pycontain.namespaces import user

BOX = {"user", "uts", "mnt", "pid"}


@pytest.fixture
def shared_dir():
    """A host directory the container may write into, removed afterwards."""
    path = f"/tmp/pycontain-userns-{os.urandom(4).hex()}"
    os.mkdir(path)
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path)


def test_root_inside_is_uid_100000_outside():
    with pycontain.spawn(["sleep", "60"], namespaces=BOX) as box:
        assert user.outside_ids(box.pid) == (100000, 100000)
        assert user.read_map(box.pid, "uid") == ((0, 100000, 65536),)
        assert user.read_map(box.pid, "gid") == ((0, 100000, 65536),)
        assert box.namespaces()["user"] != pycontain.procfs.namespace("self", "user")
    inside = pycontain.run(["sh", "-c", "grep -E '^(Uid|Gid|Groups):' /proc/self/status"],
                           namespaces=BOX, timeout_s=60)
    assert inside.stdout.split() == ["Uid:", *["0"] * 4, "Gid:", *["0"] * 4, "Groups:"]


def test_a_file_made_by_root_inside_belongs_to_the_mapped_uid_outside(shared_dir):
    made = f"{shared_dir}/made"
    done = pycontain.run(["sh", "-c", f"touch {made} && stat -c %u:%g {made}"],
                         namespaces=BOX, timeout_s=60)
    assert (done.stdout, done.exit_code) == ("0:0\n", 0)
    seen = os.stat(f"{shared_dir}/made")
    assert (seen.st_uid, seen.st_gid) == (100000, 100000)


def test_the_mapped_root_cannot_open_a_host_root_only_file(shared_dir):
    secret = f"{shared_dir}/secret"
    with open(secret, "w") as f:
        f.write("host root only\n")
    os.chmod(secret, 0o600)
    done = pycontain.run(["sh", "-c", f"stat -c %u {secret}; cat {secret}"], namespaces=BOX,
                         timeout_s=60)
    assert done.stdout == "65534\n"  # the host's root is unmapped: nobody
    assert "Permission denied" in done.stderr and done.exit_code == 1


def test_the_mapped_root_may_rename_and_mount_in_its_own_namespaces():
    done = pycontain.run(["sh", "-c", "hostname box-9 && hostname && mount -t tmpfs t /mnt "
                          "&& grep -c ' /mnt tmpfs' /proc/self/mounts"],
                         namespaces=BOX, timeout_s=60)
    assert (done.stdout, done.exit_code) == ("box-9\n1\n", 0)


def test_a_map_is_written_once():
    with pycontain.spawn(["sleep", "60"], namespaces=BOX) as box:
        with pytest.raises(SyscallError) as info:
            user.write_maps(box.pid, [(0, 200000, 65536)])
        assert info.value.errno == errno.EPERM
        assert info.value.call == "write uid_map" and "lesson 09" in str(info.value)
        assert user.read_map(box.pid, "uid") == ((0, 100000, 65536),)


def test_unprivileged_gid_map_needs_setgroups_deny():
    worked, said = user.map_self_unprivileged(deny_setgroups=False)
    assert not worked and "write gid_map" in said and "EPERM" in said
    assert user.map_self_unprivileged(deny_setgroups=True) == (True, "uid 0 gid 0")


def test_bad_maps_are_refused_before_anything_is_created():
    before = set(os.listdir("/proc"))
    for bad in ([(0, 100000, 0)], [(0, 100000, 10), (5, 1, 10)], [(0, 2**32 - 2, 2)]):
        with pytest.raises(SpecError):
            pycontain.spawn(["true"], namespaces=BOX, uid_map=bad)
    assert not {p for p in set(os.listdir("/proc")) - before
                if p.isdigit() and os.path.exists(f"/proc/{p}/uid_map")
                and user.read_map(p) != user.read_map("self")}


def test_with_the_embedded_rootfs_and_the_cli(cli, embedded_rootfs):
    done = pycontain.run(["sh", "-c", "id -u; touch /x; stat -c %u /x /bin/busybox"],
                         namespaces=BOX | {"net"}, rootfs=embedded_rootfs, overlay=True,
                         timeout_s=60)
    assert (done.stdout, done.exit_code) == ("0\n0\n65534\n", 0)
    done = cli("run", "--map-root", "200000", "--namespaces", "uts,pid,mnt", "--",
               "sh", "-c", "id -u; cat /proc/self/uid_map")
    assert done.stdout.split() == ["0", "0", "200000", "65536"] and done.returncode == 0


def test_no_test_user_is_left():
    assert not [p.pw_name for p in pwd.getpwall() if p.pw_name.startswith("pycontain-")]


# --- the lesson's checks -----------------------------------------------------------------------

def _check_dirs() -> set[str]:
    return {d for d in os.listdir("/tmp") if d.startswith("pycontain-check09-")}


@pytest.fixture
def nothing_left():
    """The check leaves no directory and no container of its own behind."""
    from pycontain import runtime

    dirs, boxes = _check_dirs(), set(runtime.unwaited())
    yield
    assert _check_dirs() <= dirs
    assert set(runtime.unwaited()) <= boxes


def maps_root_and_keeps(argv, outside, keep):
    return pycontain.run(argv, namespaces=BOX, uid_map=[(0, outside, 1), (keep, keep, 1)])


def test_the_check_passes_root_mapped_and_one_user_kept(nothing_left):
    from pycontain.checks import lesson09

    passed = lesson09.check_root_maps_to(maps_root_and_keeps)
    assert "on both sides" in passed
    assert "def write_maps" in passed._repr_markdown_()  # the library's, once passed
    assert "def write_maps" not in str(passed)


@pytest.mark.parametrize("uid_map,namespaces,teaching", [
    (None, {"uts", "mnt", "pid"}, "no user namespace of its own"),
    (None, BOX, "pycontain's default map, not yours"),
    ("root only", BOX, "65534 is \"nobody\""),  # keep is unmapped
    ("overlap", BOX, "does root's line's COUNT reach the other id?"),
    ("reversed", BOX, "no line of your map has 0 as its *inside* id"),
])
def test_the_check_names_the_wrong_turn(nothing_left, uid_map, namespaces, teaching):
    from pycontain.checks import CheckFailed, lesson09

    def wrong(argv, outside, keep):
        lines = uid_map if not isinstance(uid_map, str) else \
            {"overlap": [(0, outside, 65536), (keep, keep, 1)],
             "reversed": [(outside, 0, 1), (keep, keep, 1)],
             "root only": [(0, outside, 65536)]}[uid_map]
        return pycontain.run(argv, namespaces=namespaces, **({"uid_map": lines} if lines
                                                             else {}))

    with pytest.raises(CheckFailed) as info:
        lesson09.check_root_maps_to(wrong)
    assert teaching in str(info.value)
    assert "uid_map=[" not in str(info.value)  # where to look, never the code to write


def test_a_learner_exception_leaves_no_container_behind(nothing_left):
    from pycontain.checks import CheckFailed, lesson09

    started = []

    def raises_after_spawn(argv, outside, keep):
        started.append(pycontain.spawn(["sleep", "300"], namespaces=BOX))
        raise RuntimeError("oops")

    with pytest.raises(CheckFailed, match="the check stopped the 1 container"):
        lesson09.check_root_maps_to(raises_after_spawn)
    assert not started[0].running and not os.path.exists(f"/proc/{started[0].pid}")


def reads_as_owner(argv, path):
    return pycontain.run(argv, namespaces=BOX, uid_map=[(0, os.stat(path).st_uid, 1)])


def test_the_stretch_passes_root_mapped_to_the_files_owner(nothing_left):
    from pycontain.checks import lesson09

    assert "with the host's root unmapped" in lesson09.check_reads_as_owner(reads_as_owner)


@pytest.mark.parametrize("namespaces,lines,teaching", [
    ({"mnt", "pid"}, None, "its root was the host's real root"),
    (BOX, "and root", "maps the host's uid 0 into the container"),
    (BOX, None, "could not read the file"),  # the default map: 100000 is not the owner
])
def test_the_stretch_names_the_wrong_turn(nothing_left, namespaces, lines, teaching):
    from pycontain.checks import CheckFailed, lesson09

    def wrong(argv, path):
        given = [(0, os.stat(path).st_uid, 1), (1, 0, 1)] if lines else None
        return pycontain.run(argv, namespaces=namespaces,
                             **({"uid_map": given} if given else {}))

    with pytest.raises(CheckFailed, match=teaching):
        lesson09.check_reads_as_owner(wrong)
