"""nbgrader takes the learner notebooks as they are: its own metadata validator accepts every
cell, every check is one of its locked, graded test cells with points, and every stub is one of
its solution cells.

nbgrader runs in an environment of its own (`make test` makes `.venv/nbgrader`): installed beside
JupyterLab, its server extensions would start in every `make lab`. One subprocess there reads
every learner notebook and reports what nbgrader makes of each cell.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pycontain.course import cells

from .lessonlib import builder, lesson_params

TOOL = Path(__file__).resolve().parents[2] / ".venv" / "nbgrader" / "bin" / "python"
if not TOOL.exists():
    pytest.skip(f"nbgrader is not installed at {TOOL}: `make test` installs it",
                allow_module_level=True)

#: run in nbgrader's environment: for each notebook (argv), the validator's verdict and, per
#: cell, what nbgrader's own helpers say it is
ASK = """
import json, sys
import nbformat
from nbgrader import utils
from nbgrader.nbgraderformat import MetadataValidator, ValidationError
out = {}
for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    try:
        MetadataValidator().validate_nb(nb)
        verdict = "valid"
    except ValidationError as e:
        verdict = f"invalid: {e}"
    out[path] = {"verdict": verdict, "cells": [
        {"grade": bool(utils.is_grade(c)), "locked": bool(utils.is_locked(c)),
         "solution": bool(utils.is_solution(c)),
         "grade_id": c.metadata.get("nbgrader", {}).get("grade_id"),
         "points": c.metadata.get("nbgrader", {}).get("points")} for c in nb.cells]}
print(json.dumps(out))
"""


def ask_nbgrader(paths: list[Path]) -> dict[str, dict]:
    done = subprocess.run([str(TOOL), "-c", ASK, *map(str, paths)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def judged() -> dict[str, dict]:
    return ask_nbgrader([p.values[0].learner for p in lesson_params()])


@pytest.mark.parametrize("lesson", lesson_params())
def test_nbgrader_accepts_the_learner_notebook(lesson, judged):
    import nbformat

    seen = judged[str(lesson.learner)]
    assert seen["verdict"] == "valid"
    nb = nbformat.read(lesson.learner, as_version=4)
    checks = [(c, s) for c, s in zip(nb.cells, seen["cells"], strict=True) if cells.is_check(c)]
    assert checks, f"{lesson.learner.name} has no check cell"
    for cell, said in checks:
        assert said["grade"] and said["locked"] and not said["solution"]
        assert said["grade_id"] == cell.metadata.pycontain.check.split(".")[1]
        assert said["points"] > 0
    stubs = [s for c, s in zip(nb.cells, seen["cells"], strict=True)
             if c.cell_type == "code" and builder.STUB in c.source]
    assert stubs and all(s["solution"] for s in stubs)
    ids = [s["grade_id"] for s in seen["cells"] if s["grade_id"] is not None]
    assert len(ids) == len(set(ids)), f"grade ids repeat: {ids}"


def test_nbgrader_rejects_a_broken_check_cell(tmp_path):
    """The validator is real: a test cell without points fails it."""
    import nbformat

    lesson = lesson_params()[0].values[0]
    nb = nbformat.read(lesson.learner, as_version=4)
    check = next(c for c in nb.cells if cells.is_check(c))
    del check.metadata.nbgrader["points"]
    broken = tmp_path / "broken.ipynb"
    nbformat.write(nb, broken)
    assert ask_nbgrader([broken])[str(broken)]["verdict"].startswith("invalid")
