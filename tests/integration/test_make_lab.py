"""`make lab` serves the notebooks: JupyterLab answers on loopback, and only with its token."""

from __future__ import annotations

import json
import os
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


@pytest.mark.skipif(not lab_installed(), reason="no make, or no JupyterLab in .venv that runs here")
def test_make_lab_serves_the_notebooks_on_loopback_with_a_token():
    port, token = free_port(), "lab-test-token"
    env = {**os.environ, "PYCONTAIN_TOKEN": token}
    lab = subprocess.Popen(["make", "--no-print-directory", "lab", f"PORT={port}"], cwd=ROOT,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status, body = get(f"{base}/api/contents?token={token}")
            if status == 200:
                break
            assert lab.poll() is None, lab.stdout.read() if lab.stdout else ""
            time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 90 s")
        names = {item["name"] for item in json.loads(body)["content"]}
        assert "00-set-up-the-lab.ipynb" in names and "solutions" in names
        assert get(f"{base}/api/contents")[0] == 403  # no token, no notebooks
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                                   text=True).stdout
        local = {line.split()[3] for line in listening.splitlines()}
        assert local == {f"127.0.0.1:{port}"}  # loopback only: a root Jupyter stays private
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        try:
            output = lab.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            output = lab.communicate()[0]
    assert f"http://127.0.0.1:{port}/lab?token={token}" in output  # the URL a learner opens
