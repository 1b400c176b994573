"""workloads: the hog and the fork bomb stay within their caps with no cgroup around them,
end by themselves, print what the lessons read, and refuse bad input."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from pycontain import workloads

MiB = 1 << 20


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pycontain.workloads", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_hog_touches_what_it_allocates_and_never_more_than_its_cap():
    hog = start("hog", "--step", "8M", "--every", "0.01", "--max", "40M", "--hold", "1")
    lines = []
    while not lines or not lines[-1].startswith("reached the cap"):
        lines.append(hog.stdout.readline())
    with open(f"/proc/{hog.pid}/status") as f:  # the hog's own peak, after exec
        peak = int(next(line for line in f if line.startswith("VmHWM:")).split()[1]) * 1024
    out = "".join(lines) + hog.stdout.read()
    assert hog.wait(timeout=30) == 0
    steps = workloads.allocated(out)
    assert [n for _, n in steps] == [8 * MiB, 16 * MiB, 24 * MiB, 32 * MiB, 40 * MiB]
    assert "reached the cap of 40 MiB" in out
    assert 40 * MiB <= peak <= 40 * MiB + 40 * MiB  # real memory; the cap plus the interpreter


def test_hog_argv_runs_without_site_packages():
    out = subprocess.run(workloads.hog_argv("1M", 0, "2M"), capture_output=True, text=True,
                         timeout=30, env={"PATH": "/usr/bin:/bin"}, cwd="/")
    assert out.returncode == 0 and len(workloads.allocated(out.stdout)) == 2


def descendants(root: int) -> set[int]:
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    parents[int(name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                pass
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def test_fork_bomb_never_exceeds_its_cap_and_ends_by_itself():
    started = time.monotonic()
    bomb = start("fork-bomb", "--max", "25", "--seconds", "1.5")
    most = 0
    while bomb.poll() is None:
        most = max(most, 1 + len(descendants(bomb.pid)))
        time.sleep(0.02)
    out = bomb.stdout.read()
    assert bomb.returncode == 0 and time.monotonic() - started < 10
    assert most <= 25
    assert most >= 20  # it did multiply (the sampling may miss the last few births)
    assert "done: 25 processes at most, fork refused 0 times" in out
    assert descendants(bomb.pid) == set()  # every process waited for its children


@pytest.mark.parametrize("args,message", [
    (("hog", "--max", "10XB"), "`--max` must be a size in bytes such as 64M"),
    (("hog", "--step", "max"), "`--step` must be a size in bytes such as 64M, 1.5G or 65536"),
    (("hog", "--step", "8M", "--max", "4M"), "step <= max"),
    (("hog", "--max", "64G"), "max <="),
    (("fork-bomb", "--max", "100000"), "1 < max <="),
    (("fork-bomb", "--seconds", "0"), "0 < seconds"),
])
def test_bad_input_is_refused_before_anything_runs(args, message):
    out = subprocess.run([sys.executable, "-m", "pycontain.workloads", *args],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and message in out.stderr and out.stdout == ""



def test_counter_counts_into_its_file_and_ends_by_itself(tmp_path):
    path = tmp_path / "count"
    started = time.monotonic()
    done = subprocess.run(workloads.counter_argv(str(path), 0.01, 0.5), capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 20
    count = int(path.read_text())
    assert 5 <= count <= 51  # one count per 10 ms at most, over 0.5 s


def test_counter_refuses_an_unbounded_run(tmp_path):
    with pytest.raises(ValueError, match="seconds"):
        workloads.counter(str(tmp_path / "c"), 0.01, 10_000)


def test_send_and_receive_count_the_same_bytes_and_stop_at_the_cap():
    receiver = start("receive", "--every", "0.05", "--seconds", "20")
    port = workloads.listening_port(receiver.stdout.readline())
    sender = subprocess.run(workloads.send_argv("127.0.0.1", port, 10, "8M"),
                            capture_output=True, text=True, timeout=30)
    out = receiver.stdout.read()
    assert receiver.wait(timeout=30) == 0 and sender.returncode == 0, sender.stderr
    total, took_s = workloads.received(out)
    assert sender.stdout.startswith(f"sent {8 * MiB} bytes in ") and total == 8 * MiB
    assert sum(n for _, n in workloads.intervals(out)) == total
    assert 0 <= took_s < 10  # the cap ended it, not the seconds


def test_receive_gives_up_when_no_one_connects():
    done = subprocess.run(workloads.receive_argv(0, 0.1, 0.2), capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 1 and "no connection in 0.2 s" in done.stdout


@pytest.mark.parametrize("direct", [False, True], ids=["buffered", "direct"])
def test_the_writer_writes_what_it_says_in_blocks_and_ends(tmp_path, direct):
    path = tmp_path / "written"
    done = subprocess.run(workloads.write_argv(str(path), "3M", direct=direct, block="1M"),
                          capture_output=True, text=True, timeout=30, cwd="/")
    if direct and "Invalid argument" in done.stderr:
        pytest.skip(f"{tmp_path} takes no O_DIRECT")  # tmpfs before Linux 6.6
    assert done.returncode == 0, done.stderr
    steps = workloads.progress(done.stdout)
    assert [n for _, n in steps] == [MiB, 2 * MiB, 3 * MiB]
    assert [t for t, _ in steps] == sorted(t for t, _ in steps)
    assert workloads.wrote(done.stdout)[0] == 3 * MiB and path.stat().st_size == 3 * MiB
    assert ("(direct)" if direct else "(buffered + fsync)") in done.stdout


@pytest.mark.parametrize("args,message", [
    (("--size", "1G"), "size <="),
    (("--size", "1M", "--block", "2M"), "block <= size"),
    (("--size", "1M", "--block", "1000", "--direct"), "O_DIRECT needs"),
    (("--size", "1M", "--hold", "1000"), "`hold` must be"),
    (("--size", "lots"), "`--size` must be a size in bytes"),
])
def test_the_writer_refuses_bad_input_before_it_writes(args, message, tmp_path):
    target = tmp_path / "x"
    out = subprocess.run([sys.executable, "-m", "pycontain.workloads", "write", str(target), *args],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and message in out.stderr and out.stdout == ""
    assert not target.exists()


def test_getpids_stacks_the_filter_it_is_given_and_times_getpid():
    """Lesson 21: the kernel counts the stacked filters (Seccomp_filters), and a filter that
    tests an argument of getpid makes ten of them cost more than one. no_new_privs first: no
    privilege is needed to install them."""
    from pycontain.security import seccomp

    program = seccomp.assemble(seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}]}))
    costs = {}
    for stacked in (0, 1, 10):
        done = subprocess.run(workloads.getpids_argv(0.3, program, stacked), capture_output=True,
                              text=True, timeout=30, env={"PATH": "/usr/bin:/bin"}, cwd="/")
        assert done.returncode == 0, done.stderr
        filters, costs[stacked] = workloads.getpid_cost(done.stdout)
        assert filters == stacked
    assert costs[10] > costs[0]


def test_a_stack_of_filters_is_refused_a_filter_that_is_not_one():
    out = subprocess.run([sys.executable, "-m", "pycontain.workloads", "getpids", "--stack", "2",
                          "--filter", "0600"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "8 bytes per instruction" in out.stderr
    out = subprocess.run([sys.executable, "-m", "pycontain.workloads", "getpids", "--stack",
                          "1000"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "stack <=" in out.stderr
