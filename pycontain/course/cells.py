"""What makes a cell of a generated notebook a check, and how the grader recognises it.

tools/notebooks.py writes these conventions into both builds of every lesson; the grader reads
them back from the pristine learner build (never from the student's copy, which the student can
edit). A check cell is a code cell tagged `check` that calls exactly one `lessonNN.check_...`.
Its metadata records:

- `pycontain.check` (`lesson02.check_run_named`) and `pycontain.sha256`, a hash of its source:
  the grader finds the cell in a submission by that hash, wherever it moved, and a cell with the
  check's id but another hash was edited;
- `nbgrader` (schema 3): a read-only autograder test cell with its `points` and `grade_id`, and
  a solution cell for each cell that held a solution, so that an nbgrader course can take the
  notebooks as they are;
- `editable: false`, `deletable: false`: JupyterLab's own lock on a cell.

Points come from the lesson's front matter, `lesson: {points: {check_run_named: 2}}`; a check
it does not name is worth 1.

See also: nbgrader's "Metadata format" (schema version 3), nbformat's cell metadata.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

CHECK_TAG = "check"
#: a check cell's call: `lesson02.check_run_named(`
CHECK_CALL = re.compile(r"\b(lesson\d\d)\.(check_\w+)\s*\(")
NBGRADER_SCHEMA = 3
DEFAULT_POINTS = 1


def source_text(source: str | list[str]) -> str:
    """A cell's source as one string (nbformat stores it as a string or a list of lines)."""
    return source if isinstance(source, str) else "".join(source)


def source_hash(source: str | list[str]) -> str:
    """A hash of a cell's source that an editor's trailing spaces and final newline do not change.

    >>> source_hash("lesson02.check_run_named(run_named)\\n") == source_hash(
    ...     ["lesson02.check_run_named(run_named)  "])
    True
    >>> source_hash("lesson02.check_run_named(run_named)") == source_hash("lesson02.check_x()")
    False
    """
    lines = [line.rstrip() for line in source_text(source).strip().split("\n")]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def is_check(cell: Mapping[str, Any]) -> bool:
    """A code cell tagged `check`."""
    return cell["cell_type"] == "code" and CHECK_TAG in cell.get("metadata", {}).get("tags", [])


def checks_called(source: str | list[str]) -> list[str]:
    """The checks a cell calls, as `lessonNN.check_name`.

    >>> checks_called("from pycontain.checks import lesson19\\nlesson19.check_kill_tree(box)")
    ['lesson19.check_kill_tree']
    """
    return [f"{m[1]}.{m[2]}" for m in CHECK_CALL.finditer(source_text(source))]


def points(lesson: Mapping[str, Any], check: str) -> float:
    """The points of `check` (`lesson02.check_run_named` or `check_run_named`) from a lesson's
    front matter (`points: {check_run_named: 2}`), by default 1.

    >>> points({"points": {"check_run_named": 2}}, "lesson02.check_run_named")
    2
    >>> points({}, "check_run_named")
    1
    """
    weights = lesson.get("points") or {}
    return weights.get(check.rpartition(".")[2], DEFAULT_POINTS)


def points_problems(lesson: Mapping[str, Any], checks: list[str]) -> list[str]:
    """What is wrong with a front matter's `points:` block, given the checks the lesson calls.

    >>> front = {"points": {"check_no": 2, "check_a": 0}}
    >>> for line in points_problems(front, ["lesson02.check_a"]):
    ...     print(line)
    points: check_a must be a positive number, not 0
    points: check_no is not a check this lesson calls (check_a)
    """
    weights = lesson.get("points")
    if weights is None:
        return []
    if not isinstance(weights, dict):
        return ["points: must map check names to numbers (`points: {check_run_named: 2}`)"]
    names = [c.rpartition(".")[2] for c in checks]
    found = []
    for name, value in weights.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            found.append(f"points: {name} must be a positive number, not {value!r}")
    for name in weights:
        if name not in names:
            found.append(f"points: {name} is not a check this lesson calls ({', '.join(names)})")
    return found


def nbgrader(*, grade_id: str, solution: bool = False, grade: bool = False,
             locked: bool = False, points: float | None = None) -> dict[str, Any]:
    """One cell's nbgrader metadata (schema 3): a solution cell, or a locked test cell with
    points.

    >>> nbgrader(grade_id="check_run_named", grade=True, locked=True, points=1)["points"]
    1
    """
    meta: dict[str, Any] = {"grade": grade, "grade_id": grade_id, "locked": locked,
                            "schema_version": NBGRADER_SCHEMA, "solution": solution,
                            "task": False}
    if grade:
        meta["points"] = points
    return meta


def check_metadata(metadata: Mapping[str, Any], source: str, lesson: Mapping[str, Any]
                   ) -> dict[str, Any]:
    """A check cell's metadata as the builds write it (see the module doc)."""
    (check,) = checks_called(source)
    weight = points(lesson, check)
    return {**metadata, "deletable": False, "editable": False,
            "nbgrader": nbgrader(grade_id=check.rpartition(".")[2], grade=True, locked=True,
                                 points=weight),
            "pycontain": {"check": check, "sha256": source_hash(source)}}


def solution_metadata(metadata: Mapping[str, Any], cell_id: str) -> dict[str, Any]:
    """A cell that holds a solution (a stub in the learner build): nbgrader's solution cell."""
    return {**metadata, "nbgrader": nbgrader(grade_id=cell_id, solution=True)}
