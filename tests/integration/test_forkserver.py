"""The fork server (pycontain.forkserver): every container `run()`/`spawn()` start is forked by
one lean interpreter, as the caller's own child; the server dies with its owner, leaves nothing,
and its errors cross back with their types."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap

import pytest

import pycontain
from pycontain import faults, forkserver, lab, runtime, settings
from pycontain.errors import CommandNotFoundError, ProcessError, SyscallError


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[1])


def threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Threads:")).split()[1])


def ended(pid: int, timeout_s: float = 30) -> bool:
    """Whether `pid` ends within `timeout_s` (poll(2) on its pidfd: an event, not a sleep)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout_s)[0])
    finally:
        os.close(fd)


@pytest.fixture
def fresh_server(monkeypatch):
    """A fork server of this test's own (started on the first container), stopped after."""
    monkeypatch.setattr(runtime, "_FORK_SERVER", None)
    yield runtime.fork_server
    server = runtime._FORK_SERVER
    if server is not None:
        server.stop()


def test_the_container_is_the_callers_child_forked_by_one_single_threaded_server(fresh_server):
    with pycontain.spawn(["sleep", "30"], namespaces={"uts", "pid"}) as first:
        server = fresh_server()
        assert server.process is not None
        assert parent_of(first.process.pid) == os.getpid()  # CLONE_PARENT: ours, not its
        assert parent_of(server.process.pid) == os.getpid()
        assert threads_of(server.process.pid) == 1
        with open(f"/proc/{server.process.pid}/cmdline") as f:
            argv = f.read().split("\0")
        assert argv[1:3] == ["-I", "-S"] and settings.FORK_SERVER_TAG in argv
        assert forkserver._is_server([word.encode() for word in argv])  # what cleanup looks for
        second = pycontain.run(["hostname"], namespaces={"uts"}, hostname="second")
        assert second.stdout == "second\n" and second.exit_code == 0
        assert fresh_server().process is server.process  # started once, for both
    assert first.result is not None and first.result.signal == signal.SIGKILL


def test_output_goes_where_the_caller_says(fresh_server, tmp_path):
    """As subprocess would: captured as text, merged (stderr=STDOUT), into a file; the working
    directory is the caller's at the time (the server's is another), even one removed since."""
    result = pycontain.run(["sh", "-c", "echo out; echo err >&2; exit 3"], namespaces={"uts"})
    assert (result.stdout, result.stderr, result.exit_code) == ("out\n", "err\n", 3)
    log = tmp_path / "log"
    with log.open("w") as out:
        box = pycontain.spawn(["sh", "-c", "echo out; echo err >&2"], namespaces={"uts"},
                              stdout=out, stderr=subprocess.STDOUT)
    box.wait()
    assert log.read_text() == "out\nerr\n"
    here = tmp_path / "here"
    here.mkdir()
    old = os.getcwd()
    os.chdir(here)
    try:
        os.rmdir(here)  # Popen's child would inherit it removed; so does the server's
        assert pycontain.run(["true"], namespaces={"uts"}).exit_code == 0
    finally:
        os.chdir(old)


def test_the_container_ignores_what_its_caller_ignores_now_not_when_the_server_started(
        fresh_server):
    def ignored_by_the_command() -> int:
        done = pycontain.run(["grep", "SigIgn", "/proc/self/status"], namespaces={"pid"})
        return int(done.stdout.split()[1], 16)

    bit = 1 << (signal.SIGUSR1 - 1)
    before = signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # the server starts ignoring it
    try:
        assert ignored_by_the_command() & bit
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)  # the same server, the caller changed
        assert not ignored_by_the_command() & bit
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        assert ignored_by_the_command() & bit
    finally:
        signal.signal(signal.SIGUSR1, before)


def test_a_time_out_kills_and_reports_it(fresh_server):
    result = pycontain.run(["sh", "-c", "echo started; exec sleep 30"], namespaces={"pid"},
                           timeout_s=0.5)
    assert result.timed_out and result.signal == signal.SIGKILL
    assert result.stdout == "started\n"


def test_errors_cross_back_with_their_types(fresh_server, scratch):
    with pytest.raises(SyscallError) as info:
        pycontain.run(["true"], namespaces={"uts"}, cwd="/no/such/dir")
    assert (info.value.call, info.value.errno) == ("chdir", 2)
    with pytest.raises(CommandNotFoundError):
        pycontain.run(["no-such-command-here"], namespaces={"uts"})
    broken = forkserver.Server("pycontain.no_such_module:main")
    with pytest.raises(pycontain.PycontainError, match="No module named 'pycontain.no_such"):
        broken.fork(0, 1, (0, 1, 2))
    assert broken.process is None  # reaped


