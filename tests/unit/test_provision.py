"""The lab VM serves the exercises only; an instructor's VM the solutions too (issue 16).

vagrant/provision.sh's own step runs here (`--sync-notebooks`, no root, no VM) on a checkout
laid out in a temp dir: what lands in the workspace is what Jupyter serves. The real `vagrant
up` is `make test-vagrant` (tools/lab-vm/test-vagrant.sh); its guest checks hold the default.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROVISION = ROOT / "vagrant" / "provision.sh"

pytestmark = pytest.mark.skipif(shutil.which("rsync") is None,
                                reason="rsync is missing: `make debs` installs it")


@pytest.fixture
def vm(tmp_path):
    home = tmp_path / "opt"
    (home / "notebooks" / "solutions").mkdir(parents=True)
    (home / "notebooks" / "02-x.ipynb").write_text("learner 02")
    (home / "notebooks" / "solutions" / "02-x.ipynb").write_text("solution 02")
    return home, tmp_path / "srv"


def sync(vm, instructor: str | None) -> subprocess.CompletedProcess[str]:
    home, workspace = vm
    env = {**os.environ, "PYCONTAIN_HOME": str(home), "PYCONTAIN_WORKSPACE": str(workspace)}
    env.pop("PYCONTAIN_INSTRUCTOR", None)
    if instructor is not None:
        env["PYCONTAIN_INSTRUCTOR"] = instructor
    return subprocess.run(["bash", str(PROVISION), "--sync-notebooks"], env=env,
                          capture_output=True, text=True, timeout=30)


def served(workspace: Path) -> list[str]:
    return sorted(str(p.relative_to(workspace)) for p in workspace.rglob("*") if p.is_file())


def test_a_learners_vm_serves_the_exercises_only(vm):
    assert sync(vm, None).returncode == 0
    assert served(vm[1]) == ["02-x.ipynb"]


def test_an_instructors_vm_serves_the_solutions_too_and_a_learners_provision_removes_them(vm):
    home, workspace = vm
    done = sync(vm, "1")
    assert done.returncode == 0, done.stderr
    assert served(workspace) == ["02-x.ipynb", "solutions/02-x.ipynb"]
    assert (workspace / "solutions" / "02-x.ipynb").read_text() == "solution 02"
    (workspace / "02-x.ipynb").write_text("the learner's work")
    assert sync(vm, "0").returncode == 0
    assert served(workspace) == ["02-x.ipynb"]
    assert (workspace / "02-x.ipynb").read_text() == "the learner's work"  # never overwritten


def test_a_bad_value_or_a_learner_release_is_refused_before_anything_is_made(vm):
    home, workspace = vm
    done = sync(vm, "yes")
    assert done.returncode != 0 and "PYCONTAIN_INSTRUCTOR=yes is not 0 or 1" in done.stderr
    assert not workspace.exists()
    shutil.rmtree(home / "notebooks" / "solutions")  # what the learner release holds
    done = sync(vm, "1")
    assert done.returncode != 0 and "instructor release" in done.stderr


def test_the_vagrantfile_hands_the_choice_to_the_provisioner():
    text = (ROOT / "vagrant" / "Vagrantfile").read_text()
    assert re.search(r'INSTRUCTOR\s*=\s*pycontain_int\("PYCONTAIN_INSTRUCTOR", 0, 0, 1,', text)
    assert '"PYCONTAIN_INSTRUCTOR" => INSTRUCTOR.to_s' in text
    assert "PYCONTAIN_INSTRUCTOR" in (ROOT / "vagrant" / "README.md").read_text()
