"""Run every LEARNER notebook: each `check` cell must fail, and nothing else may (DESIGN §3).

In the learner build every exercise is a stub (`pass  # YOUR CODE HERE`), so a check that passes
there cannot tell a finished exercise from an untouched one: that is a defect. A cell other than
a check that fails is a defect too: the learner would meet an error before the exercise. A failed
check shows its message and nothing else (no traceback through pycontain/checks/), still as an
error output so that "Run All" stops there; and no stub shows `Ellipsis`. The
SOLUTION build is run by `pytest --nbval-lax notebooks/solutions` (`make test`), not here.
Each learner run is also scored as `pycontain grade` scores it: zero points, every lesson.
"""

from __future__ import annotations

import json
import os
import re

import nbformat
import pytest
from nbclient import NotebookClient

from pycontain import lab
from pycontain.course.score import score

from .lessonlib import builder, lesson_params

CELL_TIMEOUT_S = 120

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lessons create namespaces: they need root"),
    pytest.mark.skipif(not (lab.in_lab_vm() or lab.host_allowed()),
                       reason="not the lab VM: set PYCONTAIN_ALLOW_HOST=1 to run the notebooks "
                              "on this machine"),
]


def errors_by_cell(path, nb: nbformat.NotebookNode | None = None
                   ) -> list[tuple[int, nbformat.NotebookNode, nbformat.NotebookNode | None]]:
    """Execute the notebook at `path` (into `nb`, when given) as a learner would; (index, cell,
    error output or None)."""
    nb = nb if nb is not None else nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        error = next((o for o in cell.outputs if o.output_type == "error"), None)
        found.append((index, cell, error))
    return found


def shown(output: nbformat.NotebookNode) -> str:
    """The text a learner sees for one output, without the ANSI colour codes."""
    if output.output_type == "error":
        text = "\n".join(output.traceback)
    elif output.output_type == "stream":
        text = output.text
    else:
        text = output.get("data", {}).get("text/plain", "")
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.mark.parametrize("lesson", lesson_params())
def test_every_check_fails_and_nothing_else(lesson):
    path = lesson.learner
    assert path.exists(), f"{path.name} is missing: run `make notebooks`"
    problems = []
    executed = nbformat.read(path, as_version=4)
    for index, cell, error in errors_by_cell(path, executed):
        where = f"cell {index} ({cell.source.strip().splitlines()[0][:60]!r})"
        raised = f"{error.ename}: {error.evalue}" if error else ""
        if builder.is_check(cell):
            if error is None:
                problems.append(f"{where}: a check that passes on the stub cannot fail")
            elif error.ename != "CheckFailed":
                problems.append(f"{where}: the check raised {raised}, not CheckFailed")
            elif shown(error) != f"❌ Not yet: {error.evalue}":
                problems.append(f"{where}: shows more than its message:\n{shown(error)}")
        elif error is not None:
            problems.append(f"{where}: raised {raised}")
        if any(shown(o).strip() == "Ellipsis" for o in cell.outputs):
            problems.append(f"{where}: shows Ellipsis (a stub's bare `...`)")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)
    # grading this run, as `pycontain grade` scores it, gives zero: the proof that an
    # unsolved notebook earns nothing, from the run CI makes anyway (no second execution)
    graded = score(json.loads(nbformat.writes(executed)), json.loads(path.read_text()))
    assert graded and sum(e.earned for e in graded) == 0, [(e.check, e.state) for e in graded]
