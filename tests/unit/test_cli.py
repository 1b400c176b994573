"""The command's help and its exit-status rules (no root needed)."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest

from pycontain.cli import exit_status
from pycontain.errors import CommandNotFoundError, PreflightError, SpecError, SyscallError


def help_of(*verb: str) -> str:
    return subprocess.run([sys.executable, "-m", "pycontain", *verb, "--help"],
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("verb", ["run", "rootfs", "doctor", "cleanup"])
def test_every_verb_has_help(verb):
    assert help_of(verb).startswith("usage: pycontain " + verb)


def test_run_help_says_what_the_container_sees_and_the_exit_statuses():
    text = help_of("run")
    assert "keeps the host's filesystem view" in text
    assert "125" in text and "127" in text and "128+N" in text
    assert "--namespaces" in text and "--hostname" in text and "--rootfs" in text


def test_exit_statuses_follow_docker_run():
    assert exit_status(CommandNotFoundError("command", "x", "y")) == 127
    assert exit_status(SyscallError("execve", ("x", ["x"]), errno.ENOENT)) == 127
    assert exit_status(SyscallError("execve", ("x", ["x"]), errno.EACCES)) == 126
    assert exit_status(SyscallError("mount", (), errno.EPERM)) == 125
    assert exit_status(SpecError("hostname", "x", "")) == 125
    assert exit_status(PreflightError("no")) == 125
