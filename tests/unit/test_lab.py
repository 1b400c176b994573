"""Lab's undo stack, the preflight's report, and the refusal outside the lab VM."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pycontain import lab, procfs
from pycontain.errors import PreflightError


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


@pytest.mark.parametrize("files,mode", [(["cgroup.controllers"], "v2"),
                                        (["unified/cgroup.controllers"], "hybrid"), ([], "v1")])
def test_cgroup_mode(tmp_path, files, mode):
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("")
    assert lab.cgroup_mode(str(tmp_path)) == mode


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
