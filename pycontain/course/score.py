"""Scoring one executed notebook against its pristine learner build (pure: no kernel, no cgroup).

The pristine build says which exercises there are (its check cells: `pycontain.check`, the
`sha256` of their source, nbgrader's `points`). Each is found in the executed submission by that
hash, wherever the student moved it:

- found and run without an error output: passed, with the check's success message;
- found with an error output: failed, with the check's message (`CheckFailed`'s text);
- found but never run (the run stopped earlier: a time-out, a killed kernel): failed, not run;
- not found, but a cell tagged with its check still calls it: edited, failed;
- not found at all: deleted, failed.

A student's copy is never trusted for points or hashes: they come from the pristine build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pycontain.course import cells

PASSED, FAILED, NOT_RUN, EDITED, DELETED = "passed", "failed", "not run", "edited", "deleted"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Expected:
    """One exercise of a lesson, as its pristine learner build records it."""

    check: str  # lesson02.check_run_named
    sha256: str
    points: float


@dataclass(frozen=True)
class Exercise:
    """How one exercise of a submission did: its `state` (passed, failed, not run, edited,
    deleted), the check's message or why there is none, and the points earned of `points`."""

    check: str
    state: str
    message: str
    points: float

    @property
    def passed(self) -> bool:
        return self.state == PASSED

    @property
    def earned(self) -> float:
        return self.points if self.passed else 0


def expected(pristine: dict[str, Any]) -> list[Expected]:
    """The exercises of a pristine learner build, in order."""
    found = []
    for cell in pristine["cells"]:
        if cells.is_check(cell):
            meta = cell["metadata"]
            found.append(Expected(meta["pycontain"]["check"], meta["pycontain"]["sha256"],
                                  meta["nbgrader"]["points"]))
    return found


def score(executed: dict[str, Any], pristine: dict[str, Any], *,
          stopped: str = "") -> list[Exercise]:
    """Each exercise of `pristine` as the `executed` submission did it; `stopped` says why a
    cell that never ran did not (`the notebook ran out of its 60 s`)."""
    code = [c for c in executed["cells"] if c["cell_type"] == "code"]
    by_hash = {cells.source_hash(c["source"]): c for c in code}
    results = []
    for want in expected(pristine):
        cell = by_hash.get(want.sha256)
        if cell is None:
            calls = any(cells.is_check(c) and want.check in cells.checks_called(c["source"])
                        for c in code)
            state, message = (EDITED, "the check cell was edited; restore it as it was given "
                                      "(the check's own cell is graded, not a copy)") if calls \
                else (DELETED, "the check cell was deleted; restore it from the lesson")
        else:
            state, message = _outcome(cell, stopped)
        results.append(Exercise(want.check, state, message, want.points))
    return results


def _outcome(cell: dict[str, Any], stopped: str) -> tuple[str, str]:
    outputs = cell.get("outputs", [])
    error = next((o for o in outputs if o["output_type"] == "error"), None)
    if error is not None:
        evalue = ANSI.sub("", error["evalue"])
        return FAILED, evalue if error["ename"] == "CheckFailed" else \
            f"{error['ename']}: {evalue}"
    if cell.get("execution_count") is None:
        return NOT_RUN, f"not run: {stopped or 'the notebook stopped before this cell'}"
    # a check returns `checks.Passed`, shown as Markdown "✅ message", then a blank line and the
    # library's answer to compare with (`checks.exercise`): the message is the first paragraph
    shown = [cells.source_text(o.get("data", {}).get("text/markdown", "")) for o in outputs
             if o["output_type"] == "execute_result"]
    message = ANSI.sub("", "".join(shown)).strip().split("\n\n")[0]
    return PASSED, message.removeprefix("✅").strip()
