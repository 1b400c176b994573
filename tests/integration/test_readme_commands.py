"""The README's commands work as written: a bare `pycontain`, found on a root login's PATH
through the link `make lab` and `make test` put in /usr/local/bin (README, "Use it from the
command line"), with the exit status its comment gives."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: a root login's PATH, without this session's venv or pyenv
LOGIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: run elsewhere: a server runs until stopped (test_net), and cleanup is machine-wide
NOT_HERE = ("httpd", "pycontain cleanup")

pytestmark = pytest.mark.skipif(not (ROOT / ".venv/bin/pycontain").exists(),
                                reason="no .venv here (the v2 guest): `make test` makes it")


def readme_commands() -> list[str]:
    """Every command of the README's sh blocks that starts with `pycontain`, its continued
    lines (a trailing backslash) joined, as sh reads them."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    return [line for line in lines if line.startswith("pycontain ")]


def expected_status(line: str) -> int:
    """The status a line's comment names (`# 137: killed …`), else 0."""
    said = re.search(r"#\s*(\d+):", line)
    return int(said[1]) if said else 0


def test_the_readme_shows_commands():
    assert len(readme_commands()) >= 8 and any("doctor" in c for c in readme_commands())


def test_pycontain_is_on_a_login_path_and_is_this_checkout():
    found = subprocess.run(["sh", "-c", "command -v pycontain"], capture_output=True, text=True,
                           env={**os.environ, "PATH": LOGIN_PATH})
    assert found.returncode == 0, "no pycontain on PATH: `make lab` or `make test` links it"
    assert os.path.realpath(found.stdout.strip()) == str(ROOT / ".venv/bin/pycontain")


@pytest.fixture(scope="module", autouse=True)
def own_run_directory():
    """The README's detached containers (`run -d --name ticker`, ...) in a run directory of
    this module's own, so that another checkout's tests running meanwhile have their own
    `ticker`; none may be left at the end."""
    import tempfile

    from pycontain import settings, state

    with pytest.MonkeyPatch.context() as patch:
        root = tempfile.mkdtemp(prefix="pycontain-run-")
        patch.setenv(settings.RUN_DIR_VARIABLE, root)
        yield
        left = state.leftover_containers()
        for path in left:
            state.remove_container(path)
        subprocess.run(["rm", "-rf", root], check=True)
    assert not left, f"the README's commands left these containers: {left}"


@pytest.mark.parametrize("line", [c for c in readme_commands()
                                  if not any(skip in c for skip in NOT_HERE)])
def test_a_readme_command_works_as_written(line):
    done = subprocess.run(["sh", "-c", line], capture_output=True, text=True, input="",
                          env={**os.environ, "PATH": LOGIN_PATH}, timeout=120)
    assert done.returncode == expected_status(line), done.stderr
    assert "Traceback" not in done.stderr
    reds = re.search(r"#.*?(\d+) red", line)
    if reds:  # the audit's lines: as many red as the comment says
        assert f"\n{reds[1]} red\n" in "\n" + done.stdout, done.stdout
