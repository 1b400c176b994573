"""A Try-it exercise as a lesson declares it: its check, its stepped hints and its answer.

Each check of a lesson is declared with `@exercise(hints=..., answers=...)` next to its code
(DESIGN §3, "Exercises"):

- `hints`: two or three hints of increasing detail. Each says *where to look* (the syscall, the
  man page, the earlier cell) and never the code to write; the last may come close. A learner
  opens them one at a time, with the button the hint cell shows in JupyterLab or with `hint(n)`
  in any kernel; each opened hint is counted (`hints_used()`).
- `answers`: the library functions that solve the exercise. The learner build shows none of them
  before the check (tests/lessons/test_no_answer_first.py); the check's success output does:
  "compare yours with the library's".
- `stretch`: a harder, open-ended exercise for who finished early, checked the same way.

The count of opened hints is one JSON file per learner (`settings.hints_file()`,
`$PYCONTAIN_HINTS_FILE`): `{"lesson03.check_tiny_init": 2}`, the highest hint opened. The
course's reports read it with `hints_used()`, the one documented way.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pycontain import settings
from pycontain.checks import Passed


def hints_used(path: str | None = None) -> dict[str, int]:
    """How many hints of each exercise the learner opened, by check (`lesson03.check_tiny_init`).

    What `pycontain progress` and the grader's reports read; {} when none was opened.
    """
    try:
        with open(path or settings.hints_file()) as f:
            found = json.load(f)
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in found.items() if isinstance(v, int)} if isinstance(found, dict) \
        else {}


def _record(check: str, number: int, path: str | None = None) -> None:
    """Count hint `number` of `check` as opened (the highest one counts), replacing the file
    whole (a temporary file, then rename(2)) so that a reader never sees half of it."""
    path = path or settings.hints_file()
    used = hints_used(path)
    if used.get(check, 0) >= number:
        return
    used[check] = number
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        json.dump(used, f, indent=1, sort_keys=True)
    os.replace(temporary, path)


class Hints:
    """An exercise's hints: `hint(n)` shows hint n; displayed, a button opens the next one."""

    def __init__(self, check: str, texts: Sequence[str]) -> None:
        self.check = check
        self.texts = tuple(texts)

    def __call__(self, number: int) -> Hint:
        if not isinstance(number, int) or not 1 <= number <= len(self.texts):
            raise ValueError(f"`number` must be 1 to {len(self.texts)} (this exercise has "
                             f"{len(self.texts)} hints), got {number!r}")
        _record(self.check, number)
        return Hint(number, len(self.texts), self.texts[number - 1])

    def __repr__(self) -> str:
        return (f"{len(self.texts)} hints, each more detailed than the one before: "
                + ", ".join(f"hint({n})" for n in range(1, len(self.texts) + 1)))

    def _ipython_display_(self) -> None:
        from IPython.display import display

        try:
            import ipywidgets
        except ImportError:  # a kernel without widgets: the headless way
            display({"text/plain": repr(self)}, raw=True)
            return
        shown = ipywidgets.Output()
        button = ipywidgets.Button(description="Show hint 1", icon="lightbulb-o",
                                   tooltip=f"{len(self.texts)} hints, each more detailed")
        opened = [0]

        def next_hint(_: object) -> None:
            opened[0] += 1
            with shown:
                display(self(opened[0]))
            if opened[0] == len(self.texts):
                button.disabled, button.description = True, "no more hints"
            else:
                button.description = f"Show hint {opened[0] + 1}"

        button.on_click(next_hint)
        view = ipywidgets.VBox([button, shown])
        # the widget where JupyterLab draws it; where nothing draws widgets (nbconvert, a
        # terminal), the sentence that says how to open the hints instead of the widget's repr
        bundle = dict(view._repr_mimebundle_() or {})
        bundle["text/plain"] = repr(self)
        display(bundle, raw=True)


class Hint(str):
    """One hint, shown as "💡 Hint 2 of 3: …"."""

    def __new__(cls, number: int, of: int, text: str) -> Hint:
        return super().__new__(cls, f"Hint {number} of {of}: {text}")

    def __repr__(self) -> str:  # headless, the hint as words, not a quoted string
        return f"💡 {self}"

    def _repr_markdown_(self) -> str:
        return f"💡 {self}"


class Exercise:
    """A check with its hints and its answer; calling it runs the check."""

    def __init__(self, check: Callable[..., Passed], *, hints: Sequence[str],
                 answers: Sequence[Callable[..., Any]] = (), stretch: bool = False) -> None:
        module = check.__module__.rpartition(".")[2]
        self.name = f"{module}.{check.__name__}"
        if not 2 <= len(hints) <= 3:
            raise ValueError(f"{self.name}: `hints` must be 2 or 3 hints, got {len(hints)}")
        self.check = check
        self.hints = Hints(self.name, hints)
        self.answers = tuple(answers)
        self.stretch = stretch
        functools.update_wrapper(self, check)

    def __call__(self, *args: Any, **kwargs: Any) -> Passed:
        passed = self.check(*args, **kwargs)
        return Passed(passed, answers=self.answers)

    def __repr__(self) -> str:
        return f"<exercise {self.name}{' (stretch)' if self.stretch else ''}>"


def exercise(*, hints: Sequence[str], answers: Sequence[Callable[..., Any]] = (),
             stretch: bool = False) -> Callable[[Callable[..., Passed]], Exercise]:
    """Declare a check as an exercise (see the module doc)."""
    return lambda check: Exercise(check, hints=hints, answers=answers, stretch=stretch)


def exercises(module: Any) -> Mapping[str, Exercise]:
    """A lesson's checks module's exercises, by check name."""
    return {name: value for name, value in vars(module).items() if isinstance(value, Exercise)}
