"""Lesson 03 on the real kernel: PID 1 inside, its duties, and `--init` doing them."""

from __future__ import annotations

import errno
import os
import re
import signal
import time

import pytest

import pycontain
from pycontain import helper, procfs, runtime
from pycontain.checks import CheckFailed, lesson03
from pycontain.errors import SyscallError
from pycontain.namespaces import pid

PID_MNT = {"pid", "mnt"}


def our_children() -> list[int]:
    """The host PIDs of this test process's children, zombies included; not its fork server
    (pycontain.forkserver), which lives as long as this process."""
    me = os.getpid()
    server = runtime.fork_server().process
    found = []
    for host_pid in procfs.pids():
        if server is not None and host_pid == server.pid:
            continue
        try:
            if procfs.status(host_pid).ppid == me:
                found.append(host_pid)
        except FileNotFoundError:
            continue
    return found


@pytest.fixture(autouse=True)
def no_process_left_behind():
    """Every container a test starts has ended and been reaped when it returns."""
    before = set(our_children())
    yield
    deadline = time.monotonic() + 5
    while (left := set(our_children()) - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes left behind: {sorted(left)}"


def test_first_process_is_pid_1_inside_and_an_ordinary_pid_on_the_host():
    assert pycontain.run(["sh", "-c", "echo $$"], namespaces=PID_MNT).stdout == "1\n"
    plain = pycontain.run(["sh", "-c", "echo $$"], namespaces={"uts"})
    assert int(plain.stdout) == plain.pid > 1
    with pycontain.spawn(["sleep", "30"], namespaces=PID_MNT) as box:
        assert pid.nspid(box.pid) == (box.pid, 1)
        assert pid.pid_inside(box.pid) == 1
        assert box.namespaces()["pid"] != procfs.namespace("self", "pid")


def test_unshare_moves_only_the_callers_children_into_the_new_namespace():
    with pycontain.spawn(["sleep", "30"], namespaces=PID_MNT) as box:
        outer = box.process.pid  # pycontain's first process: it called unshare(CLONE_NEWPID)
        assert procfs.namespace(outer, "pid") == procfs.namespace("self", "pid")
        assert pid.pid_for_children(outer) == box.namespaces()["pid"]
        assert pid.pid_for_children("self") == procfs.namespace("self", "pid")
        assert box.status().ppid == outer


def test_proc_inside_lists_only_the_containers_processes():
    listed = pycontain.run(["ls", "/proc"], namespaces=PID_MNT).stdout.split()
    assert sorted(int(n) for n in listed if n.isdigit()) == [1]
    ps = pycontain.run(["sh", "-c", "sleep 30 & busybox ps -o pid,comm"], namespaces=PID_MNT)
    rows = [line.split() for line in ps.stdout.splitlines()[1:]]
    assert [r[0] for r in rows] == ["1", "2", "3"]  # sh, sleep (or sh before its exec), ps
    assert rows[0][1] == "sh" and rows[-1][1] == "busybox"
    # a PID namespace without its own /proc mount still reads the host's
    hosts = pycontain.run(["ls", "/proc"], namespaces={"pid"}).stdout.split()
    assert str(os.getpid()) in hosts


def test_orphans_re_parent_to_pid_1():
    with pycontain.spawn(["sh", "-c", "sh -c 'sleep 30 &'; exec sleep 30"],
                         namespaces=PID_MNT) as box:
        first, orphan = pid.wait_for_processes(box.pid, 2, name="sleep")
        assert (first.pid, first.ppid) == (1, 0)  # its parent lives outside
        assert orphan.ppid == 1 and orphan.pid == 3  # PID 2, its parent, has exited
        assert procfs.status(orphan.host_pid).ppid == box.pid


def test_zombies_pile_up_when_pid_1_never_waits():
    with pycontain.spawn(pid.orphan_maker(count=8, interval_s=0.02), namespaces=PID_MNT) as box:
        pid.wait_for_processes(box.pid, 8, state="Z")
        time.sleep(0.3)
        zombies = pid.zombies(box.pid)
        assert len(zombies) == 8  # exactly one per orphan, and none ever reaped
        assert {z.ppid for z in zombies} == {1} and {z.name for z in zombies} == {"true"}
        assert pid.processes(box.pid)[0].name == "sleep"


def test_with_init_no_zombie_remains_and_the_command_is_pid_2():
    with pycontain.spawn(pid.orphan_maker(count=8, interval_s=0.02), namespaces=PID_MNT,
                         init=True) as box:
        table = pid.wait_for_processes(box.pid, 1, name="sleep", ppid=1)
        assert table[0].pid == 1 and table[0].name.startswith("python")
        assert (table[1].pid, table[1].name) == (2, "sleep")
        # all 8 orphans have ended once the maker runs its final `sleep 60`, alone
        pid.wait_for_processes(box.pid, 1, name="sleep", ppid=3)
        def orphans_left() -> list[str]:  # zombies, or an orphan that has not ended yet
            return [p.name for p in pid.processes(box.pid) if p.name == "true" or p.state == "Z"]

        deadline = time.monotonic() + 30  # generous: under emulation an orphan ends slowly
        while orphans_left() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not pid.zombies(box.pid)
        assert orphans_left() == []


def test_zombie_timeline_counts_both_containers():
    maker = pid.orphan_maker(count=5, interval_s=0.05)
    with pycontain.spawn(maker, namespaces=PID_MNT) as bare, \
            pycontain.spawn(maker, namespaces=PID_MNT, init=True) as fronted:
        # 3 s: a sample reads all of /proc twice, slow under emulation; five samples at least
        times, counts = pid.zombie_timeline({"bare": bare.pid, "init": fronted.pid},
                                            duration_s=3.0, interval_s=0.05)
        assert len(times) == len(counts["bare"]) == len(counts["init"]) >= 5
        # they pile up; a sample may also catch one subshell for a moment, a zombie its own
        # parent, not PID 1, collects at once
        assert counts["bare"][-1] >= 1 and counts["bare"][-1] >= max(counts["bare"]) - 1
        assert all(later >= earlier - 1 for earlier, later in zip(counts["bare"][:-1],
                                                                  counts["bare"][1:],
                                                                  strict=True))
        assert max(counts["init"]) <= 2


def test_sigterm_is_ignored_by_pid_1_without_a_handler_and_sigkill_is_not():
    with pycontain.spawn(["sleep", "30"], namespaces=PID_MNT) as box, \
            pycontain.spawn(["sleep", "30"], namespaces={"uts"}) as plain:
        box.signal(signal.SIGTERM)
        plain.signal(signal.SIGTERM)
        assert plain.wait(timeout_s=5).signal == signal.SIGTERM
        time.sleep(0.2)
        assert box.running
        box.signal(signal.SIGKILL)
        assert box.wait(timeout_s=5).signal == signal.SIGKILL


def test_pid_1_ignores_sigterm_even_from_itself_unless_init_is_in_front(cli):
    alone = cli("run", "--namespaces", "pid,mnt", "--", "sh", "-c", "kill -TERM $$; echo survived")
    assert (alone.stdout, alone.returncode) == ("survived\n", 0)
    fronted = cli("run", "--namespaces", "pid,mnt", "--init", "--",
                  "sh", "-c", "kill -TERM $$; echo survived")
    assert (fronted.stdout, fronted.stderr, fronted.returncode) == ("", "", 128 + signal.SIGTERM)


FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)


