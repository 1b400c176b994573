"""Lesson N uses only the pycontain modules that lessons 00..N introduced (DESIGN §3).

Each lesson's front matter lists what it introduces (`adds: [procfs, probe]`). Code cells are
parsed with `ast` (IPython syntax such as `!cmd` and `%magic` translated first) and every use of
pycontain is mapped to the module it reaches:

    import pycontain.X                 -> X
    from pycontain import X            -> X when X is a module, else _EXPORTS[X] (its home module)
    from pycontain.X import Y          -> X.Y when that is a module, else X
    pycontain.X / pycontain.X.Y        -> the longest module prefix, or _EXPORTS[X]

Always allowed: `pycontain` itself, `observe.display` (`show`), the `checks` package
(CheckFailed), `course.progress` (lesson 00's table of the course) and the lesson's own
`checks.lessonNN`. A submodule counts as introduced with
its package unless some lesson introduces it by name (then it waits for that lesson); a
package counts as introduced as soon as any module inside it is.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping

import jupytext
import pytest
from IPython.core.inputtransformer2 import TransformerManager

import pycontain

from .lessonlib import LESSONS, ROOT, front_matter, lesson_params, number_of, read

ALWAYS = {"observe.display", "checks", "course.progress"}  # progress: lesson 00's first cell


def is_module(dotted: str) -> bool:
    path = ROOT / "pycontain" / dotted.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def uses(source: str, bound: set[str] | None = None) -> set[str]:
    """The pycontain modules one code cell reaches, as dotted names below `pycontain`.

    `bound` holds the names that stand for the pycontain package itself (`import pycontain as
    pc` adds `pc`); pass the same set for every cell of a notebook, since names outlive cells.
    """
    tree = ast.parse(TransformerManager().transform_cell(source))
    found: set[str] = set()
    bound = {"pycontain"} if bound is None else bound
    bound.add("pycontain")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "pycontain":
                    bound.add(alias.asname or "pycontain")
                elif alias.name.startswith("pycontain."):
                    found.add(alias.name.removeprefix("pycontain."))
                    if alias.asname is None:
                        bound.add("pycontain")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "pycontain":
                for alias in node.names:
                    found.add(_member("", alias.name))
            elif node.module.startswith("pycontain."):
                package = node.module.removeprefix("pycontain.")
                for alias in node.names:
                    found.add(_member(package, alias.name))
    for node in ast.walk(tree):
        chain = _attribute_chain(node)
        if chain and chain[0] in bound and len(chain) > 1:
            found.add(_longest_module(chain[1:]))
    found.discard("")
    return found


def _member(package: str, name: str) -> str:
    """What `from pycontain[.package] import name` reaches."""
    dotted = f"{package}.{name}" if package else name
    if is_module(dotted) or re.fullmatch(r"checks\.lesson\d\d", dotted):
        return dotted
    if not package:
        return pycontain._EXPORTS.get(name, "")  # `__version__` and the like: the package
    return package


def _longest_module(parts: list[str]) -> str:
    for end in range(len(parts), 0, -1):
        if is_module(".".join(parts[:end])):
            return ".".join(parts[:end])
    return pycontain._EXPORTS.get(parts[0], "")


def _attribute_chain(node: ast.AST) -> list[str] | None:
    """`a.b.c` as ['a', 'b', 'c'] for the outermost Attribute node of a chain."""
    if not isinstance(node, ast.Attribute):
        return None
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def violations(number: int, sources: Iterable[str],
               adds_by_lesson: Mapping[int, Iterable[str]]) -> list[str]:
    """Every use in lesson `number` of a module that no lesson <= `number` introduced."""
    introduced = {m for n, adds in adds_by_lesson.items() if n <= number for m in adds}
    named_anywhere = {m for adds in adds_by_lesson.values() for m in adds}
    own_checks = f"checks.lesson{number:02d}"

    def allowed(module: str) -> bool:
        if module in ALWAYS or module == own_checks:
            return True
        if module.startswith("checks."):
            return False  # another lesson's checks
        for added in introduced:
            if module == added or added.startswith(module + "."):
                return True  # the module itself, or a package around it
            if module.startswith(added + ".") and module not in named_anywhere:
                return True  # a submodule that comes with its package
        return False

    found = []
    bound: set[str] = set()
    for index, source in enumerate(sources):
        for module in sorted(uses(source, bound)):
            if not allowed(module):
                later = sorted(n for n, adds in adds_by_lesson.items() if module in adds)
                where = (f"lesson {later[0]:02d} introduces it" if later else
                         "the checks of another lesson" if module.startswith("checks.") else
                         "no lesson introduces it (add it to some lesson's `adds:`)")
                found.append(f"code cell {index + 1}: pycontain.{module} ({where})")
    return found


def adds_by_lesson() -> dict[int, list[str]]:
    return {number_of(lesson): list(front_matter(lesson).get("adds", [])) for lesson in LESSONS}


@pytest.mark.parametrize("lesson", lesson_params())
def test_lesson_imports_only_what_earlier_lessons_introduced(lesson):
    code = [c.source for c in read(lesson).cells if c.cell_type == "code"]
    assert violations(number_of(lesson), code, adds_by_lesson()) == []


FAKE_LESSON = """\
---
lesson: {number: 1, title: Do a thing, adds: [procfs]}
---

# Do a thing

```{code-cell} ipython3
import pycontain
from pycontain import procfs, lab, show
from pycontain.checks import lesson01
```

```{code-cell} ipython3
!echo shell lines are fine
pycontain.run(["true"])
```

```{code-cell} ipython3
from pycontain.namespaces import uts
import pycontain.cgroups.controllers.memory
from pycontain.checks import lesson02
pycontain.errors.format_error
```
"""


def test_the_rule_finds_what_a_lesson_may_not_use_yet():
    nb = jupytext.reads(FAKE_LESSON, fmt="md:myst")
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    adds = {0: ["lab"], 1: ["procfs"], 2: ["syscalls", "errors", "runtime", "namespaces.uts"],
            12: ["cgroups"], 14: ["cgroups.controllers.memory"]}
    assert violations(1, code, adds) == [
        "code cell 2: pycontain.runtime (lesson 02 introduces it)",
        "code cell 3: pycontain.cgroups.controllers.memory (lesson 14 introduces it)",
        "code cell 3: pycontain.checks.lesson02 (the checks of another lesson)",
        "code cell 3: pycontain.errors (lesson 02 introduces it)",
        "code cell 3: pycontain.namespaces.uts (lesson 02 introduces it)",
    ]
    assert violations(14, code[1:2], adds) == []  # later on, the same code is fine
    assert violations(12, code[2:3], adds)[0].startswith(
        "code cell 1: pycontain.cgroups.controllers.memory")  # a package brings not its later parts
