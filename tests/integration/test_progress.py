"""`pycontain progress`: a check run in a kernel records its result; the table follows it."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
from nbclient import NotebookClient

from pycontain.course import progress

PASS = """\
from pycontain.checks import lesson00
from pycontain.lab import Lab
practice = Lab(check=False)
made = practice.tempdir("progress")
practice.defer(lambda: __import__("shutil").rmtree(made), f"remove {made}")"""
CHECK = "lesson00.check_left_nothing_behind(practice, made)"
FAIL = "made = '/nonexistent/made'"  # not named pycontain-: the check fails, nothing made


def run_cells(sources, tmp_path, store, monkeypatch):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    monkeypatch.setenv("PYCONTAIN_PROGRESS", str(store))  # the kernel inherits it
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def test_a_check_run_in_a_kernel_changes_the_progress(tmp_path, monkeypatch):
    store = tmp_path / "progress.json"
    nb = run_cells([PASS, CHECK, "practice.close()"], tmp_path, store, monkeypatch)
    assert not any(o.output_type == "error" for c in nb.cells for o in c.outputs)
    results = progress.load(str(store))
    assert results["lesson00.check_left_nothing_behind"]["passed"] is True
    table = progress.table(results=results)
    assert "00 Set up the lab" in table and "1/3" in table.split("\n")[1]  # of 2 and a stretch

    nb = run_cells([PASS.split("\nmade")[0], FAIL, CHECK], tmp_path, store, monkeypatch)
    assert [o.ename for o in nb.cells[2].outputs if o.output_type == "error"] == ["CheckFailed"]
    results = progress.load(str(store))
    failed = results["lesson00.check_left_nothing_behind"]
    assert failed["passed"] is False and "should be named pycontain-" in failed["message"]
    table = progress.table(results=results)
    assert "not yet: check_left_nothing_behind" in table and "next: lesson 00" in table

    done = subprocess.run([sys.executable, "-m", "pycontain", "progress"], capture_output=True,
                          text=True, env={"PYCONTAIN_PROGRESS": str(store), "PATH": "/usr/bin"})
    assert done.returncode == 0 and done.stdout.strip() == table
    assert json.loads(store.read_text())["checks"]  # one file, whole


def test_a_cell_that_calls_no_check_records_nothing(tmp_path, monkeypatch):
    store = tmp_path / "progress.json"
    run_cells(["from pycontain.checks import lesson00", "1 + 1"], tmp_path, store, monkeypatch)
    assert not store.exists()