def test_the_server_dies_with_its_owner():
    """SIGKILL the process that started it: PR_SET_PDEATHSIG ends the server too."""
    owner = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, pycontain
        from pycontain import runtime
        pycontain.run(["true"], namespaces={"uts"})
        print(runtime.fork_server().process.pid, flush=True)
        sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        server = int(owner.stdout.readline())
        assert parent_of(server) == owner.pid
        owner.kill()
        owner.wait()
        assert ended(server)
    finally:
        owner.kill()
        owner.wait()
    assert not [item for item in lab.leftovers() if item == f"forkserver {server}"]


def test_the_server_ends_at_eof_on_its_socket(fresh_server):
    pycontain.run(["true"], namespaces={"uts"})
    server = fresh_server()
    assert server.socket is not None and server.process is not None
    first = server.process
    server.socket.close()  # as when its owner closes it, or execs (the socket is close-on-exec)
    assert first.wait(timeout=30) == 0
    server.socket = None
    assert pycontain.run(["true"], namespaces={"uts"}).exit_code == 0  # a new one
    assert server.process is not None and server.process is not first


def test_a_server_killed_before_it_forks_leaves_nothing(fresh_server, monkeypatch):
    """SIGKILL at `forkserver:received`, twice (the caller asks a new server once): the request
    fails with a ProcessError, nothing is left, and the next container starts a new server."""
    from pycontain import cgroups

    made = []  # the container's cgroup, made before the request: released again
    create = cgroups.create
    monkeypatch.setattr(cgroups, "create", lambda *a, **k: made.append(create(*a, **k)) or made[-1])
    monkeypatch.setenv(faults.VARIABLE, "forkserver:received")
    with pytest.raises(ProcessError, match="fork server ended before it forked"):
        pycontain.run(["true"], namespaces={"uts", "pid"}, pids_max=10)
    assert fresh_server().process is None  # both reaped
    assert len(made) == 1 and not any(os.path.exists(d) for d in made[0].dirs.values())
    assert not [item for item in lab.leftovers() if item.startswith("forkserver ")
                or made[0].name in item]
    monkeypatch.delenv(faults.VARIABLE)
    assert pycontain.run(["true"], namespaces={"uts"}).exit_code == 0


def test_a_server_killed_right_after_it_forked_still_starts_the_container(fresh_server,
                                                                           monkeypatch):
    monkeypatch.setenv(faults.VARIABLE, "forkserver:forked")
    box = pycontain.spawn(["echo", "hi"], namespaces={"uts", "pid"}, pids_max=10)
    server = fresh_server().process
    assert server is not None
    assert box.wait().stdout == "hi\n"  # the child is ours: the server's end does not matter
    assert server.wait(timeout=30) == -signal.SIGKILL
    monkeypatch.delenv(faults.VARIABLE)
    assert pycontain.run(["true"], namespaces={"uts"}).exit_code == 0  # a new one
    assert fresh_server().process is not server


def test_an_orphaned_server_is_ended_by_a_new_labs_sweep_and_by_cleanup(cli):
    """A process whose argv names a fork server's owner that is not its parent (the owner
    ended, and PDEATHSIG did not take it) is ended by `Lab()`'s sweep of orphans and by
    `pycontain cleanup --orphans`; a live owner's server is kept."""
    pycontain.run(["true"], namespaces={"uts"})
    ours = runtime.fork_server().process
    assert ours is not None
    from pycontain.forkserver import _SERVE

    # a look-alike that sleeps: its -c ends as a server's does, in a comment
    sleep = [sys.executable, "-I", "-S", "-c", f"import time; time.sleep(60)  # {_SERVE}",
             settings.FORK_SERVER_TAG, "1"]
    for sweep in (lambda: lab.Lab().close(), lambda: cli("cleanup", "--orphans")):
        orphan = subprocess.Popen(sleep)
        try:
            assert f"forkserver {orphan.pid}" in lab.leftovers()
            sweep()
            assert orphan.wait(timeout=30) == -signal.SIGKILL
        finally:
            orphan.kill()
            orphan.wait()
        assert ours.poll() is None  # ours, whose owner lives, is no leftover
