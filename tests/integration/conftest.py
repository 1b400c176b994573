"""Integration tests: root on the real kernel. Skipped, with the reason, when not root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from pycontain import settings
from pycontain.fs import rootfs

if os.geteuid() != 0:
    pytest.skip("integration tests need root on the real kernel", allow_module_level=True)


PYCONTAIN = [sys.executable, "-m", "pycontain"]


def run_cli(*args: str, env: dict[str, str] | None = None, user: int | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the pycontain command as a user would, and capture what it prints."""
    prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user else []
    return subprocess.run([*prefix, *PYCONTAIN, *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture(scope="package", autouse=True)
def allowed_on_this_host():
    """These tests run on the development and CI machines, not only in the lab VM: allow the
    host ($PYCONTAIN_ALLOW_HOST=1) unless the caller said otherwise, for this package only."""
    with pytest.MonkeyPatch.context() as patch:
        if settings.ALLOW_HOST_VARIABLE not in os.environ:
            patch.setenv(settings.ALLOW_HOST_VARIABLE, "1")
        yield


@pytest.fixture
def cli():
    """`cli("run", "--", "true")` runs the pycontain command and returns the CompletedProcess."""
    return run_cli


@pytest.fixture(scope="session")
def embedded_rootfs() -> str:
    return str(rootfs.ensure())


@pytest.fixture(scope="session")
def has_setpriv() -> bool:
    return shutil.which("setpriv") is not None
