"""The embedded rootfs builds offline both ways and runs a shell as PID 1 behind pivot_root."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import pycontain
from pycontain.fs import rootfs

from .conftest import PYCONTAIN


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


needs_busybox = pytest.mark.skipif(rootfs.find_busybox() is None,
                                   reason="busybox is not installed (make test installs "
                                          "busybox-static)")


def stale_tree(path, how):
    """A rootfs at `path` as a fresh clone may find it: built from host programs before
    busybox was installed, by an older recipe, or by a pycontain that kept no record."""
    rootfs.build(path, use_busybox=how != "host-binaries")
    manifest = path / rootfs.MANIFEST
    if how == "old-recipe":
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "recipe": 1}))
    elif how == "no-record":
        manifest.unlink()


@needs_busybox
@pytest.mark.parametrize("how", ["host-binaries", "old-recipe", "no-record"])
def test_a_stale_rootfs_is_rebuilt_from_busybox_and_doctor_then_reports_ready(scratch, cli,
                                                                             how):
    path = scratch.tempdir("stale") / "rootfs"
    stale_tree(path, how)
    env = {**os.environ, "PYCONTAIN_ROOTFS": str(path)}
    before = cli("doctor", env=env)
    assert before.returncode == 1 and "FAIL  embedded rootfs  stale: " in before.stdout
    assert "fix: run `pycontain rootfs`" in before.stdout
    done = cli("rootfs", env=env)
    assert done.returncode == 0 and done.stdout == f"{path}\n", done.stderr
    assert done.stderr.startswith(f"pycontain: rebuilding the embedded rootfs at {path}: ")
    assert len(done.stderr.splitlines()) == 1
    assert json.loads((path / rootfs.MANIFEST).read_text())["origin"] == rootfs.origin()
    assert os.path.realpath(path / "bin/ls") == str(path / "bin/busybox")
    after = cli("doctor", env=env)
    assert after.returncode == 0 and after.stdout.rstrip().endswith("ready"), after.stdout
    assert cli("rootfs", env=env).stderr == ""  # ready now: nothing rebuilt, nothing said


# Looks at the rootfs as a starting container would, until the file argv[2] appears.
READER = """import json, os, sys
path, misses, looks = sys.argv[1], 0, 0
while not os.path.exists(sys.argv[2]):
    looks += 1
    try:
        json.load(open(os.path.join(path, "etc/pycontain-rootfs.json")))
        os.stat(os.path.join(path, "bin/busybox"))
    except (OSError, ValueError):
        misses += 1
print(looks, misses)
"""


@needs_busybox
def test_two_builders_at_once_never_show_a_half_written_rootfs(scratch):
    path, stop = scratch.tempdir("race") / "rootfs", scratch.tempdir("stop") / "now"
    rootfs.build(path)
    env = {**os.environ, "PYCONTAIN_ROOTFS": str(path)}
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path), str(stop)],
                              stdout=subprocess.PIPE, text=True)
    builders = [subprocess.Popen(["sh", "-c", 'for i in 1 2 3; do "$@" rootfs --rebuild '
                                  '|| exit 1; done', "sh", *PYCONTAIN], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
    errors = [b.communicate(timeout=120)[1] for b in builders]
    stop.touch()
    assert [b.returncode for b in builders] == [0, 0], errors
    looks, misses = map(int, reader.communicate(timeout=60)[0].split())
    assert looks > 100 and misses == 0  # every look found a whole tree, old or new
    assert rootfs.status(path).state == "ready"
    assert os.listdir(path.parent) == ["rootfs"]  # no build or replaced tree left beside it
