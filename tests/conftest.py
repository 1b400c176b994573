"""Test-session rules shared by every tier: nothing named pycontain- may outlive the session."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

from pycontain import lab, settings

# The notebooks the tests run record their checks' results (course.progress): into a file of
# the session's own, never this machine's progress. Set before any kernel starts: they inherit it.
_PROGRESS_DIR = tempfile.mkdtemp(prefix="progress-of-tests-")
os.environ[settings.PROGRESS_VARIABLE] = os.path.join(_PROGRESS_DIR, "progress.json")
atexit.register(shutil.rmtree, _PROGRESS_DIR, True)

IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


def _ip_forward() -> str:
    with open(IP_FORWARD) as f:
        return f.read().strip()


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind():
    """After the whole session: no pycontain- mount, temp dir, netns, link, nft table or cgroup
    remains, and the host forwards IPv4 packets exactly as it did before (lesson 08)."""
    forwarding = _ip_forward()
    yield
    if os.geteuid() == 0:
        left = lab.leftovers()
        assert not left, f"the tests left these behind: {left}"
        assert _ip_forward() == forwarding, f"the tests left {IP_FORWARD} at {_ip_forward()}"


@pytest.fixture
def scratch():
    """A Lab without preflight, for temp dirs and undos that must be gone after the test."""
    with lab.Lab(check=False) as scratch_lab:
        yield scratch_lab
