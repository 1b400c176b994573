"""The other half of the issue's proof, "grading the solution build gives full points": without a
second execution of every notebook (CI's time budget).

`course.score` gives an exercise its points exactly when the grader finds its check cell, by the
hash the pristine learner build records, and the cell ran without an error output
(tests/unit/test_grading.py). `pytest --nbval-lax notebooks/solutions` (make test, and the
cgroup-v2 guest) fails on any cell's error, so a green run is a run whose check cells all ran
clean. What is left to prove is here: every check cell of the solution build is found by its
hash, with the points of the learner build. The learner half (zero points) is scored in
test_learner_build.py, from the run it makes anyway.
"""

from __future__ import annotations

import json

import pytest

from pycontain.course import cells
from pycontain.course.score import PASSED, expected, score

from .lessonlib import lesson_params


@pytest.mark.parametrize("lesson", lesson_params())
def test_the_grader_finds_every_check_of_the_solution_build(lesson):
    pristine = json.loads(lesson.learner.read_text())
    solution = json.loads(lesson.solution.read_text())
    want = expected(pristine)
    assert want, "a lesson without exercises cannot be graded"
    found = {cells.source_hash(c["source"]) for c in solution["cells"] if cells.is_check(c)}
    assert {w.sha256 for w in want} <= found
    # as nbval's green run leaves them: each cell executed, none with an error output
    for cell in solution["cells"]:
        if cell["cell_type"] == "code":
            cell["execution_count"], cell["outputs"] = 1, []
    graded = score(solution, pristine)
    assert all(e.state == PASSED for e in graded)
    assert sum(e.earned for e in graded) == sum(w.points for w in want)
