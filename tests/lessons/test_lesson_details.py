"""Lesson details a newcomer trips over, checked in the sources (issue 10, item 10)."""

from __future__ import annotations

import importlib
import inspect
import re

from tests.lessons.lessonlib import LESSONS, read

SHOWN = re.compile(r"pycontain\.show\(([\w.]+)\)")


def lesson(number: int):
    (found,) = [x for x in LESSONS if x.stem.startswith(f"{number:02d}-")]
    return found


def code_of(number: int) -> list[str]:
    return [c.source for c in read(lesson(number)).cells if c.cell_type == "code"]


def text_of(number: int) -> str:
    return "\n".join(c.source for c in read(lesson(number)).cells if c.cell_type == "markdown")


def shown(number: int) -> list[object]:
    """The library objects a lesson shows with pycontain.show(...), resolved by their names."""
    modules = {"init": "pycontain.init", "uts": "pycontain.namespaces.uts",
               "probe": "pycontain.observe.probe", "widgets": "pycontain.observe.widgets"}
    found = []
    for name in SHOWN.findall("\n".join(code_of(number))):
        head, *rest = name.split(".")
        obj: object = importlib.import_module(modules[head])
        for part in rest:
            obj = getattr(obj, part)
        found.append(obj)
    return found


def test_lesson_02_shows_only_the_steps_it_adds_to_init():
    from pycontain import init

    objects = shown(2)
    assert init.setup not in objects  # the whole setup holds the steps of lessons 03-11
    assert init.unshare_namespaces in objects and init.apply_hostname in objects
    for obj in objects:
        assert len(inspect.getsource(obj).splitlines()) <= 20, obj  # ~one screen each


def test_lesson_00_does_not_claim_a_fix_on_green_lines_it_does_not_show():
    from pycontain.lab import Table

    assert Table.NOTHING_TO_DO in text_of(0)  # the text says what a green line's fix cell shows


def test_lesson_12_explains_the_directories_create_makes_beyond_its_controllers():
    from pycontain.cgroups import v1

    made = v1._needed(("memory", "pids")) | {"unified"}  # what create makes on a hybrid host
    text = text_of(12)
    for name in sorted(made - {"memory", "pids"}):
        assert f"`{name}`" in text, name
    assert "cgroup.kill" in text and "cgroup.events" in text  # why the unified one is there
