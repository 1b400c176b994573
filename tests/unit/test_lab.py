"""Lab's undo stack, the preflight's report, the refusal outside the lab VM, and the leftovers
every concept declares for `sweep()`."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pycontain import cgroups, lab, procfs, settings, state
from pycontain.errors import PreflightError
from pycontain.namespaces import ipc, mnt, net
from pycontain.network import bridge, nft
from pycontain.syscalls import UmountFlag
from pycontain.testing import recorded


def test_close_undoes_newest_first_keeps_going_and_is_idempotent():
    done = []
    scratch = lab.Lab(check=False)
    scratch.defer(lambda: done.append("first"), "undo first")
    scratch.defer(lambda: 1 / 0, "divide")
    scratch.defer(lambda: done.append("last"), "undo last")
    with pytest.warns(UserWarning, match=r"^Failed to divide: division by zero, ignoring$"):
        scratch.close()
    assert done == ["last", "first"]
    scratch.close()
    assert done == ["last", "first"]


def test_tempdir_is_prefixed_and_removed(tmp_path):
    with lab.Lab(check=False) as scratch:
        path = scratch.tempdir("demo")
        assert path.name.startswith("pycontain-demo-") and path.is_dir()
    assert not path.exists()


def test_outside_the_lab_vm_says_how_to_get_in(monkeypatch, tmp_path):
    monkeypatch.delenv(lab.ALLOW_HOST_VARIABLE, raising=False)
    monkeypatch.setattr(lab, "LAB_MARKER", tmp_path / "absent")
    monkeypatch.setattr(lab.os, "geteuid", lambda: 0)
    with pytest.raises(PreflightError) as info:
        lab.require_ready()
    assert "vagrant up" in str(info.value) and "PYCONTAIN_ALLOW_HOST=1" in str(info.value)
    monkeypatch.setenv(lab.ALLOW_HOST_VARIABLE, "1")
    lab.require_ready()


def test_not_root_is_refused_first(monkeypatch):
    monkeypatch.setattr(lab.os, "geteuid", lambda: 1000)
    with pytest.raises(PreflightError, match="needs root"):
        lab.require_ready()


def test_render_marks_failures_with_their_fix():
    checks = [lab.Check("root", True, "uid 0"), lab.Check("lab VM", False, "no", "vagrant up"),
              lab.Check("busybox", False, "absent", "apt-get install busybox-static", False)]
    text = lab.render(checks)
    assert "FAIL  lab VM" in text and "fix: vagrant up" in text
    assert "warn  busybox" in text and text.endswith("NOT ready: fix the FAIL lines above")
    assert not lab.ready(checks) and lab.ready(checks[:1] + checks[2:])


def test_the_html_table_says_nothing_to_do_on_a_green_line_and_the_fix_on_the_others():
    checks = [lab.Check("root", True, "uid 0", "run as root: sudo -i"),
              lab.Check("busybox", False, "absent", "apt-get install busybox-static", False)]
    rows = lab.table(checks)._repr_html_().split("<tr")[2:]  # after the header row
    assert rows[0].endswith("<td>nothing to do</td></tr>")  # not an empty cell (lesson 00)
    assert "sudo -i" not in rows[0]  # a fix for what is fine would mislead
    assert "<td>apt-get install busybox-static</td></tr>" in rows[1]


CGROUP2 = "30 23 0:26 / {root}/{where} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
MEMORY_V1 = "31 23 0:27 / {root}/memory rw,nosuid - cgroup cgroup rw,memory\n"


@pytest.mark.parametrize("mounts,own,mode", [
    ([CGROUP2.replace("{where}", "")], "0::/user.slice\n", "v2"),
    ([CGROUP2.replace("{where}", "unified"), MEMORY_V1], "4:memory:/a\n0::/a\n", "hybrid"),
    ([MEMORY_V1], "4:memory:/a\n", "v1")])
def test_cgroup_mode_is_what_detect_finds_mounted(tmp_path, mounts, own, mode):
    (tmp_path / "mountinfo").write_text("".join(m.format(root=tmp_path) for m in mounts))
    (tmp_path / "cgroup").write_text(own)
    for where in ("", "unified"):  # the cgroup2 mount's root lists what it offers
        (tmp_path / where).mkdir(exist_ok=True)
        (tmp_path / where / "cgroup.controllers").write_text("cpu memory pids\n")
    layout = cgroups.detect(mountinfo=str(tmp_path / "mountinfo"),
                            proc_cgroup=str(tmp_path / "cgroup"))
    assert lab.cgroup_mode(layout) == mode
    detail = lab._cgroup_detail(layout)
    assert detail == {"v2": "unified hierarchy, cpu memory pids",
                      "hybrid": f"v1 controllers, cgroup2 at {tmp_path}/unified",
                      "v1": "v1 controllers"}[mode]


def test_preflight_on_this_machine_names_every_check():
    names = [c.name for c in lab.preflight()]
    assert names[:2] == ["root", "lab VM"] and "namespaces" in names and "cgroups" in names


def test_a_stale_rootfs_is_not_ready_a_missing_one_only_warns(monkeypatch, tmp_path):
    monkeypatch.setenv("PYCONTAIN_ROOTFS", str(tmp_path / "rootfs"))
    monkeypatch.setenv(lab.ALLOW_HOST_VARIABLE, "1")

    def line():
        checks = lab.preflight()
        return next(c for c in checks if c.name == "embedded rootfs"), lab.ready(checks)

    missing, _ = line()
    assert (missing.ok, missing.required) == (False, False)
    (tmp_path / "rootfs/etc").mkdir(parents=True)  # an older pycontain's tree: no record
    (tmp_path / "rootfs/etc/os-release").write_text("ID=pycontain\n")
    stale, ready = line()
    assert (stale.ok, stale.required) == (False, True)
    assert stale.detail.startswith("stale: ") and "`pycontain rootfs`" in stale.fix
    assert not ready  # whatever the other lines say


def _lab_in_a_child() -> tuple[subprocess.Popen[str], Path]:
    """A child Python that makes a Lab temp dir, prints it and waits (never closing the Lab)."""
    child = subprocess.Popen(
        [sys.executable, "-c", "from pycontain.lab import Lab; import sys, time; "
         "print(Lab(check=False).tempdir('child'), flush=True); time.sleep(300)"],
        stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    return child, Path(child.stdout.readline().strip())


def _kill(child: subprocess.Popen[str]) -> None:
    child.kill()  # SIGKILL: no atexit handler runs, as when a kernel is killed or crashes
    child.wait()


def test_a_new_lab_removes_the_dirs_of_a_dead_labs_process_only():
    dead, dead_dir = _lab_in_a_child()
    live, live_dir = _lab_in_a_child()
    try:
        assert lab.owner(dead_dir.name) == dead.pid and lab.owner(live_dir.name) == live.pid
        _kill(dead)
        assert dead_dir.is_dir()                         # nothing removed it at the kill
        mounted = dead_dir / "mounted"
        if os.geteuid() == 0:  # lesson 04 mounts inside its temp dir: rmtree must not go there
            mounted.mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "pycontain-test", str(mounted)], check=True)
            (mounted / "file").write_text("on the tmpfs")
        with lab.Lab(check=False) as scratch:            # the next lesson's setup cell
            assert f"removed dir {dead_dir}" in scratch.swept
        assert not dead_dir.exists()
        assert not any(str(dead_dir) in m.mount_point for m in procfs.mountinfo("self"))
        assert live_dir.is_dir()                         # another live notebook's: kept
    finally:
        _kill(live)
        if dead.poll() is None:
            _kill(dead)
    lab.sweep_orphans()                                  # the live child is dead now: its turn
    assert not live_dir.exists()


# --- leftovers: each kind found and removed by its concept, in one ordered list ---------------

def test_the_kinds_in_the_order_sweep_removes_them():
    assert [kind.name for kind in lab.kinds()] == [
        "forkserver", "container", "mount", "loop", "dir", "netns", "link", "cgroup", "shm",
        "mqueue", "netstate", "nft"]
    assert set(KIND_TESTS) == {kind.name for kind in lab.kinds()}  # each kind is tested below


def _mounted(point: str) -> procfs.Mount:
    return procfs.Mount.parse(f"40 30 0:50 / {point} rw - tmpfs tmpfs rw")


def mount_kind(tmp_path, monkeypatch):
    mounts = [_mounted("/"), _mounted("/tmp/pycontain-a"), _mounted("/tmp/pycontain-a/m"),
              _mounted("/home")]
    assert mnt.leftover_mounts(mounts) == ["/tmp/pycontain-a/m", "/tmp/pycontain-a"]
    with recorded() as kernel:
        mnt.remove_mount("/tmp/pycontain-a/m")
    assert kernel.calls == [("umount2", ("/tmp/pycontain-a/m", UmountFlag.MNT_DETACH))]


def dir_kind(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / "pycontain-b" / "inside").mkdir(parents=True)
    (tmp_path / "pycontain-layer-a").mkdir()
    (tmp_path / "someone-else").mkdir()
    assert lab.leftover_dirs() == [f"{tmp_path}/pycontain-b", f"{tmp_path}/pycontain-layer-a"]
    lab.remove_dir(f"{tmp_path}/pycontain-b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pycontain-layer-a", "someone-else"]


def netns_kind(tmp_path, monkeypatch):
    (tmp_path / "pycontain-test-1").write_text("")
    (tmp_path / "other").write_text("")
    assert net.leftover_netns(str(tmp_path)) == [f"{tmp_path}/pycontain-test-1"]
    with recorded() as kernel:
        net.remove_netns(f"{tmp_path}/pycontain-test-1")
    assert kernel.names() == ["umount2"] and not (tmp_path / "pycontain-test-1").exists()
    assert net.leftover_netns(str(tmp_path / "absent")) == []  # no ip netns yet: none


def link_kind(tmp_path, monkeypatch):
    for name in ("pycontain-br0", "pycontain-1a2b3", "eth0", "lo"):
        (tmp_path / name).mkdir()
    assert net.leftover_links(str(tmp_path)) == ["pycontain-1a2b3", "pycontain-br0"]
    ran = []
    monkeypatch.setattr(subprocess, "run", lambda argv, **kw: ran.append(argv))
    net.remove_link("pycontain-1a2b3")
    assert ran == [["ip", "link", "delete", "pycontain-1a2b3"]]


def cgroup_kind(tmp_path, monkeypatch):
    monkeypatch.delenv(settings.CGROUP_PARENT_VARIABLE, raising=False)
    own = tmp_path / "user.slice"
    for path in ("pycontain-ctr-1/pycontain-inner", "pycontain-self", "session.scope"):
        (own / path).mkdir(parents=True)
    (tmp_path / "pycontain-elsewhere").mkdir()  # not beneath this process's cgroup: not ours
    layout = cgroups.Layout("v2", (cgroups.Hierarchy(2, str(tmp_path), "/", (), "/user.slice"),))
    found = cgroups.base.leftover_cgroups(layout)
    assert found == [f"{own}/pycontain-ctr-1/pycontain-inner", f"{own}/pycontain-ctr-1"]
    for path in found:  # plain directories: no process to kill, nothing to wait for
        cgroups.base.remove_cgroup(path)
    assert sorted(p.name for p in own.iterdir()) == ["pycontain-self", "session.scope"]


def shm_kind(tmp_path, monkeypatch):
    shmid = ipc.create_segment(ipc.new_key())  # ours, in this IPC namespace: safe to remove
    try:
        assert str(shmid) in ipc.leftover_segments()
    finally:
        ipc.remove_segment(str(shmid))
    assert str(shmid) not in ipc.leftover_segments()


def mqueue_kind(tmp_path, monkeypatch):
    (tmp_path / "pycontain-q-1").write_text("")
    (tmp_path / "other-q").write_text("")
    assert ipc.leftover_queues(str(tmp_path)) == [f"{tmp_path}/pycontain-q-1"]
    ipc.remove_queue_file(f"{tmp_path}/pycontain-q-1")
    assert ipc.leftover_queues(str(tmp_path)) == []
    assert ipc.leftover_queues(str(tmp_path / "absent")) == []  # no mqueue mounted: none


def netstate_kind(tmp_path, monkeypatch):
    monkeypatch.setattr(bridge, "STATE", tmp_path / "pycontain-net")
    assert bridge.leftover_state() == []
    (tmp_path / "pycontain-net").mkdir()
    assert bridge.leftover_state() == [f"{tmp_path}/pycontain-net"]
    # removing it is bridge.teardown(), proven on the real kernel in tests/integration/test_net
    done = []
    monkeypatch.setattr(bridge, "teardown", lambda: done.append("teardown"))
    bridge.remove_state(f"{tmp_path}/pycontain-net")
    assert done == ["teardown"]


def nft_kind(tmp_path, monkeypatch):
    ran = []

    def fake_nft(*args, script=None):
        ran.append(args)
        listed = args[:1] == ("list",)
        return subprocess.CompletedProcess(args, 0, "table ip pycontain {}" if listed else "", "")

    monkeypatch.setattr(nft, "_nft", fake_nft)
    monkeypatch.setattr(nft.shutil, "which", lambda name: f"/usr/sbin/{name}")
    assert nft.leftover_tables() == ["table ip pycontain"]
    nft.remove_table("table ip pycontain")
    assert ran[-1] == ("delete", "table", "ip", "pycontain")


def loop_kind(tmp_path, monkeypatch):
    from pycontain.fs import loop

    for device, backing in [("loop0", "/tmp/pycontain-io-a/disk.img"), ("loop1", "/srv/x.img"),
                            ("loop2", "/tmp/pycontain-io-b/disk.img (deleted)")]:
        (tmp_path / device / "loop").mkdir(parents=True)
        (tmp_path / device / "loop" / "backing_file").write_text(backing + "\n")
    (tmp_path / "loop3").mkdir()  # a free device has no loop/ directory
    assert loop.leftover_loops(str(tmp_path)) == ["/dev/loop0", "/dev/loop2"]
    ran = []
    monkeypatch.setattr(loop.subprocess, "run", lambda argv, **kw: ran.append(argv) or
                        subprocess.CompletedProcess(argv, 0, "", ""))
    loop.remove_loop("/dev/loop0")
    assert ran == [("losetup", "--detach", "/dev/loop0")]


def container_kind(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.RUN_DIR_VARIABLE, str(tmp_path))
    gone = {"pid": 1, "start_time": -1, "boot_id": state.boot_id()}  # never this pid 1
    state.create("a" * 64, "web")
    state.update("a" * 64, supervisor=gone)
    os.symlink("b" * 64, tmp_path / "names" / "stale")  # its container is gone
    assert state.leftover_containers() == [f"{tmp_path}/{'a' * 64}", f"{tmp_path}/names/stale"]
    for path in state.leftover_containers():
        state.remove_container(path)
    assert state.leftover_containers() == [] and os.listdir(tmp_path / "names") == []
    with pytest.raises(ValueError, match="not a container's run directory"):
        state.remove_container(str(tmp_path / "names"))


def forkserver_kind(tmp_path, monkeypatch):
    """A process whose argv names a fork server's owner that is not its parent outlived its
    owner; one whose parent is the owner it names is a live server, not a leftover."""
    import signal
    import sys

    from pycontain import forkserver
    from pycontain.forkserver import _SERVE

    # a look-alike that sleeps: its -c ends as a server's does, in a comment
    sleep = [sys.executable, "-I", "-S", "-c", f"import time; time.sleep(60)  # {_SERVE}",
             settings.FORK_SERVER_TAG]
    orphan = subprocess.Popen([*sleep, "1"])  # its parent is us, not pid 1: outlived "1"
    live = subprocess.Popen([*sleep, str(os.getpid())])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                              settings.FORK_SERVER_TAG, "1"])  # the word alone: not a server
    try:
        assert str(other.pid) not in forkserver.leftover_servers()
        found = forkserver.leftover_servers()
        assert str(orphan.pid) in found and str(live.pid) not in found
        forkserver.remove_server(str(live.pid))  # not a leftover: kept
        forkserver.remove_server(str(orphan.pid))
        assert orphan.wait(timeout=10) == -signal.SIGKILL and live.poll() is None
        forkserver.remove_server(str(orphan.pid))  # gone (a zombie, reaped): nothing to do
    finally:
        for process in (orphan, live, other):
            process.kill()
            process.wait()


KIND_TESTS = {"forkserver": forkserver_kind, "container": container_kind, "mount": mount_kind,
              "loop": loop_kind,
              "dir": dir_kind, "netns": netns_kind,
              "link": link_kind,
              "cgroup": cgroup_kind, "shm": shm_kind, "mqueue": mqueue_kind,
              "netstate": netstate_kind, "nft": nft_kind}


@pytest.mark.parametrize("kind", KIND_TESTS)
def test_each_kind_of_leftover_is_found_and_removed(kind, tmp_path, monkeypatch):
    KIND_TESTS[kind](tmp_path, monkeypatch)


def test_sweep_lists_the_rest_again_once_the_containers_are_removed(monkeypatch):
    """A container's removal releases its cgroup and layer itself: the sweep must not then
    report them as leftovers it could not remove."""
    left = {"container": ["/run/pycontain/c"], "dir": ["/tmp/pycontain-layer-c"]}

    def remove_container(path):
        left["container"].remove(path)
        left["dir"].clear()  # released with it

    monkeypatch.setattr(lab, "kinds", lambda: [
        lab.Kind("container", lambda: list(left["container"]), remove_container),
        lab.Kind("dir", lambda: list(left["dir"]), lambda path: 1 / 0)])
    assert lab.sweep() == ["removed container /run/pycontain/c"]


def test_sweep_removes_each_item_with_its_kind_and_reports_failures(monkeypatch):
    removed = []
    fake = [lab.Kind("dir", lambda: ["/tmp/pycontain-x"], removed.append),
            lab.Kind("shm", lambda: ["7"], lambda shmid: 1 / 0)]
    monkeypatch.setattr(lab, "kinds", lambda: fake)
    assert lab.leftovers() == ["dir /tmp/pycontain-x", "shm 7"]
    assert lab.sweep() == ["removed dir /tmp/pycontain-x",
                           "could not remove shm 7: division by zero, ignoring"]
    assert removed == ["/tmp/pycontain-x"]
