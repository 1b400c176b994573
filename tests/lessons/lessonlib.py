"""What the lesson tests share: the notebook builder, the lesson list and its front matter."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _load_builder() -> ModuleType:
    # tools/ is not a package: load tools/notebooks.py by path, under a name nothing else uses
    spec = importlib.util.spec_from_file_location("pycontain_tools_notebooks",
                                                  ROOT / "tools" / "notebooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


builder = _load_builder()
LESSONS = builder.lessons()


def lesson_params() -> list[Any]:
    """One pytest parameter per lesson source, named after it, so new lessons join by themselves."""
    import pytest

    return [pytest.param(lesson, id=lesson.stem) for lesson in LESSONS]


@functools.cache
def read(lesson: Any) -> Any:
    """The lesson source as jupytext reads it (a notebook node); read once per session."""
    return lesson.read()


def front_matter(lesson: Any) -> dict[str, Any]:
    return dict(read(lesson).metadata.get("lesson", {}))


def number_of(lesson: Any) -> int:
    return int(lesson.stem[:2])
