"""The grader's scoring and outputs, without a kernel (pycontain.course.score, .report)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from pycontain.course import cells, grade, report, score
from pycontain.errors import SpecError


def _checks(nb):
    return [c for c in nb["cells"] if cells.is_check(c)]


def _two_checks(nb):
    """`nb` with its first two check cells only (a lesson's stretch adds a third)."""
    extra = _checks(nb)[2:]
    nb["cells"] = [c for c in nb["cells"] if not any(c is e for e in extra)]
    return nb


PRISTINE = _two_checks(json.loads((Path(__file__).resolve().parents[2] / "notebooks" /
                                   "19-freeze-and-kill.ipynb").read_text()))


def _ran(nb, *, errors=()):
    """`nb` as if executed: each check cell run, an error output on those in `errors`."""
    done = copy.deepcopy(nb)
    for n, cell in enumerate(_checks(done)):
        cell["execution_count"] = n + 1
        cell["outputs"] = [{"output_type": "error", "ename": "CheckFailed",
                            "evalue": "\x1b[31mpids.max is 'max'\x1b[0m", "traceback": []}] \
            if n in errors else [{"output_type": "execute_result", "execution_count": n + 1,
                                  "metadata": {}, "data": {"text/markdown": "✅ all frozen",
                                                           "text/plain": "'all frozen'"}}]
    return done


def test_a_run_notebook_scores_each_check_with_its_message():
    found = score.score(_ran(PRISTINE, errors=(1,)), PRISTINE)
    assert [(e.state, e.message, e.earned) for e in found] == [
        ("passed", "all frozen", 1), ("failed", "pids.max is 'max'", 0)]


def test_a_check_cell_is_found_wherever_it_moved():
    moved = _ran(PRISTINE)
    moved["cells"].reverse()
    assert all(e.passed for e in score.score(moved, PRISTINE))


def test_an_edited_or_deleted_check_cell_fails():
    student = _ran(PRISTINE)
    first, second = _checks(student)
    first["source"] = "".join(first["source"]) + "  # harmless?"  # still the call, and tagged
    student["cells"].remove(second)
    edited, deleted = score.score(student, PRISTINE)
    assert (edited.state, deleted.state) == ("edited", "deleted")
    assert not edited.passed and not deleted.passed and "restore" in edited.message


def test_trailing_spaces_are_not_an_edit():
    student = _ran(PRISTINE)
    for cell in _checks(student):
        cell["source"] = "".join(cell["source"]) + "  \n"
    assert all(e.passed for e in score.score(student, PRISTINE))


def test_points_come_from_the_pristine_build_not_the_student():
    pristine = copy.deepcopy(PRISTINE)
    _checks(pristine)[0]["metadata"]["nbgrader"]["points"] = 3
    student = _ran(PRISTINE)
    _checks(student)[1]["metadata"]["nbgrader"]["points"] = 100
    assert [e.points for e in score.score(student, pristine)] == [3, 1]


def test_a_cell_never_reached_says_why():
    found = score.score(PRISTINE, PRISTINE, stopped="cell 7 was still running")
    assert {e.state for e in found} == {"not run"}
    assert "cell 7 was still running" in found[0].message


def _graded():
    ok = score.Exercise("lesson19.check_freeze", "passed", "all frozen", 2)
    bad = score.Exercise("lesson19.check_kill_tree", "failed", "pids.max is 'max'", 1)
    return [grade.SubmissionGrade("ada", [grade.NotebookGrade("a.ipynb", 19, "t", "ran", "",
                                                              [ok, bad], 3.0)]),
            grade.SubmissionGrade("bob", [grade.NotebookGrade("b.ipynb", 19, "t", "timeout",
                                                              "cell 3 hung", [], 8.0)])]


def test_the_outputs_agree():
    graded = _graded()
    data = report.to_json(graded)
    assert (data["score"], data["max_score"], data["passed"]) == (2, 3, False)
    suites = ElementTree.fromstring(report.junit(graded))
    assert [(s.get("name"), s.get("tests"), s.get("failures")) for s in suites] == \
        [("ada", "2", "1"), ("bob", "1", "1")]
    results = report.gradescope(graded[0])
    assert results["score"] == 2 and results["max_score"] == 3
    assert [t["status"] for t in results["tests"]] == ["passed", "failed"]
    text = report.table(graded)
    assert "ada: 2/3 points" in text and "TIMEOUT: cell 3 hung" in text


def test_gradescope_writes_one_file_per_submission(tmp_path):
    written = report.write_gradescope(_graded(), tmp_path / "gs")
    assert written == [tmp_path / "gs" / "ada" / "results.json",
                       tmp_path / "gs" / "bob" / "results.json"]


@pytest.mark.parametrize("given,parameter", [
    ({"time_limit_s": 0}, "time_limit_s"), ({"memory_max": "lots"}, "memory_max"),
    ({"pids_max": 0}, "pids_max")])
def test_bad_limits_are_refused_by_name(given, parameter):
    with pytest.raises(SpecError) as caught:
        grade.GradeLimits(**given)
    assert caught.value.parameter == parameter


def test_a_submission_must_be_a_notebook_or_a_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(SpecError, match="SUBMISSION"):
        grade.submissions([str(tmp_path / "notes.txt")])
