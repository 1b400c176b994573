"""Every lesson the project cites exists, or the citing line says it is coming; and nothing
points outside the repository (a clone has no `../shared`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LESSONS = {p.name[:2] for p in (ROOT / "lessons").glob("[0-9][0-9]-*.md")}
#: "lesson 05", "lessons 12-14", "Lesson 20", "(lessons 13–14 and 22)"
CITATION = re.compile(r"\b[Ll]essons? ((?:\d{2}(?:[-–]\d{2})?(?:,? (?:and |or )?)?)+)")


def sources() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "lessons").rglob("*.md")), *sorted((ROOT / "pycontain").rglob("*.py")),
             *sorted((ROOT / "tools").rglob("*.*")), *sorted((ROOT / "vagrant").glob("*.*"))]
    return [p for p in found if p.is_file() and "__pycache__" not in p.parts]


def numbers(text: str) -> set[str]:
    """Each two-digit number in `text`; a range `12-14` names each one in it."""
    found: set[str] = set()
    for first, last in re.findall(r"\b(\d{2})(?:[-–](\d{2}))?", text):
        found.update(f"{n:02d}" for n in range(int(first), int(last or first) + 1))
    return found


def cited(line: str) -> set[str]:
    """The lesson numbers a line cites."""
    return {n for group in CITATION.findall(line) for n in numbers(group)}


def track_lessons(line: str) -> set[str]:
    """The lessons named in a row of the instructor guide's track table (`| 1-day | 00, 06 |`)."""
    cells = line.split("|")
    return numbers(cells[2]) if len(cells) > 3 else set()


def test_the_rule_can_fail():
    assert cited("as lesson 31 shows") == {"31"} and cited("lessons 12-14") == {"12", "13", "14"}
    assert cited("(lessons 13 and 22)") == {"13", "22"} and not cited("in 2024")


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cited_lesson_exists_or_is_marked_coming(path):
    text = path.read_text(errors="replace")
    tracks = path.name == "README.md" and path.parent.name == "instructor"
    wrong = []
    for number, line in enumerate(text.splitlines(), 1):
        numbers = cited(line) | (track_lessons(line) if tracks and line.startswith("| ") else set())
        missing = sorted(numbers - LESSONS)
        if missing and "coming" not in line.lower():
            wrong.append(f"{path.name}:{number}: lesson {', '.join(missing)}: {line.strip()}")
    assert not wrong, "cite an existing lesson or say (coming):\n" + "\n".join(wrong)


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_points_outside_the_repository(path):
    assert "../shared" not in path.read_text(errors="replace")
