"""How far a learner is: every lesson's exercises, which pass on this machine, what to take next.

Every check cell passes through one place: the IPython shell that runs it, where importing
`pycontain.checks` installs its display of `CheckFailed`. The same import registers
`record_cell` to run after every cell: a cell that calls exactly one `lessonNN.check_...` (the
grader's unit, `course.cells`) is recorded as passed when it raised nothing, failed otherwise,
with the check's message. Results go to one JSON file (`settings.progress_file()`,
/var/lib/pycontain/progress.json, or $PYCONTAIN_PROGRESS), the last run of each check winning,
replaced whole at each write (rename(2)). A check run outside a notebook (a test calling it)
records nothing; the grader gives each submission a file of its own, so grading a class is
never the grading machine's progress.

`table()` reads the lessons from the learner notebooks (their metadata holds the front
matter: title, minutes; their check cells the exercises), so it works from the learner release
too. `pycontain progress` prints it; lesson 00's first cell shows it.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycontain import settings
from pycontain.course import cells


def load(path: str | None = None) -> dict[str, dict[str, Any]]:
    """The recorded results, by check (`lesson02.check_run_named`); {} when none."""
    try:
        data = json.loads(Path(path or settings.progress_file()).read_text())
    except (OSError, ValueError):
        return {}
    results = data.get("checks") if isinstance(data, dict) else None
    return results if isinstance(results, dict) else {}


def record(check: str, passed: bool, message: str = "", *, path: str | None = None) -> None:
    """Record the result of one run of `check`; a failure to write warns, never raises (a check
    must not fail because its result could not be kept)."""
    target = Path(path or settings.progress_file())
    results = load(str(target))
    results[check] = {"passed": bool(passed), "message": message[:500],
                      "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps({"checks": results}, indent=1, sort_keys=True) + "\n")
        partial.replace(target)
    except OSError as e:
        warnings.warn(f"Failed to record {check} in {target}: {e}, ignoring", stacklevel=2)


def record_cell(result: Any) -> None:
    """IPython's post_run_cell hook: record a check cell's outcome (see the module doc)."""
    source = getattr(getattr(result, "info", None), "raw_cell", "") or ""
    called = cells.checks_called(source)
    if len(called) != 1:
        return
    error = result.error_in_exec or result.error_before_exec
    message = "" if error is None else f"{type(error).__name__}: {error}" \
        if type(error).__name__ != "CheckFailed" else str(error)
    record(called[0], error is None, message)


@dataclass(frozen=True)
class LessonProgress:
    number: int
    title: str
    minutes: int
    checks: list[str]
    passed: list[str]

    @property
    def done(self) -> bool:
        return bool(self.checks) and set(self.checks) <= set(self.passed)


def lessons(notebooks: Path | None = None, results: dict[str, dict[str, Any]] | None = None
            ) -> list[LessonProgress]:
    """Every lesson of the learner notebooks in `notebooks` (default: this installation's),
    with its exercises and which of them last passed."""
    from pycontain.course.grade import pristine_dir

    folder = notebooks or pristine_dir()
    results = load() if results is None else results
    found = []
    for path in sorted(folder.glob("[0-9][0-9]-*.ipynb")):
        nb = json.loads(path.read_text())
        meta = nb.get("metadata", {}).get("lesson", {})
        checks = [c for cell in nb["cells"] if cells.is_check(cell)
                  for c in cells.checks_called(cell["source"])]
        m = meta.get("minutes", {})
        found.append(LessonProgress(
            int(meta.get("number", path.name[:2])), meta.get("title", path.stem),
            int(m.get("teaching", 0)) + int(m.get("exercises", 0)), checks,
            [c for c in checks if results.get(c, {}).get("passed")]))
    return found


def next_lesson(progress: list[LessonProgress]) -> LessonProgress | None:
    """The first lesson, in order, whose exercises do not all pass yet."""
    return next((p for p in progress if not p.done), None)


def table(notebooks: Path | None = None, results: dict[str, dict[str, Any]] | None = None,
          hints: dict[str, int] | None = None) -> str:
    """The progress table as text: one line per lesson (with the hints opened for its
    exercises, `checks.exercise.hints_used()`), then the next lesson and its time."""
    from pycontain.checks import exercise

    progress = lessons(notebooks, results)
    results = load() if results is None else results
    hints = exercise.hints_used() if hints is None else hints
    lines = [f"{'lesson':<42} {'exercises':<16} {'hints':<6} minutes"]
    for p in progress:
        tried = [c for c in p.checks if c in results]
        mark = "done" if p.done else f"{len(p.passed)}/{len(p.checks)}" + (
            "" if tried else " (not tried)")
        opened = sum(hints.get(c, 0) for c in p.checks)
        lines.append(f"{p.number:02d} {p.title:<39} {mark:<16} {opened or '':<6} {p.minutes}")
        for check in p.checks:
            if check in results and not results[check]["passed"]:
                lines.append(f"     not yet: {check.split('.')[1]}")
    upcoming = next_lesson(progress)
    total = sum(len(p.checks) for p in progress)
    lines.append(f"{sum(len(p.passed) for p in progress)} of {total} exercises pass on this "
                 "machine (the last run of each check)")
    lines.append(f"next: lesson {upcoming.number:02d}, {upcoming.title} ({upcoming.minutes} "
                 "min)" if upcoming else "every exercise passes: the course is done")
    return "\n".join(lines)


def show() -> None:
    """Print the table (lesson 00's first cell)."""
    print(table())
