"""What a learner meets in a real Jupyter kernel: how a failed check shows, what the notebook
metadata says, and that a Lab cleans up when the kernel goes (DESIGN §3, lesson 00).

No root needed: the kernels run `Lab(check=False)`, which makes only temp dirs.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from .lessonlib import builder

TIMEOUT_S = 60
MESSAGE = "pids.max is 'max': write 10 to it, then run this cell again"
FAILING_CHECK = f"from pycontain.checks import expect\nexpect(False, {MESSAGE!r})"


def text(output: nbformat.NotebookNode) -> str:
    """What a learner reads in an error or stream output, without the ANSI colours."""
    shown = "\n".join(output.traceback) if output.output_type == "error" else output.text
    return re.sub(r"\x1b\[[0-9;]*m", "", shown)


def run(*sources: str, allow_errors: bool = True) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                   allow_errors=allow_errors).execute()
    return nb


def test_a_failed_check_shows_its_message_not_a_traceback():
    nb = run(FAILING_CHECK, "%tb")
    error, folded = nb.cells[0].outputs
    assert error.output_type == "error" and error.ename == "CheckFailed"  # what graders see
    assert text(error) == f"❌ Not yet: {MESSAGE}"
    assert len(text(error).splitlines()) <= 5 and "pycontain/checks/" not in text(error)
    # one click away: a folded <details> holding the traceback, and %tb prints it in full
    html = folded.data["text/html"]
    assert html.startswith("<details>") and "raise CheckFailed(message)" in html
    tb = "".join(text(o) for o in nb.cells[1].outputs)
    assert "pycontain/checks/__init__.py" in tb and "CheckFailed" in tb


def test_run_all_stops_at_a_failed_check():
    with pytest.raises(CellExecutionError) as info:
        run(FAILING_CHECK, "print('after the check')", allow_errors=False)
    assert info.value.ename == "CheckFailed" and MESSAGE in str(info.value)


def test_other_errors_keep_their_traceback():
    (error,) = run("def f():\n    return 1 / 0\nf()").cells[0].outputs
    assert error.ename == "ZeroDivisionError" and "return 1 / 0" in text(error)


def test_the_builds_write_the_metadata_jupyterlab_sets():
    """On connecting a kernel JupyterLab writes its kernelspec and language_info into the
    notebook, and marks it modified when they differ from what the file holds."""
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert builder.KERNELSPEC == {"name": "python3", "display_name": spec.display_name,
                                  "language": spec.language}
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=TIMEOUT_S)
        info = kc.kernel_info(reply=True, timeout=TIMEOUT_S)["content"]["language_info"]
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
    # the Python version is the lab VM's (this machine's may differ): everything else is equal
    assert {**info, "version": builder.LAB_PYTHON} == builder.LANGUAGE_INFO


def _tempdir_in_a_kernel(km: KernelManager) -> Path:
    """Start a kernel on `km`, make a Lab with a temp dir in it, return the dir."""
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=TIMEOUT_S)
    printed: list[str] = []
    kc.execute_interactive(
        "from pycontain.lab import Lab\nlab = Lab(check=False)\nprint(lab.tempdir('kernel'))",
        timeout=TIMEOUT_S,
        output_hook=lambda msg: printed.append(msg["content"].get("text", "")))
    kc.stop_channels()
    path = Path("".join(printed).strip())
    assert path.is_dir() and path.name.startswith("pycontain-kernel-")
    return path


@pytest.mark.parametrize("how", ["shutdown", "restart"])
def test_a_lab_closes_when_its_kernel_goes(how):
    """The clean-up cell never ran: shutting the kernel down or restarting it still removes
    what the Lab made (ipykernel exits normally, so atexit handlers run)."""
    km = KernelManager(kernel_name="python3")
    path = _tempdir_in_a_kernel(km)
    try:
        if how == "restart":
            km.restart_kernel(now=False)  # what JupyterLab's "Restart Kernel" asks for
        else:
            km.shutdown_kernel(now=False)
        assert not path.exists(), f"{path} outlived the kernel's {how}"
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        if path.exists():  # tidy up for the next test, after the assertion said it failed
            import shutil

            shutil.rmtree(path)
