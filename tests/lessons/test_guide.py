"""The instructor guide's generated parts (tools/guide.py) match the lessons, checks and doctor."""

from __future__ import annotations

import importlib.util
import sys

from pycontain import lab

from .lessonlib import LESSONS, ROOT, front_matter


def _load_guide():
    spec = importlib.util.spec_from_file_location("pycontain_tools_guide",
                                                  ROOT / "tools" / "guide.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


guide = _load_guide()


def test_the_guide_is_what_the_lessons_checks_and_doctor_say():
    assert guide.main(["check"]) == 0, "run `.venv/bin/python tools/guide.py build`"


def test_every_track_fits_its_time_with_a_fifth_spare():
    front = guide.fronts()
    for name, length, chosen, _ in guide.TRACKS:
        total = sum(guide.minutes(front[n], part) for n, part in chosen)
        assert total <= (1 - guide.SPARE) * length, f"{name}: {total} of {length} min"
    assert [n for n, _ in guide.TRACKS[-1][2]] == list(range(25))  # the course has them all


def test_the_tracks_sum_each_lessons_own_minutes_and_a_written_lesson_replaces_its_provisional():
    text = guide.tracks_part()
    for lesson in LESSONS:
        assert int(lesson.stem[:2]) in guide.fronts()
    three_hour = sum(guide.minutes(front_matter(lesson), part) for lesson in LESSONS
                     for n, part in guide.TRACKS[0][2] if int(lesson.stem[:2]) == n)
    assert f"| {three_hour} of 180" in text
    written = {int(lesson.stem[:2]) for lesson in LESSONS}
    for number in guide.PROVISIONAL:
        assert (f"{number:02d} (coming)" in text) == (number not in written)


def test_every_doctor_fix_is_in_the_guide():
    text = (ROOT / "lessons" / "instructor" / "README.md").read_text()
    for check in lab.preflight():
        assert check.fix.replace("|", "/") in text, check.name


def test_every_lesson_has_its_section_with_its_checks_messages():
    text = (ROOT / "lessons" / "instructor" / "README.md").read_text()
    for lesson in LESSONS:
        number = int(lesson.stem[:2])
        assert f"### {number:02d} {front_matter(lesson)['title']}\n" in text
        for keypoint in front_matter(lesson)["keypoints"]:
            assert f"- {keypoint}\n" in text
        assert guide.failure_messages(number), f"lesson {number:02d}: no failure message found"
