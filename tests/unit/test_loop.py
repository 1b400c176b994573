"""fs.loop: the loop devices pycontain attached are found by their backing file (below a dead
notebook's directory only, when asked), and a disk is refused outside pycontain's own
directories before anything is attached."""

from __future__ import annotations

import pytest

from pycontain.errors import SpecError
from pycontain.fs import loop


def fake_sys_block(tmp_path, backing: dict[str, str]):
    for name, path in backing.items():
        where = tmp_path / name / "loop"
        where.mkdir(parents=True)
        (where / "backing_file").write_text(path + "\n")
    return str(tmp_path)


def test_leftover_loops_are_ours_and_below_a_directory_when_asked(tmp_path):
    sys_block = fake_sys_block(tmp_path, {
        "loop0": "/tmp/pycontain-io-a.pid1/disk.img",
        "loop1": "/var/lib/images/other.img",
        "loop2": "/tmp/pycontain-io-b.pid2/disk.img (deleted)",
        "loop3": "/tmp/pycontain-io-a.pid10/disk.img",
    })
    assert loop.leftover_loops(sys_block) == ["/dev/loop0", "/dev/loop2", "/dev/loop3"]
    assert loop.leftover_loops(sys_block, under="/tmp/pycontain-io-a.pid1") == ["/dev/loop0"]


@pytest.mark.parametrize("name", ["elsewhere", "mine-pycontain-x"])
def test_a_disk_outside_pycontains_directories_is_refused_first(tmp_path, name, monkeypatch):
    (tmp_path / name).mkdir()
    monkeypatch.setattr(loop, "attach", lambda *a: pytest.fail("attached before the check"))
    with pytest.raises(SpecError, match="`directory` must be an existing directory named"):
        loop.make_disk(tmp_path / name)
