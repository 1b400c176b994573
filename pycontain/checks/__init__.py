"""The checks behind every "Try it" cell (DESIGN §3).

A check looks at kernel state or behaviour, never at the learner's code. It returns a short
success message, or raises `CheckFailed` whose text says what is missing and how to get there.
One module per lesson: `pycontain.checks.lesson02` holds the checks of lesson 02.
"""

from __future__ import annotations


class CheckFailed(AssertionError):
    """An exercise is not done yet. The message teaches: what was expected, what was seen."""


class Passed(str):
    """A check's success message; shows with a tick in a notebook."""

    def _repr_markdown_(self) -> str:
        return f"✅ {self}"


def expect(condition: bool, message: str) -> None:
    """Raise `CheckFailed(message)` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)
