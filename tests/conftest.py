"""Test-session rules shared by every tier: nothing named pycontain- may outlive the session."""

from __future__ import annotations

import os

import pytest

from pycontain import lab

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
