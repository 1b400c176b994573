"""Lesson 01's checks on the real kernel: each wrong turn its own diagnosis, nothing left behind."""

from __future__ import annotations

import os
import re

import pytest

from pycontain import procfs, runtime
from pycontain.checks import CheckFailed, lesson01


def reads_the_links(pid_a, pid_b, ns_type):
    return os.readlink(f"/proc/{pid_a}/ns/{ns_type}") == os.readlink(f"/proc/{pid_b}/ns/{ns_type}")


def compares_the_pids(pid_a, pid_b, ns_type):
    return pid_a == pid_b


def compares_the_paths(pid_a, pid_b, ns_type):  # realpath keeps /proc/<pid>/ns/ in front
    return (os.path.realpath(f"/proc/{pid_a}/ns/{ns_type}")
            == os.path.realpath(f"/proc/{pid_b}/ns/{ns_type}"))


def compares_the_links_own_inodes(pid_a, pid_b, ns_type):
    return (os.lstat(f"/proc/{pid_a}/ns/{ns_type}").st_ino
            == os.lstat(f"/proc/{pid_b}/ns/{ns_type}").st_ino)


def ignores_the_type(pid_a, pid_b, ns_type):
    return reads_the_links(pid_a, pid_b, "uts")


def reversed_answer(pid_a, pid_b, ns_type):
    return not reads_the_links(pid_a, pid_b, ns_type)


def returns_the_target(pid_a, pid_b, ns_type):
    return os.readlink(f"/proc/{pid_a}/ns/{ns_type}")


def answers_false_when_gone(pid_a, pid_b, ns_type):
    try:
        return reads_the_links(pid_a, pid_b, ns_type)
    except FileNotFoundError:
        return False


def raises(pid_a, pid_b, ns_type):
    raise ValueError("not yet")


def stub(pid_a, pid_b, ns_type):
    pass  # YOUR CODE HERE


def leftovers():
    """The check's own sleeps and containers, by what they run."""
    mine = []
    for pid in procfs.pids():
        try:
            if procfs.status(pid).ppid == os.getpid() and procfs.cmdline(pid)[:1] in (
                    ["sleep"], ["unshare"]):
                mine.append(pid)
        except OSError:  # ended while we looked: not ours to count
            continue
    return mine, runtime.unwaited()


def test_the_check_passes_the_links_compared():
    passed = lesson01.check_same_namespace(reads_the_links)
    assert "32 questions" in passed and "ended" in passed
    assert "def shared_namespaces" in passed._repr_markdown_()  # the library's, only now
    assert leftovers() == ([], [])


@pytest.mark.parametrize("wrong,says", [
    (compares_the_pids, "your answers follow the PIDs"),
    (compares_the_paths, "your answers follow the PIDs"),
    (compares_the_links_own_inodes, "your answers follow the PIDs"),
    (ignores_the_type, "for all eight types"),
    (reversed_answer, "the opposite of the kernel's"),
    (returns_the_target, "return True or False"),
    (stub, "returned None"),
    (answers_false_when_gone, "has ended: it is in no namespace"),
    (raises, "raised ValueError: not yet"),
])
def test_the_check_names_the_wrong_turn_not_the_code(wrong, says):
    with pytest.raises(CheckFailed, match=re.escape(says)) as info:
        lesson01.check_same_namespace(wrong)
    assert "os.readlink(" not in str(info.value)  # where to look, never the line to write
    assert leftovers() == ([], [])  # the sleeps it started are gone, whatever the function did


def keeps_an_open_descriptor(pid, ns_type):
    return os.open(f"/proc/{pid}/ns/{ns_type}", os.O_RDONLY)


def returns_the_name(pid, ns_type):
    return os.readlink(f"/proc/{pid}/ns/{ns_type}")


def closes_it_on_return(pid, ns_type):
    with open(f"/proc/{pid}/ns/{ns_type}") as f:
        return f.fileno()


def returns_the_file_object(pid, ns_type):
    return open(f"/proc/{pid}/ns/{ns_type}")  # noqa: SIM115 (the wrong turn under test)


def holds_the_process_directory(pid, ns_type):
    return os.open(f"/proc/{pid}/ns", os.O_RDONLY | os.O_DIRECTORY)


def raises_keeping(pid, ns_type):
    raise ValueError("not yet")


def open_descriptors():
    return sorted(os.listdir("/proc/self/fd"))


def test_the_stretch_enters_the_namespace_through_the_descriptor():
    before = open_descriptors()
    assert "kept-alive" in lesson01.check_kept_namespace(keeps_an_open_descriptor)
    assert open_descriptors() == before  # the check closed the learner's descriptor
    assert runtime.unwaited() == []


@pytest.mark.parametrize("wrong,says", [
    (returns_the_name, "a name holds nothing"),
    (closes_it_on_return, "is not open any more"),
    (returns_the_file_object, "a file object"),
    (holds_the_process_directory, "not on the namespace"),
    (raises_keeping, "raised ValueError: not yet"),
])
def test_the_stretch_names_what_does_not_hold_a_namespace(wrong, says):
    before = open_descriptors()
    with pytest.raises(CheckFailed, match=re.escape(says)):
        lesson01.check_kept_namespace(wrong)
    assert runtime.unwaited() == []  # the container was stopped, whatever the function did
    assert len(open_descriptors()) <= len(before) + 1  # the file object's, until it is freed
