"""Lesson 02 on the real kernel: a UTS container has its own namespace and its own hostname."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import pycontain
from pycontain import procfs, runtime, syscalls
from pycontain.checks import CheckFailed, lesson02
from pycontain.namespaces import uts
from pycontain.syscalls import CloneFlag


def test_container_gets_a_new_uts_namespace_and_its_own_hostname():
    host_name, host_ns = socket.gethostname(), procfs.namespace("self", "uts")
    with pycontain.spawn(["sleep", "30"], namespaces={"uts"}, hostname="box-1") as container:
        inside = container.namespaces()
        assert inside["uts"] != host_ns
        assert inside["net"] == procfs.namespace("self", "net")  # only uts was asked for
        seen = subprocess.run(["nsenter", f"--target={container.pid}", "--uts", "hostname"],
                              capture_output=True, text=True, check=True).stdout
        assert seen == "box-1\n"  # what the kernel reports inside that namespace
    result = pycontain.run(["hostname"], namespaces={"uts"}, hostname="box-1")
    assert (result.stdout, result.exit_code) == ("box-1\n", 0)
    assert socket.gethostname() == host_name


def test_cli_names_the_container_and_leaves_the_host_alone(cli):
    before = socket.gethostname()
    done = cli("run", "--namespaces", "uts", "--hostname", "demo", "--", "hostname")
    assert (done.stdout, done.stderr, done.returncode) == ("demo\n", "", 0)
    assert socket.gethostname() == before


def test_default_namespaces_are_all_new(embedded_rootfs):
    with pycontain.spawn(["sleep", "30"], rootfs=embedded_rootfs) as container:
        inside, outside = container.namespaces(), procfs.namespaces("self")
        for kind in pycontain.runtime.DEFAULT_NAMESPACES:
            assert inside[kind] != outside[kind], kind
        assert container.status().nspid[-1] == 1  # PID 1 inside its own PID namespace


# lesson 02's checks: each wrong turn its own diagnosis, the notebook and the host put back,
# nothing left running

def runs_named(container_id, argv):
    return pycontain.run(argv, namespaces={"uts"}, hostname=container_id[:12])


def forgets_the_name(container_id, argv):
    return pycontain.run(argv, namespaces={"uts"})


def names_it_the_whole_id(container_id, argv):
    return pycontain.run(argv, namespaces={"uts"}, hostname=container_id)


def names_it_the_last_digits(container_id, argv):
    return pycontain.run(argv, namespaces={"uts"}, hostname=container_id[-12:])


def spawns_it(container_id, argv):
    return pycontain.spawn(["sleep", "30"], namespaces={"uts"}, hostname=container_id[:12])


def runs_the_command_line(container_id, argv):
    return subprocess.run([sys.executable, "-m", "pycontain", "run", "--namespaces", "uts",
                           "--hostname", container_id[:12], "--", *argv],
                          capture_output=True, text=True)


def runs_its_own_command(container_id, argv):
    return pycontain.run(["hostname"], namespaces={"uts"}, hostname=container_id[:12])


def isolates_the_notebook(container_id, argv):  # the lesson's own function, here
    uts.isolate_hostname(container_id[:12])
    return pycontain.run(argv)


def renames_the_host(container_id, argv):
    socket.sethostname(container_id[:12])
    return pycontain.run(argv, namespaces={"uts"}, hostname=container_id[:12])


def raises_after_starting_one(container_id, argv):
    pycontain.spawn(["sleep", "30"], namespaces={"uts"})
    raise ValueError("not yet")


def stub(container_id, argv):
    pass  # YOUR CODE HERE


def notebook():
    return socket.gethostname(), os.readlink("/proc/thread-self/ns/uts")


def test_the_check_passes_the_short_id():
    assert "3 containers" in lesson02.check_run_named(runs_named)


@pytest.mark.parametrize("wrong,says", [
    (forgets_the_name, "the host's own"),
    (names_it_the_whole_id, "the whole 64-digit id"),
    (names_it_the_last_digits, "the id's last 12 characters"),
    (spawns_it, "a container still running"),
    (runs_the_command_line, "the pycontain command's result"),
    (runs_its_own_command, "pass argv on unchanged"),
    (isolates_the_notebook, "this notebook's own thread was moved"),
    (renames_the_host, "the host itself was renamed"),
    (raises_after_starting_one, "raised ValueError: not yet"),
    (stub, "returned None"),
])
def test_the_check_names_the_wrong_turn_and_puts_the_notebook_back(wrong, says):
    before = notebook()
    with pytest.raises(CheckFailed, match=re.escape(says)) as info:
        lesson02.check_run_named(wrong)
    assert "[:12]" not in str(info.value)  # what was seen, never the code to write
    assert notebook() == before  # the host's name and this thread's namespace, as they were
    assert runtime.unwaited() == []  # whatever the function started was stopped


def reads_through_nsenter(pid):
    return subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname"], capture_output=True,
                          text=True, check=True).stdout.strip()


def joins_in_a_thread(pid):  # namespaces belong to threads: a thread of its own joins, and ends
    said = []

    def join():
        with open(f"/proc/{pid}/ns/uts") as f:
            syscalls.setns(f.fileno(), CloneFlag.CLONE_NEWUTS)
        said.append(socket.gethostname())

    worker = threading.Thread(target=join)
    worker.start()
    worker.join()
    return said[0]


def reads_the_host_file(pid):
    with open(f"/proc/{pid}/root/etc/hostname") as f:
        return f.read().strip()


def joins_in_the_notebook(pid):
    with open(f"/proc/{pid}/ns/uts") as f:
        syscalls.setns(f.fileno(), CloneFlag.CLONE_NEWUTS)
    return socket.gethostname()


def keeps_the_newline(pid):
    return reads_through_nsenter(pid) + "\n"


def stops_it_first(pid):
    name = reads_through_nsenter(pid)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    return name


@pytest.mark.parametrize("right", [reads_through_nsenter, joins_in_a_thread])
def test_the_stretch_passes_a_reading_inside_the_namespace(right):
    before = notebook()
    assert "while this notebook and the host kept theirs" in lesson02.check_hostname_of(right)
    assert notebook() == before and runtime.unwaited() == []


@pytest.mark.parametrize("wrong,says", [
    (reads_the_host_file, "the host's hostname"),
    (joins_in_the_notebook, "this notebook's own thread was moved"),
    (keeps_the_newline, "without the newline"),
    (stops_it_first, "had ended"),
    (lambda pid: None, "returned None"),
    (lambda pid: int("not yet"), "raised ValueError"),  # the container is stopped all the same
])
def test_the_stretch_names_the_wrong_turn(wrong, says):
    before = notebook()
    with pytest.raises(CheckFailed, match=re.escape(says)):
        lesson02.check_hostname_of(wrong)
    assert notebook() == before and runtime.unwaited() == []
