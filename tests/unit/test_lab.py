"""Lab's undo stack, the preflight's report, and the refusal outside the lab VM."""

from __future__ import annotations

import pytest

from pycontain import lab
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
