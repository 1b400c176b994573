"""Build the notebooks from the lesson sources, one way only (DESIGN §3).

    python tools/notebooks.py build [--force]   write notebooks/ from lessons/
    python tools/notebooks.py check             exit 1 when notebooks/ has drifted from lessons/

Sources are `lessons/NN-verb-phrase.md`, MyST Markdown read with jupytext (`md:myst`). Each gives
two notebooks, committed without outputs:

- `notebooks/NN-verb-phrase.ipynb`, the LEARNER build: every block between a `# BEGIN SOLUTION`
  and an `# END SOLUTION` line (markers included) becomes one line `pass  # YOUR CODE HERE`,
  indented like the BEGIN marker, so the cell still runs, shows nothing (a bare `...` as a cell's
  last line would display `Ellipsis`), and the check cell after it fails;
- `notebooks/solutions/NN-verb-phrase.ipynb`, the SOLUTION build: the marker lines are dropped
  and the code between them kept.

Check cells and solution cells carry the grader's and nbgrader's metadata
(`pycontain.course.cells`): a check cell is locked, worth the points the front matter gives it,
and recorded with a hash of its source; a solution cell is nbgrader's solution cell.

The output is deterministic: cell ids are numbered, metadata holds only the kernelspec, the
language, the lesson's front matter and where the notebook came from, and nothing records a time.
It is what JupyterLab itself saves for the same notebook (nbformat 4.5 written by `nbformat`, as
Jupyter Server writes it), so that opening a notebook does not mark it modified: on connecting a
kernel JupyterLab sets `kernelspec` and `language_info` to what the kernel reports, and any
difference, even the Python version, makes the notebook "unsaved". So both are written as the
lab VM's ipykernel reports them. The jupytext
metadata is dropped on purpose: a generated notebook is not paired with its source, so a
learner's edits can never flow back into a lesson.

Not clobbering a learner's work. Every notebook carries a fingerprint of its cell sources
(`metadata.pycontain.fingerprint`). `build` overwrites a notebook only when it is still exactly
as a build left it: no outputs, no execution counts, and cell sources matching the fingerprint.
A notebook someone has run or edited is kept, listed with the command that overwrites it
(`--force`), and the build exits with status 1 after writing everything else. Metadata that
Jupyter adds on save (language versions, widget state) does not count as work.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jupytext
import nbformat

from pycontain.course import cells as course_cells

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "lessons"
NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
STUB = "pass  # YOUR CODE HERE"
CHECK_TAG = course_cells.CHECK_TAG
LESSON_GLOB = "[0-9][0-9]-*.md"
#: what JupyterLab writes once a kernel connects: the kernelspec ipykernel installs, and the
#: `language_info` of its kernel_info reply, with the lab VM's Python (Debian 13's python3.13 is
#: 3.13.5, patched as 3.13.5-2+deb13uN); tests/lessons/test_sync.py compares them with a kernel
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LAB_PYTHON = "3.13.5"
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
    "version": LAB_PYTHON,
}


class LessonError(ValueError):
    """A lesson source breaks a convention the build relies on."""


@dataclass(frozen=True)
class Lesson:
    """One lesson source and the two notebooks it builds."""

    source: Path
    notebooks: Path = NOTEBOOKS  # where its two builds go (tests point it elsewhere)

    @property
    def stem(self) -> str:
        return self.source.stem

    @property
    def learner(self) -> Path:
        return self.notebooks / f"{self.stem}.ipynb"

    @property
    def solution(self) -> Path:
        return self.notebooks / "solutions" / f"{self.stem}.ipynb"

    def read(self) -> nbformat.NotebookNode:
        return jupytext.read(self.source, fmt="md:myst")


def lessons(folder: Path = LESSONS) -> list[Lesson]:
    """Every lesson source, in lesson order."""
    return [Lesson(p) for p in sorted(folder.glob(LESSON_GLOB))]


# --- the two builds ------------------------------------------------------------------------------

def split_solution(source: str, *, solution: bool) -> str:
    """One code cell's source, with its solution blocks kept (solution) or stubbed (learner).

    >>> code = "def f():\\n    # BEGIN SOLUTION\\n    return 1\\n    # END SOLUTION\\nf()"
    >>> print(split_solution(code, solution=False))
    def f():
        pass  # YOUR CODE HERE
    f()
    >>> print(split_solution(code, solution=True))
    def f():
        return 1
    f()
    """
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.split("\n"), 1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise LessonError(f"line {number}: {BEGIN} inside another solution block")
            inside = True
            if not solution:
                out.append(line[: len(line) - len(line.lstrip())] + STUB)
        elif marker == END:
            if not inside:
                raise LessonError(f"line {number}: {END} without a {BEGIN} before it")
            inside = False
        elif solution or not inside:
            out.append(line)
    if inside:
        raise LessonError(f"{BEGIN} without an {END} after it")
    return "\n".join(out)


def has_solution(source: str) -> bool:
    return any(line.strip() == BEGIN for line in source.split("\n"))


is_check = course_cells.is_check


def problems(lesson: Lesson, nb: nbformat.NotebookNode | None = None) -> list[str]:
    """What in a lesson source breaks the conventions the build and the tests rely on."""
    nb = nb if nb is not None else lesson.read()
    found = []
    if nb.metadata.get("kernelspec", {}).get("name") != "python3":
        found.append("front matter: kernelspec.name must be python3")
    if not isinstance(nb.metadata.get("lesson"), dict):
        found.append("front matter: no `lesson:` block")
    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code):
        try:
            split_solution(cell.source, solution=False)
        except LessonError as e:
            found.append(f"code cell {i + 1}: {e}")
            continue
        if has_solution(cell.source):
            if is_check(cell):
                found.append(f"code cell {i + 1}: a solution cell must not be a check cell")
            if i + 1 == len(code) or not is_check(code[i + 1]):
                found.append(f"code cell {i + 1}: the code cell after a solution must be tagged "
                             f"`{CHECK_TAG}` (`:tags: [{CHECK_TAG}]`)")
        if is_check(cell) and len(course_cells.checks_called(cell.source)) != 1:
            found.append(f"code cell {i + 1}: a check cell must call exactly one "
                         f"`lessonNN.check_...`, the grader's unit (it calls "
                         f"{course_cells.checks_called(cell.source) or 'none'})")
    if isinstance(nb.metadata.get("lesson"), dict):
        called = [c for cell in code if is_check(cell)
                  for c in course_cells.checks_called(cell.source)]
        found += [f"front matter: {p}" for p in
                  course_cells.points_problems(nb.metadata["lesson"], called)]
    return found


def fingerprint(nb: dict[str, Any]) -> str:
    """A hash of the cells' types and sources: what a learner's edits change."""
    cells = [[c["cell_type"], _text(c["source"])] for c in nb["cells"]]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()[:16]


def _text(source: str | list[str]) -> str:
    return source if isinstance(source, str) else "".join(source)


def build(lesson: Lesson, *, solution: bool, nb: nbformat.NotebookNode | None = None) -> str:
    """The text of one generated notebook."""
    nb = copy.deepcopy(nb if nb is not None else lesson.read())
    bad = problems(lesson, nb)
    if bad:
        raise LessonError(f"{_show(lesson.source)}: " + "; ".join(bad))
    cells = []
    for i, cell in enumerate(nb.cells):
        metadata = dict(cell.get("metadata", {}))
        cell_id = f"cell-{i:03d}"
        if is_check(cell):  # the grader's and nbgrader's marks (pycontain.course.cells)
            metadata = course_cells.check_metadata(metadata, cell.source, nb.metadata["lesson"])
        elif cell.cell_type == "code" and has_solution(cell.source):
            metadata = course_cells.solution_metadata(metadata, cell_id)
        if cell.cell_type == "code":
            cells.append(nbformat.v4.new_code_cell(
                split_solution(cell.source, solution=solution), id=cell_id, metadata=metadata))
        elif cell.cell_type == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(cell.source, id=cell_id,
                                                       metadata=metadata))
        else:
            cells.append(nbformat.v4.new_raw_cell(cell.source, id=cell_id, metadata=metadata))
    out = nbformat.v4.new_notebook(cells=cells)
    out.nbformat, out.nbformat_minor = 4, 5
    out.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": copy.deepcopy(LANGUAGE_INFO),
        "lesson": nb.metadata["lesson"],
        "pycontain": {
            "build": "solution" if solution else "learner",
            "source": _show(lesson.source),
            "generated": "do not edit: change the source, then run `make notebooks`",
        },
    }
    out.metadata["pycontain"]["fingerprint"] = fingerprint(out)
    nbformat.validate(out)
    return nbformat.writes(out, version=4) + "\n"


def builds(lesson: Lesson) -> dict[Path, str]:
    """Both generated notebooks of a lesson, by path."""
    nb = lesson.read()
    return {lesson.learner: build(lesson, solution=False, nb=nb),
            lesson.solution: build(lesson, solution=True, nb=nb)}


# --- writing without clobbering -----------------------------------------------------------------

def untouched(path: Path) -> bool:
    """True when the notebook at `path` is still exactly as a build left it (see module doc)."""
    try:
        nb = json.loads(path.read_text())
        stamp = nb["metadata"]["pycontain"]["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    for cell in nb.get("cells", []):
        if cell.get("outputs") or cell.get("execution_count") is not None:
            return False
    return bool(stamp == fingerprint(nb))


def orphans(selected: list[Lesson] | None = None) -> list[Path]:
    """Generated notebooks whose lesson source no longer exists."""
    selected = lessons() if selected is None else selected
    stems = {lesson.stem for lesson in selected}
    folders = {lesson.notebooks for lesson in selected} or {NOTEBOOKS}
    found = [p for f in folders for p in [*f.glob("*.ipynb"), *f.glob("solutions/*.ipynb")]]
    return sorted(p for p in found if p.stem not in stems)


def _show(path: Path) -> str:
    """`path` relative to the repository when it is inside it: shorter messages."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def cmd_build(force: bool, selected: list[Lesson] | None = None) -> int:
    """Write both builds of every lesson; keep (and list) notebooks holding someone's work."""
    selected = lessons() if selected is None else selected
    kept: list[Path] = []
    for lesson in selected:
        for path, text in builds(lesson).items():
            if path.exists():
                if path.read_text() == text:
                    continue
                if not force and not untouched(path):
                    kept.append(path)
                    continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {_show(path)}")
    for path in orphans(selected):
        print(f"note: {_show(path)} has no lesson source; delete it if it is stale")
    if kept:
        print("\nkept these notebooks, because they have outputs or edits that a rebuild would "
              "lose:", file=sys.stderr)
        for path in kept:
            print(f"  {_show(path)}", file=sys.stderr)
        print("save a copy of your work under another name, then overwrite them with:\n"
              "  .venv/bin/python tools/notebooks.py build --force", file=sys.stderr)
        return 1
    return 0


def drift() -> list[str]:
    """Every generated notebook that differs from what its source builds, and why."""
    found = []
    for lesson in lessons():
        for path, text in builds(lesson).items():
            name = _show(path)
            if not path.exists():
                found.append(f"{name}: missing")
            elif path.read_text() != text:
                found.append(f"{name}: differs from {_show(lesson.source)}")
    found += [f"{_show(p)}: no lesson source" for p in orphans()]
    return found


def cmd_check() -> int:
    found = drift()
    for line in found:
        print(line, file=sys.stderr)
    if found:
        print("run `make notebooks` (notebooks/ is generated from lessons/)", file=sys.stderr)
        return 1
    print(f"{2 * len(lessons())} notebooks match their lessons")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    b = verbs.add_parser("build", help="write notebooks/ from lessons/")
    b.add_argument("--force", action="store_true",
                   help="overwrite notebooks even when they hold outputs or edits")
    verbs.add_parser("check", help="exit 1 when notebooks/ differs from what lessons/ builds")
    args = parser.parse_args(argv)
    try:
        return cmd_build(args.force) if args.verb == "build" else cmd_check()
    except LessonError as e:
        print(f"notebooks.py: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
