"""nbgrader takes the learner notebooks as they are (issue 16): its own metadata validator accepts
every cell, every check is one of its locked, graded test cells with points, and every stub is
one of its solution cells.

nbgrader comes from PyPI in the dev extra; where it cannot be installed the test says so.
"""

from __future__ import annotations

import nbformat
import pytest

from pycontain.course import cells

from .lessonlib import builder, lesson_params

nbgrader_format = pytest.importorskip(
    "nbgrader.nbgraderformat",
    reason="nbgrader is not installed: `pip install -e '.[dev]'` brings it from PyPI")
nbgrader_utils = pytest.importorskip("nbgrader.utils")


@pytest.mark.parametrize("lesson", lesson_params())
def test_nbgrader_accepts_the_learner_notebook(lesson):
    nb = nbformat.read(lesson.learner, as_version=4)
    nbgrader_format.MetadataValidator().validate_nb(nb)  # raises ValidationError on a bad cell
    checks = [c for c in nb.cells if cells.is_check(c)]
    assert checks, f"{lesson.learner.name} has no check cell"
    for cell in checks:
        assert nbgrader_utils.is_grade(cell) and nbgrader_utils.is_locked(cell)
        assert not nbgrader_utils.is_solution(cell)
        assert cell.metadata.nbgrader.grade_id == cell.metadata.pycontain.check.split(".")[1]
        assert cell.metadata.nbgrader.points > 0
    stubs = [c for c in nb.cells if c.cell_type == "code" and builder.STUB in c.source]
    assert stubs and all(nbgrader_utils.is_solution(c) for c in stubs)
    ids = [c.metadata.nbgrader.grade_id for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), f"grade ids repeat: {ids}"


def test_nbgrader_rejects_a_broken_check_cell():
    """The validator is real: a test cell without points fails it."""
    lesson = lesson_params()[0].values[0]
    nb = nbformat.read(lesson.learner, as_version=4)
    check = next(c for c in nb.cells if cells.is_check(c))
    del check.metadata.nbgrader["points"]
    with pytest.raises(nbgrader_format.ValidationError):
        nbgrader_format.MetadataValidator().validate_nb(nb)
