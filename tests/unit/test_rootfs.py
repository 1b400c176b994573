"""Finding commands the way execvp(3) will inside a rootfs, reading ldd(1), refusing a bad
rootfs before anything is created, and the order in which `enter` prepares and switches it."""

from __future__ import annotations

import json
import os

import pytest

from pycontain import syscalls
from pycontain.errors import SpecError
from pycontain.fs import rootfs
from pycontain.syscalls import MountFlag, UmountFlag
from pycontain.testing import recorded


def test_find_command_searches_the_container_path_without_following_links(tmp_path):
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "bin").mkdir()
    os.symlink("/bin/busybox", tmp_path / "bin/ls")  # dangling on the host, fine inside
    (tmp_path / "usr/bin/tool").write_text("")
    assert rootfs.find_command("ls", str(tmp_path)) == "/bin/ls"
    assert rootfs.find_command("tool", str(tmp_path)) == "/usr/bin/tool"
    assert rootfs.find_command("/bin/ls", str(tmp_path)) == "/bin/ls"
    assert rootfs.find_command("cat", str(tmp_path)) is None


def test_ldd_output_with_and_without_libraries():
    text = ("\tlinux-vdso.so.1 (0x00007ffc)\n"
            "\tlibselinux.so.1 => /lib/x86_64-linux-gnu/libselinux.so.1 (0x00007f)\n"
            "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n"
            "\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n")
    assert rootfs.parse_ldd(text) == ["/lib/x86_64-linux-gnu/libselinux.so.1",
                                      "/lib/x86_64-linux-gnu/libc.so.6",
                                      "/lib64/ld-linux-x86-64.so.2"]
    assert rootfs.parse_ldd("\tstatically linked\n") == []


def test_default_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PYCONTAIN_ROOTFS", str(tmp_path / "r"))
    assert rootfs.default_path() == tmp_path / "r"


# --- validation before anything is created, and the recorded root switch (lesson 05) ---------


