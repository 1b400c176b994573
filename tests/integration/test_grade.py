"""`pycontain grade` on the real kernel (issue 16): a solved, an unsolved, a hanging, a
fork-bombing and an edited submission of lesson 02 (the shortest lesson with an exercise) give
full points, zero, a timeout, a contained failure and a failed edited check, in all four outputs,
and the machine is clean afterwards.

Two runs, to stay fast on the slow emulated v2 guest: the hanging submission alone with a short
time limit, the others with a generous one. Grading every lesson is not done here (see the
instructor guide for what a full-course proof costs).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from xml.etree import ElementTree

import nbformat
import pytest

from pycontain import cgroups, lab

from .conftest import run_cli

REPO = Path(__file__).resolve().parents[2]
LESSON = "02-give-a-process-its-own-hostname.ipynb"
LEARNER, SOLUTION = REPO / "notebooks" / LESSON, REPO / "notebooks" / "solutions" / LESSON
CHECK = "lesson02.check_run_named"
#: every exercise of the lesson, its stretch included: each a point of the pristine build
POINTS = 2


def _with_cell_before_check(code: str, target: Path) -> None:
    nb = nbformat.read(LEARNER, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "check" in c.metadata.get("tags", []))
    nb.cells.insert(at, nbformat.v4.new_code_cell(code, id="student-cell"))
    nbformat.write(nb, target)


def _edited(target: Path) -> None:
    """The solution, with its check cell asking for less than the exercise does."""
    nb = nbformat.read(SOLUTION, as_version=4)
    check = next(c for c in nb.cells if "check" in c.metadata.get("tags", []))
    check.source = check.source.replace("(run_named)", "(run_named, tries=1)")
    nbformat.write(nb, target)


def _grade(folder: Path, names: list[str], timeout_s: int) -> dict:
    """Run `pycontain grade` on the submissions `names` in `folder`; every output, parsed."""
    out = folder / f"out-{names[0]}"
    out.mkdir()
    done = run_cli("grade", *[str(folder / n) for n in names], "--timeout", str(timeout_s),
                   "--pids-limit", "64", "--json", str(out / "grade.json"),
                   "--junit", str(out / "junit.xml"), "--gradescope", str(out / "gradescope"),
                   timeout=timeout_s * 2 + 60 * len(names))
    assert done.returncode == 1, done.stderr  # not everything passed
    found = {"table": done.stdout, "json": json.loads((out / "grade.json").read_text()),
             "junit": ElementTree.parse(out / "junit.xml").getroot(), "gradescope": {}}
    for name in names:
        path = out / "gradescope" / name / "results.json" if len(names) > 1 else \
            out / "gradescope"
        found["gradescope"][name] = json.loads(path.read_text())
    return found


@pytest.fixture(scope="module")
def graded():
    with lab.Lab(check=False) as scratch:
        folder = scratch.tempdir("gradetest")
        for name in ("solved", "unsolved", "hanging", "forkbomb", "edited"):
            (folder / name).mkdir()
        shutil.copy(SOLUTION, folder / "solved" / LESSON)
        shutil.copy(LEARNER, folder / "unsolved" / LESSON)
        _with_cell_before_check("while True:\n    pass", folder / "hanging" / LESSON)
        # every child sleeps rather than forking on: the bomb fills pids.max and then the
        # parent's fork fails, at once even on a slow machine (children that fork on, as
        # ipykernel's forked children do, spin until the time limit: "not run", 120 s later)
        _with_cell_before_check("import os, time\n\nwhile True:\n    if os.fork() == 0:\n"
                                "        time.sleep(600)", folder / "forkbomb" / LESSON)
        _edited(folder / "edited" / LESSON)
        yield [_grade(folder, ["hanging"], timeout_s=8),
               _grade(folder, ["solved", "unsolved", "forkbomb", "edited"], timeout_s=120)]


def _submission(runs, name):
    for run in runs:
        for sub in run["json"]["submissions"]:
            if sub["name"] == name:
                return run, sub
    raise AssertionError(f"no submission {name}")


@pytest.mark.parametrize("name,score,outcome,state", [
    ("solved", 2, "ran", "passed"),
    ("unsolved", 0, "ran", "failed"),
    ("hanging", 0, "timeout", "not run"),
    ("forkbomb", 0, "contained", "failed"),
    ("edited", 1, "ran", "edited"),  # CHECK's cell edited; the stretch still passes
])
def test_each_submission_in_all_four_outputs(graded, name, score, outcome, state):
    runs = graded
    run, sub = _submission(runs, name)
    # JSON
    (notebook,) = sub["notebooks"]
    assert len(notebook["exercises"]) == POINTS
    (exercise,) = [e for e in notebook["exercises"] if e["check"] == CHECK]
    assert (sub["score"], sub["max_score"], notebook["outcome"], exercise["state"]) == \
        (score, POINTS, outcome, state), notebook
    assert exercise["message"]
    # JUnit XML
    suite = next(s for s in run["junit"] if s.get("name") == name)
    (case,) = [c for c in suite.findall("testcase") if c.get("name") == "check_run_named"]
    failure = case.find("failure")
    assert case.get("name") == "check_run_named"
    assert (failure is None) == (state == "passed")
    if failure is not None:
        assert failure.get("type") == state
    # Gradescope
    results = run["gradescope"][name]
    assert results["score"] == score and results["max_score"] == POINTS
    (test,) = [t for t in results["tests"] if "check_run_named" in t["name"]]
    assert test["status"] == ("passed" if state == "passed" else "failed")
    # the table
    assert f"{name}: {score}/{POINTS} points" in run["table"]
    assert ("PASS" if state == "passed" else state.upper()) in run["table"]


def test_the_reasons_say_what_happened(graded):
    runs = graded
    hanging = _submission(runs, "hanging")[1]["notebooks"][0]
    assert "still running at the 8 s limit" in hanging["detail"]
    bomb = _submission(runs, "forkbomb")[1]["notebooks"][0]
    assert "process limit (pids.max = 64)" in bomb["detail"]
    solved = _submission(runs, "solved")[1]["notebooks"][0]["exercises"][0]
    assert "their own id as hostname" in solved["message"]  # the check's own success message
    unsolved = _submission(runs, "unsolved")[1]["notebooks"][0]["exercises"][0]
    assert "returned None" in unsolved["message"]  # the check's own failure message


def test_the_machine_is_clean_afterwards(graded):
    runs = graded
    names = [nb["cgroup"] for run in runs for sub in run["json"]["submissions"]
             for nb in sub["notebooks"]]
    assert len(names) == 5 and all(names)
    layout = cgroups.detect()
    for hierarchy in layout.hierarchies:
        for top, dirs, _ in os.walk(hierarchy.mount):
            assert not set(dirs) & set(names), f"{top} still holds a grader's cgroup"
    scratch = [p for p in lab.leftover_dirs() if Path(p).name.startswith("pycontain-grade-")]
    assert not scratch, f"the grader left its scratch dirs {scratch}"
    for run in runs:
        for sub in run["json"]["submissions"]:
            ours = [i for i in sub["left_behind"] if "pycontain-grade" in i]
            assert not ours, f"{sub['name']} left {ours}"
