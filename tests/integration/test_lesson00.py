"""Lesson 00's checks on this machine: the undo a learner registers with a Lab, the mount and
directory of the stretch, and the wrong turns each check names (issue 18)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pycontain import procfs
from pycontain.checks import CheckFailed, lesson00
from pycontain.lab import Lab


@pytest.fixture
def notes(tmp_path):
    path = Path(f"/tmp/pycontain-notes-test{os.getpid()}")
    path.mkdir()
    yield path
    assert not path.exists(), f"the check left {path} behind"


def test_a_registered_removal_passes(notes):
    practice = Lab(check=False)
    practice.defer(lambda: shutil.rmtree(notes), f"remove {notes}")
    assert "removed" in lesson00.check_left_nothing_behind(practice, notes)


def test_nothing_registered_is_named(notes):
    with pytest.raises(CheckFailed, match="nothing was registered with practice.defer"):
        lesson00.check_left_nothing_behind(Lab(check=False), notes)


def test_a_removal_called_at_once_is_refused_and_then_named(notes):
    practice = Lab(check=False)
    with pytest.raises(TypeError, match="called now instead of handed over"):
        practice.defer(shutil.rmtree(notes), f"remove {notes}")
    with pytest.raises(CheckFailed, match="already gone before practice.close()"):
        lesson00.check_left_nothing_behind(practice, notes)


def test_an_undo_that_does_nothing_is_named(notes):
    practice = Lab(check=False)
    practice.defer(lambda: shutil.rmtree, f"remove {notes}")
    with pytest.raises(CheckFailed, match="names a function without calling it"):
        lesson00.check_left_nothing_behind(practice, notes)


def test_an_undo_that_fails_is_named_with_its_error(notes):
    (notes / "a-file").write_text("x")
    practice = Lab(check=False)
    practice.defer(notes.rmdir, f"remove {notes}")  # not empty: ENOTEMPTY
    with pytest.raises(CheckFailed, match=f"it failed: Failed to remove {notes}.*not empty"):
        lesson00.check_left_nothing_behind(practice, notes)


def test_the_empty_rootfs_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PYCONTAIN_ROOTFS", str(tmp_path))
    with pytest.raises(CheckFailed, match="is still empty"):
        lesson00.check_fully_green()


def mounts_on(path: Path) -> list[str]:
    return [m.fstype for m in procfs.mountinfo() if m.mount_point == str(path)]


def mount_and_register(practice, path, *, directory_last=False):
    path.mkdir()
    remove = (path.rmdir, f"remove {path}")
    if not directory_last:
        practice.defer(*remove)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(path)], check=True)
    practice.defer(lambda: subprocess.run(["umount", str(path)], check=True), f"unmount {path}")
    if directory_last:
        practice.defer(*remove)
    made.append(path)


made: list[Path] = []


@pytest.fixture(autouse=True)
def nothing_left():
    made.clear()
    yield
    for path in made:
        assert not path.exists() and mounts_on(path) == [], f"{path} was left behind"


def test_the_stretch_passes_the_mount_undone_before_its_directory():
    assert "newest first" in lesson00.check_mounted_and_undone(mount_and_register)


def test_the_stretch_names_the_wrong_order():
    with pytest.raises(CheckFailed, match="EBUSY"):
        lesson00.check_mounted_and_undone(
            lambda p, path: mount_and_register(p, path, directory_last=True))


def test_the_stretch_names_a_missing_mount():
    def no_mount(practice, path):
        path.mkdir()
        practice.defer(path.rmdir, f"remove {path}")
        made.append(path)

    with pytest.raises(CheckFailed, match="are none: mount one tmpfs"):
        lesson00.check_mounted_and_undone(no_mount)


def test_a_learner_exception_in_the_stretch_leaves_nothing():
    def raises(practice, path):
        mount_and_register(practice, path)
        raise RuntimeError("oops")

    with pytest.raises(CheckFailed, match="raised RuntimeError: oops"):
        lesson00.check_mounted_and_undone(raises)
