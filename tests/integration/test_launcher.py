"""The lean console scripts (`pycontain.launcher`): `-I -S`, and nothing missing for it."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from pycontain import PACKAGE_PARENT, launcher


@pytest.fixture
def scripts(scratch):
    directory = scratch.tempdir("bin")
    return dict(zip(launcher.SCRIPTS, launcher.write(str(directory)), strict=True))


def test_each_script_starts_without_site_and_finds_the_package(scripts):
    for name, path in scripts.items():  # each by its own path, as a shell starts it
        with open(path) as f:
            assert f.readline().endswith(" -IS\n")
        probe = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=60)
        assert probe.returncode == 0 and name in probe.stdout, (name, probe.stderr)
    assert launcher.search_path()[0] == PACKAGE_PARENT


def test_a_bridged_run_finds_pyroute2_for_its_network_helper(scripts, embedded_rootfs):
    if shutil.which("nft") is None:
        pytest.skip("the bridge network needs the nft tool")
    done = subprocess.run([scripts["pycontain"], "run", "--network", "bridge", "--rootfs",
                           embedded_rootfs, "--", "ip", "-4", "addr", "show", "eth0"],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYCONTAIN_ALLOW_HOST="1"))
    assert done.returncode == 0 and "10.207.0." in done.stdout, done.stderr