def test_init_forwards_signals_to_the_command():
    # A container inherits the signals its caller ignores (the next test): a shell that starts a
    # job in the background (`make test &`) ignores SIGINT, and so then would the command.
    # Forwarding is what is tested here, so the caller ignores none of these while it spawns.
    ignored = {sig: signal.getsignal(sig) for sig in FORWARDED
               if signal.getsignal(sig) == signal.SIG_IGN}
    for sig in ignored:
        signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
    try:
        for sig in FORWARDED * 3:
            with pycontain.spawn(["sleep", "30"], namespaces=PID_MNT, init=True) as box:
                box.signal(sig)  # at once: even before PID 1 has its handlers, none is lost
                result = box.wait(timeout_s=20)  # a deadline: a loaded machine is slow
            assert (result.exit_code, result.timed_out) == (128 + sig, False), sig
    finally:
        for sig, handler in ignored.items():
            signal.signal(sig, handler)


def test_the_command_starts_with_no_signal_blocked_or_ignored():
    # Python ignores SIGPIPE and SIGXFSZ in itself; whatever else this test process ignores it
    # inherited from whoever started it, and a container inherits that too (as under runc).
    python_own = (1 << (signal.SIGPIPE - 1)) | (1 << (signal.SIGXFSZ - 1))
    with open("/proc/self/status") as f:
        inherited = int(procfs.parse_status(f.read())["SigIgn"], 16)
    with pycontain.spawn(["sleep", "30"], namespaces=PID_MNT, init=True) as box:
        command = pid.wait_for_processes(box.pid, 1, name="sleep", ppid=1)[1]
        with open(f"/proc/{command.host_pid}/status") as f:
            fields = procfs.parse_status(f.read())
        assert int(fields["SigBlk"], 16) == 0
        assert int(fields["SigIgn"], 16) == inherited & ~python_own


def test_init_exits_the_way_the_command_did(cli):
    assert pycontain.run(["sh", "-c", "exit 3"], namespaces=PID_MNT, init=True).exit_code == 3
    assert cli("run", "--init", "--namespaces", "pid,mnt", "--", "sh", "-c", "exit 5"
               ).returncode == 5
    missing = cli("run", "--init", "--namespaces", "pid,mnt", "--", "no-such-command")
    assert missing.returncode == 127 and "no-such-command" in missing.stderr
    wrong = cli("run", "--init", "--namespaces", "uts", "--", "true")
    assert wrong.returncode == 125
    assert "--init needs pid in --namespaces" in wrong.stderr  # the flag, not `init`
    assert "Traceback" not in wrong.stderr


