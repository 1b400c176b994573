"""Execute one notebook top to bottom in a fresh kernel, headless: the grader's inner program.

    python -m pycontain.course.runner NOTEBOOK OUT TIME_LIMIT_S

It runs as the first process of the grader's container (`course.grade`), so the kernel it
starts, and everything the kernel starts, is inside that container's cgroup and its limits.
Every cell runs even after an error (a failed check must not hide the next exercise). After
each cell the executed notebook is written to OUT, so a run killed from outside still shows what
it reached. The time limit is for the whole notebook: each cell gets what is left; a cell that
takes longer is recorded in OUT's metadata (`pycontain.grading.timed_out_cell`) and the run
stops there, exit status 3.

On cgroup v2 the container's cgroup may not both hold processes and hand controllers to the
cgroups a lesson makes (the no-internal-processes rule), so this process first moves into a leaf
of it, `pycontain-self`, and the kernel makes the lesson's cgroups beside that leaf
(`$PYCONTAIN_CGROUP_PARENT`): what the lab VM's delegated Jupyter service does. On v1 and hybrid
hosts the lesson's cgroups go beneath the kernel's own, which is inside the container's.

See also: nbclient's NotebookClient (hooks `on_cell_start`, `on_cell_executed`).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

TIMED_OUT = 3


def _leaf_on_v2() -> None:
    from pycontain import cgroups, settings

    layout = cgroups.detect()
    if layout.mode != "v2" or layout.unified is None:
        return
    home = layout.unified
    leaf = os.path.join(home.own_dir, settings.SELF_LEAF)
    if not os.path.isdir(leaf):
        cgroups.make_dir(leaf)
    cgroups.write_file(os.path.join(leaf, "cgroup.procs"), os.getpid())
    os.environ[settings.CGROUP_PARENT_VARIABLE] = home.own


def execute(notebook: Path, out: Path, time_limit_s: float) -> int:
    """Run `notebook`, writing it executed to `out` after every cell; 0, or 3 on a time-out."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError

    nb = nbformat.read(notebook, as_version=4)
    deadline = time.monotonic() + time_limit_s
    grading = nb.metadata.setdefault("pycontain", {}).setdefault("grading", {})
    current = {"index": -1}

    def started(cell: nbformat.NotebookNode, cell_index: int) -> None:
        current["index"] = cell_index
        client.timeout = max(1, int(deadline - time.monotonic()))

    def executed(cell: nbformat.NotebookNode, cell_index: int, **_: object) -> None:
        nbformat.write(nb, out)

    client = NotebookClient(nb, timeout=max(1, int(time_limit_s)), kernel_name="python3",
                            allow_errors=True, interrupt_on_timeout=False,
                            on_cell_start=started, on_cell_executed=executed,
                            resources={"metadata": {"path": str(notebook.parent)}})
    status = 0
    try:
        client.execute()
    except CellTimeoutError:
        grading["timed_out_cell"] = current["index"]
        status = TIMED_OUT
    nbformat.write(nb, out)
    return status


def main(argv: list[str]) -> int:
    notebook, out, limit = Path(argv[0]), Path(argv[1]), float(argv[2])
    _leaf_on_v2()
    return execute(notebook, out, limit)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
