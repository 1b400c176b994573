"""No solution before its exercise is solved, and hints that do not give it away (issue 18).

Every check is declared with `checks.exercise.exercise(hints=..., answers=...)`: `answers` are
the library functions that solve it (none when the answer is a use of the public API, as in
lesson 08: then the lesson's own demos must teach the idea without being the answer). In the
LEARNER build no cell may show one of them, or anything whose source holds one (its module, its
class), through `pycontain.show(...)` or printed source (`inspect.getsource`): the library's
version appears in the check's success output only (`checks.Passed`), and in the solution build.
Names in a cell are resolved the way the notebook would: by running the lesson's own import
statements.

The hints must not hold a line of the lesson's solution either, and each exercise must offer its
hints in the notebook, in a cell before its solution cell.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from typing import Any

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from pycontain.checks.exercise import Exercise, exercises

from .lessonlib import LESSONS, builder, lesson_params, number_of, read

#: the calls that display a library object's source
SHOWING = {"show", "getsource", "getsourcelines", "getfile"}


def code_cells(lesson: Any, *, solution: bool) -> list[str]:
    return [builder.split_solution(c.source, solution=solution)
            for c in read(lesson).cells if c.cell_type == "code"]


def namespace(cells: list[str]) -> dict[str, Any]:
    """What the lesson's import statements bind, run here."""
    names: dict[str, Any] = {}
    for source in cells:
        tree = ast.parse(TransformerManager().transform_cell(source))
        imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        exec(compile(ast.Module(body=imports, type_ignores=[]), "<imports>", "exec"), names)
    return names


def shown_objects(source: str, names: dict[str, Any]) -> list[tuple[str, Any]]:
    """(expression, object) for each `show(X)` / `inspect.getsource(X)` in a cell."""
    found = []
    for node in ast.walk(ast.parse(TransformerManager().transform_cell(source))):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        called = node.func.attr if isinstance(node.func, ast.Attribute) else \
            getattr(node.func, "id", "")
        if called in SHOWING:
            text = ast.unparse(node.args[0])
            try:
                found.append((text, eval(text, dict(names))))
            except Exception:  # a name the cell makes itself: not the library's
                continue
    return found


def reveals(obj: Any, answer: Any) -> bool:
    """Whether showing `obj` shows `answer`: it is the answer, or its source holds it."""
    if obj is answer:
        return True
    try:
        return inspect.getsource(answer) in inspect.getsource(obj)
    except (OSError, TypeError):
        return False


def lesson_exercises(lesson: Any) -> list[Exercise]:
    called = [c for cell in read(lesson).cells if builder.is_check(cell)
              for c in builder.course_cells.checks_called(cell.source)]
    found = []
    for name in called:
        module_name, _, check = name.partition(".")
        module = importlib.import_module(f"pycontain.checks.{module_name}")
        found.append(exercises(module).get(check) or getattr(module, check))
    return found


@pytest.mark.parametrize("lesson", lesson_params())
def test_every_check_is_an_exercise_with_hints_and_an_answer(lesson):
    for found in lesson_exercises(lesson):
        assert isinstance(found, Exercise), \
            f"{found.__name__} is not declared with @exercise(hints=..., answers=...)"
        assert 2 <= len(found.hints.texts) <= 3


@pytest.mark.parametrize("lesson", lesson_params())
def test_the_learner_build_shows_no_answer(lesson):
    declared = [e for e in lesson_exercises(lesson) if isinstance(e, Exercise)]
    if not declared:
        pytest.skip("no exercise declares its answer yet")
    cells = code_cells(lesson, solution=False)
    names = namespace(cells)
    problems = []
    for index, source in enumerate(cells):
        for text, obj in shown_objects(source, names):
            for exercise in declared:
                problems += [f"code cell {index + 1} shows {text}, which holds the answer to "
                             f"{exercise.name} ({answer.__qualname__}); the check's success "
                             "output shows it" for answer in exercise.answers
                             if reveals(obj, answer)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lesson", lesson_params())
def test_hints_are_offered_before_the_solution_and_hold_none_of_it(lesson):
    declared = [e for e in lesson_exercises(lesson) if isinstance(e, Exercise)]
    if not declared:
        pytest.skip("no exercise declares hints yet")
    cells = [c.source for c in read(lesson).cells if c.cell_type == "code"]
    solution_lines: set[str] = set()
    for source in cells:
        if builder.has_solution(source):
            kept = set(builder.split_solution(source, solution=False).splitlines())
            solution_lines |= {line.strip() for line in
                               builder.split_solution(source, solution=True).splitlines()
                               if line not in kept and len(line.strip()) >= 12}
    for exercise in declared:
        module, _, check = exercise.name.partition(".")
        offered = [i for i, source in enumerate(cells) if f"{module}.{check}.hints" in source]
        solved = [i for i, source in enumerate(cells)
                  if f"{module}.{check}(" in source and i > 0]
        assert offered and solved and offered[0] < solved[0] - 1, \
            f"{exercise.name}: offer its hints (`hint = {module}.{check}.hints`) in a cell " \
            "before the solution cell"
        for text in exercise.hints.texts:
            given = [line for line in solution_lines if line in text]
            assert not given, f"{exercise.name}: a hint gives the solution away: {given}"


def test_every_lesson_has_a_try_it_and_a_stretch():
    for lesson in LESSONS:
        found = lesson_exercises(lesson)
        assert any(not e.stretch for e in found) and any(e.stretch for e in found), \
            f"lesson {number_of(lesson):02d} needs a Try-it and a stretch exercise"