def test_every_process_dies_when_pid_1_exits():
    with pycontain.spawn(["sh", "-c", "sleep 30 & sleep 30 & exec sleep 30"],
                         namespaces=PID_MNT) as box:
        members = pid.wait_for_processes(box.pid, 3, name="sleep")
        box.signal(signal.SIGKILL)
        box.wait(timeout_s=5)
    assert pid.alive(members) == []
    # and when PID 1 simply exits: its background children go with it
    with pycontain.spawn(["sh", "-c", "sleep 30 & sleep 30 & sleep 0.5"],
                         namespaces=PID_MNT) as box:
        members = pid.wait_for_processes(box.pid, 3, name="sleep")
        assert box.wait(timeout_s=5).exit_code == 0
    assert pid.alive(members) == []


def test_fork_fails_with_enomem_once_the_namespaces_init_has_exited():
    with pytest.raises(SyscallError) as info:
        helper.in_fresh_process(pid.fork_after_init_exited)
    assert (info.value.call, info.value.errno) == ("fork", errno.ENOMEM)
    assert "PID 1" in str(info.value) and "(lesson 03)" in str(info.value)


# --- the lesson's check -------------------------------------------------------------------------

def reaps_all(child):
    while True:
        ended, status = os.waitpid(-1, 0)
        if ended == child:
            return status


def stub(child):
    ...  # YOUR CODE HERE


def raises(child):
    raise ValueError("not yet")


def waits_for_its_child_only(child):
    return os.waitpid(child, 0)[1]


def returns_the_first_status(child):
    return os.waitpid(-1, 0)[1]


def returns_the_exit_code(child):
    while True:
        ended, status = os.waitpid(-1, 0)
        if ended == child:
            return os.waitstatus_to_exitcode(status)


def test_the_check_passes_a_reaping_loop():
    assert "reaped 5 orphans" in lesson03.check_tiny_init(reaps_all)


@pytest.mark.parametrize("tiny_init,teaching", [
    (stub, "returned None"),
    (waits_for_its_child_only, "Which children does your wait ask for?"),
    (returns_the_first_status, "before its child"),
    (returns_the_exit_code, "the harness wants the wait status"),
    (raises, "raised ValueError: not yet"),
])
def test_the_check_fails_with_a_diagnosis_not_the_solution(tiny_init, teaching):
    started = time.monotonic()
    with pytest.raises(CheckFailed, match=re.escape(teaching)) as info:
        lesson03.check_tiny_init(tiny_init)
    assert time.monotonic() - started < 60  # bounded, never a hang (generous: the v2 guest is slow)
    assert "waitpid(-1" not in str(info.value)  # where to look, never the loop to write


def test_the_success_output_shows_the_librarys_loop_only_then():
    passed = lesson03.check_tiny_init(reaps_all)
    assert "def reap_until" in passed._repr_markdown_()
    assert "def reap_until" not in str(passed)  # what the grader records: the message only


def forwards_sigterm(child):
    signal.signal(signal.SIGTERM, lambda signum, _: os.kill(child, signum))
    while True:
        ended, status = os.waitpid(-1, 0)
        if ended == child:
            return status


def test_the_stretch_passes_an_init_that_forwards_sigterm():
    assert "exited 3" in lesson03.check_forwarding_init(forwards_sigterm)


@pytest.mark.parametrize("forwarding_init,teaching", [
    (reaps_all, "went no further"),  # the Try-it's answer, without a handler
    (stub, "before its child"),
])
def test_the_stretch_names_the_signal_that_went_nowhere(forwarding_init, teaching):
    with pytest.raises(CheckFailed, match=teaching):
        lesson03.check_forwarding_init(forwarding_init)


def test_the_check_says_when_it_cannot_read_the_source():
    namespace: dict[str, object] = {}
    exec("def made_by_exec(child):\n    return 0\n", {}, namespace)  # noqa: S102
    with pytest.raises(CheckFailed, match="could not read the source"):
        lesson03.check_tiny_init(namespace["made_by_exec"])  # type: ignore[arg-type]


def never_returns(child):
    while True:  # reaps everything, but forgets to return
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            time.sleep(0.05)


def test_the_check_bounds_an_init_that_never_returns():
    started = time.monotonic()
    with pytest.raises(CheckFailed, match="had not ended"):
        lesson03.check_tiny_init(never_returns)
    # bounded, not hanging: generous, since the v2 guest emulates its CPU ~10x slower
    assert time.monotonic() - started < 60


def test_init_runs_after_pivot_root_without_importing_anything(embedded_rootfs):
    # after pivot_root the interpreter's library is out of reach: a late import would fail here
    result = pycontain.run(["sh", "-c", "(sleep 0.1 &); sleep 0.5; ps -o pid,stat,comm; exit 4"],
                           rootfs=embedded_rootfs, init=True, timeout_s=20)
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert (result.exit_code, result.stderr) == (4, "")
    assert rows[0][0] == "1" and (rows[1][0], rows[1][2]) == ("2", "sh")
    assert [r[1][0] for r in rows].count("Z") == 0  # the orphan ended and was reaped
    assert len(rows) == 3  # init, sh, ps: the orphan is gone