def a_rootfs(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/sh").symlink_to("busybox")
    return tmp_path


def test_validate_returns_the_real_path(tmp_path):
    (tmp_path / "r").mkdir()
    root = a_rootfs(tmp_path / "r")
    os.symlink(root, tmp_path / "link")
    assert rootfs.validate(str(tmp_path / "link")) == str(root.resolve())


@pytest.mark.parametrize("name", rootfs.MOUNT_POINTS)
def test_mount_points_that_are_symlinks_are_refused(tmp_path, name):
    root = a_rootfs(tmp_path)
    (root / name).symlink_to("/")
    with pytest.raises(SpecError, match=f"whose /{name} is a directory, not a symlink"):
        rootfs.validate(str(root))


def test_a_tree_without_bin_sh_is_refused_with_the_way_to_build_one(tmp_path):
    with pytest.raises(SpecError, match="a shell at /bin/sh") as info:
        rootfs.validate(str(tmp_path))
    assert "pycontain rootfs" in str(info.value)


@pytest.mark.parametrize("switch", ["pivot", "", ["chdir"], [("sethostname", ("x",))],
                                    [("mount", ({"a": 1},))]])
def test_bad_root_switches_are_refused(switch):
    with pytest.raises(SpecError, match="`root_switch` must be one of 'pivot_root', 'chroot'"):
        rootfs.validate_switch(switch)


def test_record_writes_down_the_calls_with_plain_flags():
    def pivot(root):
        syscalls.chdir(root)
        syscalls.pivot_root(".", ".")
        syscalls.umount2(".", UmountFlag.MNT_DETACH)

    steps = rootfs.record(pivot, "/r")
    assert steps == [["chdir", ["/r"]], ["pivot_root", [".", "."]], ["umount2", [".", 2]]]
    assert all(type(a) is not UmountFlag for _, args in steps for a in args)  # marshal-able
    assert syscalls.chdir.__self__ is syscalls.LINUX  # type: ignore[attr-defined]


def test_record_refuses_a_call_already_bound_to_the_real_kernel():
    with pytest.raises(SpecError, match="lambda root"):
        rootfs.record(syscalls.chroot, "/r")


def test_enter_prepares_then_pivots_then_detaches(tmp_path):
    root = str(a_rootfs(tmp_path))
    with recorded() as kernel:
        rootfs.enter(root, mount_proc=True, own_net=True, read_only=True)
    targets = [args[1] for name, args in kernel.calls if name == "mount"]
    assert targets[:3] == [root, f"{root}/proc", f"{root}/dev"]
    assert {f"{root}/dev/pts", f"{root}/dev/shm", f"{root}/sys", f"{root}/tmp"} <= set(targets)
    assert ("mount", ("sysfs", f"{root}/sys", "sysfs", MountFlag.MS_RDONLY | MountFlag.MS_NOSUID
                      | MountFlag.MS_NODEV | MountFlag.MS_NOEXEC, None)) in kernel.calls
    remount = ("mount", (None, root, None, MountFlag.MS_REMOUNT | MountFlag.MS_BIND
                         | MountFlag.MS_RDONLY, None))
    assert kernel.calls.index(remount) < kernel.names().index("pivot_root")  # before the switch
    assert kernel.calls[-4:] == [("chdir", (root,)), ("pivot_root", (".", ".")),
                                 ("umount2", (".", UmountFlag.MNT_DETACH)), ("chdir", ("/",))]
    assert sorted(os.listdir(f"{root}/dev")) == sorted(
        [*rootfs.DEVICES, *rootfs.DEV_LINKS, "pts", "shm"])


def test_without_a_network_namespace_the_hosts_sys_is_bound_read_only(tmp_path):
    root = str(a_rootfs(tmp_path))
    with recorded() as kernel:
        rootfs.enter(root, mount_proc=False, switch="chroot")
    sys_calls = [args for name, args in kernel.calls if name == "mount" and
                 args[1] == f"{root}/sys"]
    assert sys_calls[0] == ("/sys", f"{root}/sys", None, MountFlag.MS_BIND, None)
    assert sys_calls[1][3] & MountFlag.MS_RDONLY and sys_calls[1][3] & MountFlag.MS_REMOUNT
    assert kernel.calls[-2:] == [("chdir", (root,)), ("chroot", (".",))]
    assert "proc" not in [args[2] for name, args in kernel.calls if name == "mount"]


def test_spec_options_of_lesson_05_need_a_rootfs_and_plain_values(tmp_path):
    from pycontain.runtime import Spec

    root = a_rootfs(tmp_path)
    spec = Spec(["sh"], rootfs=root, read_only=True, root_switch="chroot")
    assert (spec.read_only, spec.root_switch) == (True, "chroot")
    assert spec.to_wire()["read_only"] is True and spec.to_wire()["root_switch"] == "chroot"
    assert "root_switch" not in repr(Spec(["sh"], rootfs=root))  # defaults stay quiet
    with pytest.raises(SpecError, match="`read_only` must be used only with a rootfs"):
        Spec(["sh"], read_only=True)
    with pytest.raises(SpecError, match="`root_switch` must be used only with a rootfs"):
        Spec(["sh"], root_switch="chroot")
    with pytest.raises(SpecError, match="`read_only` must be True or False"):
        Spec(["sh"], rootfs=root, read_only="yes")
    with pytest.raises(SpecError, match="`root_switch` must be one of"):
        Spec(["sh"], rootfs=root, root_switch="switch_root")


# --- the embedded rootfs records how it was built; a tree that no longer matches is stale -----


def built_tree(tmp_path, **record):
    """A tree as `build()` leaves it, with `record` changed in its manifest."""
    (tmp_path / "rootfs/etc").mkdir(parents=True)
    root = a_rootfs(tmp_path / "rootfs")
    manifest = {"recipe": rootfs.RECIPE, "origin": rootfs.origin(), "version": "x", **record}
    (root / rootfs.MANIFEST).write_text(json.dumps(manifest))
    return root


def test_nothing_or_an_empty_directory_is_missing(tmp_path):
    assert rootfs.status(tmp_path / "none").state == "missing"
    assert rootfs.status(tmp_path).state == "missing"


def test_the_tree_a_build_would_make_now_is_ready(tmp_path):
    assert rootfs.status(built_tree(tmp_path)).state == "ready"


def test_another_recipe_a_lost_shell_or_no_record_make_a_pycontain_tree_stale(tmp_path):
    old = built_tree(tmp_path, recipe=rootfs.RECIPE - 1)
    assert rootfs.status(old)[:2] == ("stale", f"built by recipe {rootfs.RECIPE - 1}, this "
                                               f"pycontain builds recipe {rootfs.RECIPE}")
    (old / rootfs.MANIFEST).write_text(json.dumps({"recipe": rootfs.RECIPE,
                                                   "origin": rootfs.origin()}))
    (old / "bin/sh").unlink()
    assert rootfs.status(old).why == "incomplete: it has no /bin/sh"
    (old / rootfs.MANIFEST).unlink()  # as pycontain built it before the manifest existed
    (old / "etc/os-release").write_text('NAME="pycontain embedded rootfs"\nID=pycontain\n')
    assert rootfs.status(old) == ("stale", "built by an older pycontain, with no record of how",
                                  None)


def test_a_changed_origin_makes_the_tree_stale(tmp_path):
    now = rootfs.origin()
    changed = {**now, "programs": {}} if now["from"] == "host binaries" else \
        {**now, "size": now["size"] + 1}
    assert rootfs.status(built_tree(tmp_path, origin=changed)).state == "stale"


def test_files_pycontain_did_not_build_are_foreign_and_never_replaced(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/notes.txt").write_text("keep me")
    assert rootfs.status(tmp_path / "mine").state == "foreign"
    with pytest.raises(SpecError, match="`rootfs` must be an empty or new directory") as info:
        rootfs.build(tmp_path / "mine")
    assert "PYCONTAIN_ROOTFS" in str(info.value)
    assert os.listdir(tmp_path / "mine") == ["notes.txt"]


def test_a_missing_tool_is_named_with_where_to_get_it(tmp_path):
    root = a_rootfs(tmp_path)
    assert rootfs.require_tools(root, "sh") == str(root)
    with pytest.raises(SpecError, match="a root filesystem with sh, httpd") as info:
        rootfs.require_tools(root, "sh", "httpd")
    assert "it has no httpd" in str(info.value) and "pycontain rootfs" in str(info.value)
    assert "busybox" in str(info.value)


def test_the_checks_of_lessons_05_and_08_name_the_tool_the_rootfs_lacks(monkeypatch, tmp_path):
    from pycontain.checks import CheckFailed, lesson05, lesson08

    monkeypatch.setenv("PYCONTAIN_ROOTFS", str(a_rootfs(tmp_path)))  # not ours: used as it is
    with pytest.raises(CheckFailed, match="it has no busybox, nsenter;"):
        lesson05.check_pivot_into(lambda root: None)
    with pytest.raises(CheckFailed, match="it has no httpd;"):
        lesson08.check_published(lambda practice, port: None, 18088)
