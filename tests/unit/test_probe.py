"""probe: namespace tables and groups, helper processes, experiments in a fresh process.

Everything here runs without root: plain child processes only, and unshare(2) only where the
kernel refuses it before any permission check (CLONE_NEWUSER from a threaded process).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from pycontain import errors, helper, procfs
from pycontain.errors import SpecError, SyscallError
from pycontain.namespaces import uts
from pycontain.observe import probe
from pycontain.observe.probe import NamespaceTable, ProcessNamespaces
from pycontain.procfs import NamespaceId
from pycontain.syscalls import CloneFlag


def row(pid: int, command: str, **inodes: int) -> ProcessNamespaces:
    return ProcessNamespaces(pid, command, {t: NamespaceId(t, n) for t, n in inodes.items()})


def test_group_puts_processes_with_equal_inodes_together():
    rows = [row(1, "init", uts=10, net=20), row(2, "sh", uts=10, net=21), row(3, "box", uts=11)]
    grouped = probe.group(rows)
    assert grouped["uts"] == {NamespaceId("uts", 10): [1, 2], NamespaceId("uts", 11): [3]}
    assert grouped["net"] == {NamespaceId("net", 20): [1], NamespaceId("net", 21): [2]}


def test_table_marks_what_differs_from_the_first_row():
    table = NamespaceTable((row(1, "init", uts=10), row(2, "box", uts=11), row(3, "sh")), ("uts",))
    assert "11*" in repr(table) and "10*" not in repr(table)
    assert "<b>11</b>" in table._repr_html_()
    assert repr(table).splitlines()[3].split() == ["3", "sh", "-*"]  # missing type: shown as -


def test_table_escapes_labels_in_html():
    table = NamespaceTable((row(1, "<script>", uts=10),), ("uts",))
    assert "<script>" not in table._repr_html_()


def test_namespace_table_reads_this_process_and_takes_labels():
    table = probe.namespace_table({os.getpid(): "me"})
    (me,) = table.rows
    assert me.command == "me" and me.namespaces == procfs.namespaces("self")


def test_namespace_table_leaves_out_processes_that_ended():
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert [r.pid for r in probe.namespace_table([os.getpid(), gone.pid])] == [os.getpid()]


def test_start_waits_until_the_program_runs_and_lab_stops_it(scratch):
    process = probe.start(["sleep", "30"], lab=scratch)
    assert procfs.status(process.pid).name == "sleep"
    assert procfs.namespaces(process.pid) == procfs.namespaces("self")
    scratch.close()
    assert process.returncode == -9


def test_start_reports_a_program_that_never_becomes_what_was_asked():
    with pytest.raises(RuntimeError, match="did not become 'sleep'"):
        probe.start(["true"], wait_for="sleep", timeout_s=2)


def test_stop_tolerates_a_process_that_already_ended():
    process = subprocess.Popen(["true"])
    process.wait()
    probe.stop(process)
    assert process.returncode == 0


def test_in_fresh_process_returns_the_result():
    assert helper.in_fresh_process(errors.errno_name, errno.EPERM) == "EPERM"


def test_in_fresh_process_runs_in_a_new_interpreter():
    argv = helper.in_fresh_process(procfs.cmdline, "self")  # the child's /proc/self, not ours
    assert argv[:4] == [sys.executable, "-I", "-S", "-c"]


def test_in_fresh_process_raises_the_same_error_again():
    with pytest.raises(SpecError) as raised:
        helper.in_fresh_process(uts.validate_hostname, "x" * 65)
    assert raised.value.parameter == "hostname" and raised.value.hint == uts.HOSTNAME_HINT


def test_in_fresh_process_takes_only_pycontain_functions():
    with pytest.raises(ValueError, match="function of the pycontain package"):
        helper.in_fresh_process(os.getpid)


def test_a_second_thread_is_enough_for_unshare_newuser_to_fail_with_einval():
    with pytest.raises(SyscallError) as raised:
        helper.in_fresh_process(probe.unshare_with_threads, CloneFlag.CLONE_NEWUSER, 2)
    assert raised.value.call == "unshare" and raised.value.errno == errno.EINVAL
    assert "multi-threaded" in (raised.value.hint or "")
