"""The embedded rootfs builds offline both ways and runs a shell as PID 1 behind pivot_root."""

from __future__ import annotations

import pytest

import pycontain
from pycontain import rootfs


@pytest.mark.parametrize("use_busybox", [True, False], ids=["busybox", "host-binaries"])
def test_built_rootfs_runs_a_shell(scratch, use_busybox):
    if use_busybox and rootfs.find_busybox() is None:
        pytest.skip("busybox is not installed (make test installs busybox-static)")
    path = rootfs.build(scratch.tempdir("build") / "rootfs", use_busybox=use_busybox)
    origin = (path / "etc/os-release").read_text()
    assert ("busybox" in origin) == use_busybox
    result = pycontain.run(["sh", "-c", "echo $$; cat /etc/hosts; ls /"], rootfs=path)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "1"
    assert "localhost" in lines[1]
    assert "home" not in lines  # the host's / is out of sight


def test_the_old_root_is_gone_and_dev_is_minimal(embedded_rootfs):
    result = pycontain.run(["sh", "-c", "cat /proc/self/mountinfo; ls /dev"],
                           rootfs=embedded_rootfs)
    assert result.exit_code == 0, result.stderr
    mounts = [line.split()[4] for line in result.stdout.splitlines() if " - " in line]
    assert mounts[0] == "/" and "/proc" in mounts and "/dev" in mounts
    assert all(not m.startswith("/work") for m in mounts)  # nothing of the old root remains
    assert {"null", "zero", "urandom", "tty"} <= set(result.stdout.split())
