"""Exercises' stepped hints, how many were opened, and the answer shown only on success
(pycontain.checks.exercise, issue 18). No root: nothing here starts a container."""

from __future__ import annotations

import json
import sys

import pytest

from pycontain import settings
from pycontain.checks import ANSWER_HEADING, Passed
from pycontain.checks.exercise import Exercise, exercise, exercises, hints_used
from pycontain.course import score


@pytest.fixture
def hints_file(tmp_path, monkeypatch):
    path = tmp_path / "state" / "hints.json"
    monkeypatch.setenv(settings.HINTS_VARIABLE, str(path))
    return path


def answer(x: int) -> int:
    """The library's own solution."""
    return x + 1


@exercise(hints=("look at wait(2)", "the pid argument", "loop until it is `child`"),
          answers=(answer,))
def check_demo(value: int) -> Passed:
    return Passed(f"got {value}")


def test_hints_open_one_at_a_time_and_the_highest_opened_is_counted(hints_file):
    assert hints_used() == {}
    hint = check_demo.hints
    assert "hint(1), hint(2), hint(3)" in repr(hint)
    assert hint(2) == "Hint 2 of 3: the pid argument"
    assert hint(2)._repr_markdown_().startswith("💡 Hint 2 of 3")
    hint(1)  # going back does not lower the count
    assert hints_used() == {"test_exercise.check_demo": 2}
    assert json.loads(hints_file.read_text()) == {"test_exercise.check_demo": 2}


@pytest.mark.parametrize("number", [0, 4, "1"])
def test_a_hint_that_does_not_exist_names_the_range(hints_file, number):
    with pytest.raises(ValueError, match="`number` must be 1 to 3"):
        check_demo.hints(number)
    assert not hints_file.exists()


def test_a_broken_hints_file_counts_as_none(hints_file):
    hints_file.parent.mkdir()
    hints_file.write_text("not json")
    assert hints_used() == {}


def test_an_exercise_needs_two_or_three_hints():
    with pytest.raises(ValueError, match="2 or 3 hints"):
        exercise(hints=("only one",))(lambda: Passed("x"))


def test_the_answer_appears_in_the_success_output_and_the_grader_keeps_the_message():
    passed = check_demo(3)
    assert isinstance(check_demo, Exercise) and exercises(sys.modules[__name__]) == {
        "check_demo": check_demo}
    shown = passed._repr_markdown_()
    assert shown.startswith("✅ got 3\n\n" + ANSWER_HEADING) and "def answer(x: int)" in shown
    assert str(passed) == "got 3"
    cell = {"cell_type": "code", "execution_count": 1, "outputs": [
        {"output_type": "execute_result", "data": {"text/markdown": shown}}]}
    assert score._outcome(cell, "") == (score.PASSED, "got 3")
