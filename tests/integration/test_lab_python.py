"""The notebooks carry the lab VM's Python version (tools/notebooks.py, LAB_PYTHON): JupyterLab
marks a notebook modified as soon as its kernel reports another `language_info`. The cgroup-v2
guest is the lab VM's system (Debian 13), so the pin is checked there."""

from __future__ import annotations

import platform
import re
from pathlib import Path

import pytest

NOTEBOOKS_TOOL = Path(__file__).resolve().parents[2] / "tools" / "notebooks.py"


def _debian_release() -> str:
    try:
        with open("/etc/debian_version") as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


@pytest.mark.skipif(not _debian_release().startswith("13"),
                    reason="only the lab VM's system (Debian 13) has the Python the notebooks name")
def test_the_notebooks_name_the_lab_vms_python():
    # read, not imported: the guest has no jupytext, which the notebook builder needs
    pinned = re.search(r'^LAB_PYTHON = "(.+)"$', NOTEBOOKS_TOOL.read_text(), re.M)
    assert pinned and platform.python_version() == pinned[1], (
        "the lab VM's Python changed: set LAB_PYTHON in tools/notebooks.py and `make notebooks`")
