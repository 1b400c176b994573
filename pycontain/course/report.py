"""The grader's four outputs: a table for the terminal, JSON, JUnit XML, Gradescope's results.json.

- JSON: everything the grader knows, one object per submission (`to_json`);
- JUnit XML: one `<testsuite>` per submission, one `<testcase>` per exercise, a `<failure>` with
  the check's message for each one not passed: what GitHub Classroom, GitLab and most CI read;
- Gradescope: `results.json` of its autograder specification (`score`, `tests` with `name`,
  `score`, `max_score`, `status`, `output`), one per submission, since Gradescope runs one
  submission at a time.

See also: the JUnit XML schema as Jenkins and GitLab read it; Gradescope's "Autograder
Specifications".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from pycontain.course.grade import RAN, NotebookGrade, SubmissionGrade


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _lesson(notebook: NotebookGrade) -> str:
    return f"lesson {notebook.lesson:02d}" if notebook.lesson is not None else notebook.path


def table(graded: list[SubmissionGrade]) -> str:
    """One line per exercise, a line per notebook that did not run to its end, and totals."""
    lines = []
    for sub in graded:
        lines.append(f"{sub.name}: {_number(sub.score)}/{_number(sub.total)} points")
        for nb in sub.notebooks:
            if nb.outcome != RAN:
                lines.append(f"  {_lesson(nb)}  {nb.outcome.upper()}: {nb.detail}")
            for ex in nb.exercises:
                mark = "PASS" if ex.passed else ex.state.upper()
                lines.append(f"  {_lesson(nb)}  {ex.check.split('.')[1]:<28} {mark:<8} "
                             f"{_number(ex.earned)}/{_number(ex.points)}  {ex.message}")
            lines.append(f"  {_lesson(nb)}  total {_number(nb.score)}/{_number(nb.total)}  "
                         f"({nb.seconds:.0f} s)")
        for item in sub.left_behind:
            lines.append(f"  left behind: {item}")
    total = sum(s.score for s in graded), sum(s.total for s in graded)
    lines.append(f"all: {_number(total[0])}/{_number(total[1])} points, "
                 f"{sum(s.passed for s in graded)} of {len(graded)} submissions fully passed")
    return "\n".join(lines)


def to_json(graded: list[SubmissionGrade]) -> dict[str, Any]:
    return {
        "score": _number(sum(s.score for s in graded)),
        "max_score": _number(sum(s.total for s in graded)),
        "passed": all(s.passed for s in graded),
        "submissions": [{
            "name": s.name, "score": _number(s.score), "max_score": _number(s.total),
            "passed": s.passed, "left_behind": s.left_behind,
            "notebooks": [{
                "path": nb.path, "lesson": nb.lesson, "title": nb.title, "outcome": nb.outcome,
                "detail": nb.detail, "seconds": round(nb.seconds, 1), "cgroup": nb.cgroup,
                "score": _number(nb.score), "max_score": _number(nb.total),
                "exercises": [{"check": e.check, "state": e.state, "message": e.message,
                               "score": _number(e.earned), "max_score": _number(e.points)}
                              for e in nb.exercises]}
                for nb in s.notebooks]}
            for s in graded],
    }


def junit(graded: list[SubmissionGrade]) -> str:
    suites = ElementTree.Element("testsuites", name="pycontain grade")
    for sub in graded:
        cases = [(nb, ex) for nb in sub.notebooks for ex in nb.exercises]
        broken = [nb for nb in sub.notebooks if not nb.exercises]
        suite = ElementTree.SubElement(
            suites, "testsuite", name=sub.name, tests=str(len(cases) + len(broken)),
            failures=str(sum(not ex.passed for _, ex in cases) + len(broken)))
        for nb in sub.notebooks:
            for ex in nb.exercises:
                case = ElementTree.SubElement(
                    suite, "testcase", classname=f"{sub.name}.{_lesson(nb).replace(' ', '')}",
                    name=ex.check.split(".")[1], time=f"{nb.seconds:.1f}")
                if not ex.passed:
                    why = ex.message if nb.outcome == RAN else f"{nb.outcome}: {nb.detail}"
                    failure = ElementTree.SubElement(case, "failure", message=ex.message,
                                                     type=ex.state)
                    failure.text = why
            if not nb.exercises:  # not gradable: one failing case says why
                case = ElementTree.SubElement(suite, "testcase", classname=sub.name,
                                              name=Path(nb.path).name)
                ElementTree.SubElement(case, "failure", message=nb.detail, type=nb.outcome)
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(
        suites, encoding="unicode") + "\n"


def gradescope(sub: SubmissionGrade) -> dict[str, Any]:
    tests = []
    for nb in sub.notebooks:
        for ex in nb.exercises:
            output = ex.message if nb.outcome == RAN else f"{ex.message}\n({nb.outcome}: " \
                                                          f"{nb.detail})"
            tests.append({"name": f"{_lesson(nb)}: {ex.check.split('.')[1]}",
                          "score": _number(ex.earned), "max_score": _number(ex.points),
                          "status": "passed" if ex.passed else "failed", "output": output})
    notes = [f"{Path(nb.path).name}: {nb.outcome}: {nb.detail}" for nb in sub.notebooks
             if nb.outcome != RAN]
    return {"score": _number(sub.score), "max_score": _number(sub.total), "tests": tests,
            "output": "\n".join(notes), "visibility": "visible"}


def write_gradescope(graded: list[SubmissionGrade], path: Path) -> list[Path]:
    """results.json at `path` for one submission; for several, `path` is a folder holding
    `<submission>/results.json` each. Returns the files written."""
    if len(graded) == 1:
        targets = [(graded[0], path)]
    else:
        targets = [(sub, path / sub.name / "results.json") for sub in graded]
    for sub, target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(gradescope(sub), indent=2) + "\n")
    return [target for _, target in targets]
