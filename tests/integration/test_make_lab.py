"""`make lab` serves the notebooks: JupyterLab answers on loopback, and only with its token."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except (urllib.error.URLError, ConnectionError):  # not listening yet
        return 0, b""


def lab_installed() -> bool:
    jupyter = ROOT / ".venv/bin/jupyter"
    return shutil.which("make") is not None and jupyter.exists() and subprocess.run(
        [jupyter, "--version"], capture_output=True).returncode == 0


needs_lab = pytest.mark.skipif(not lab_installed(),
                               reason="no make, or no JupyterLab in .venv that runs here")


def _descendants(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children] + [d for c in children for d in _descendants(int(c))]


@needs_lab
@pytest.mark.parametrize("solutions", [False, True], ids=["learner", "instructor"])
def test_make_lab_serves_the_notebooks_on_loopback_with_a_token(solutions):
    port, token = free_port(), "lab-test-token"
    env = {**os.environ, "PYCONTAIN_TOKEN": token}
    make = ["make", "--no-print-directory", "lab", f"PORT={port}"]
    lab = subprocess.Popen(make + (["SOLUTIONS=1"] if solutions else []), cwd=ROOT,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status, body = get(f"{base}/api/contents?token={token}")
            if status == 200:
                break
            assert lab.poll() is None, lab.stdout.read() if lab.stdout else ""
            time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 120 s")
        names = {item["name"] for item in json.loads(body)["content"]}
        assert "00-set-up-the-lab.ipynb" in names
        # learners are not served the solutions, not even by URL; an instructor asks for them
        assert ("solutions" in names) == solutions
        solution = f"{base}/api/contents/solutions/00-set-up-the-lab.ipynb?token={token}"
        assert get(solution)[0] == (200 if solutions else 404)
        assert get(f"{base}/api/contents")[0] == 403  # no token, no notebooks
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                                   text=True).stdout
        local = {line.split()[3] for line in listening.splitlines()}
        assert local == {f"127.0.0.1:{port}"}  # loopback only: a root Jupyter stays private
        # the token is in no command line, where any local user's `ps` would read it
        lines = [Path(f"/proc/{p}/cmdline").read_bytes() for p in _descendants(lab.pid)]
        assert any(b"jupyter" in line for line in lines)
        assert not any(token.encode() in line for line in lines)
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        try:
            output = lab.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            output = lab.communicate()[0]
    # The URL a learner opens is the last line while Jupyter runs: after it, Jupyter logs only
    # warnings ([W …]) and, here, its stop ([C …] received signal 15), and make may say that
    # the test terminated it.
    lines = [line for line in output.splitlines()
             if line.strip() and line[:3] not in ("[W ", "[C ")
             and not re.match(r"make(\[\d+\])?: \*\*\* ", line)]  # make[1] under make test
    assert f"http://127.0.0.1:{port}/lab?token={token}" in lines[-1]


@needs_lab
def test_make_lab_outside_the_vm_without_the_variable_stops_with_what_to_do():
    env = {k: v for k, v in os.environ.items() if k != "PYCONTAIN_ALLOW_HOST"}
    if Path("/etc/pycontain/lab-vm").exists():
        pytest.skip("this is the lab VM: make lab needs no variable here")
    done = subprocess.run(["make", "--no-print-directory", "lab", f"PORT={free_port()}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "JupyterLab is starting" not in done.stdout
    assert done.stderr.splitlines()[0] == (
        "make lab: this is not the lab VM; to run the lessons here anyway: "
        "export PYCONTAIN_ALLOW_HOST=1, then make lab (in that same shell)")


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_a_fresh_install_says_one_line_a_step(tmp_path):
    """What a learner sees of `make lab`'s installs: a line per step, not pip's and setuptools'
    warnings (the URL must not drown at line 180); their log is kept for when one fails."""
    venv = tmp_path / "venv"
    done = subprocess.run(["make", "--no-print-directory", f"VENV={venv}", f"{venv}/.lab"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (done.stdout + done.stderr).splitlines() == [
        f"creating {venv}", f"installing pycontain and JupyterLab into {venv}"]
    log = (venv / "logs/pip.log").read_text()
    assert "Successfully installed" in log and "project.license" not in log  # no deprecation
