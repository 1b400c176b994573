"""Test-session rules shared by every tier: nothing named pycontain- may outlive the session."""

from __future__ import annotations

import os

import pytest

from pycontain import lab


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind():
    """After the whole session: no pycontain- mount, temp dir, netns, link or cgroup remains."""
    yield
    if os.geteuid() == 0:
        left = lab.leftovers()
        assert not left, f"the tests left these behind: {left}"


@pytest.fixture
def scratch():
    """A Lab without preflight, for temp dirs and undos that must be gone after the test."""
    with lab.Lab(check=False) as scratch_lab:
        yield scratch_lab
