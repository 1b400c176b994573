"""The checks behind every "Try it" cell (DESIGN §3).

A check looks at kernel state or behaviour, never at the learner's code. It returns a short
success message, or raises `CheckFailed` whose text says what is missing and how to get there.
One module per lesson: `pycontain.checks.lesson02` holds the checks of lesson 02.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


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


#: what a "Try it" function that runs a container should hand back
RETURN_RESULT = "return what pycontain.run(argv, ...) returns, with argv as given"


def attempt(shown: str, func: Callable[..., Any], *args: Any, returns: type | None = None,
            instead: str = "") -> Any:
    """Call the learner's `func(*args)` (written `shown` in messages) and hand back its value.

    Whatever it raises becomes a `CheckFailed` that names the call; with `returns`, a value of
    another type fails with `instead`, which says what to return.
    """
    try:
        value = func(*args)
    except Exception as e:
        raise CheckFailed(f"{shown} raised {type(e).__name__}: {e}") from e
    if returns is not None:
        expect(isinstance(value, returns), f"{shown} returned {value!r}; {instead}")
    return value


def output_lines(result: Any, argv: Sequence[str], count: int, fix: str) -> list[str]:
    """The `count` lines a container that ran `argv` printed, or a `CheckFailed` ending in `fix`."""
    lines: list[str] = result.stdout.splitlines()
    expect(result.status == 0 and len(lines) == count,
           f"the container should run {list(argv)!r} and print {count} line(s), but it "
           f"{result.reason} and printed {result.stdout!r} {result.stderr!r}; {fix}")
    return lines
