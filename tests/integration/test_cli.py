"""The command line on the real kernel: exit statuses, one-line errors, doctor, cleanup."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from pycontain import lab

from .conftest import PYCONTAIN, run_cli


@pytest.mark.parametrize("args,status", [
    (["--namespaces", "uts", "--", "true"], 0),
    (["--", "sh", "-c", "exit 3"], 3),
    (["--", "no-such-command"], 127),
    (["--namespaces", "uts", "--", "sh", "-c", "kill -9 $$"], 128 + 9),
    (["--hostname", "x" * 65, "--", "true"], 125),
    (["--namespaces", "utc", "--", "true"], 125),
    (["--rootfs", "/no/such/dir", "--", "sh"], 125),
    ([], 125),
])
def test_exit_statuses(cli, args, status):
    done = cli("run", *args)
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    if status >= 125 and status != 128 + 9:
        first = done.stderr.splitlines()[0]
        assert first.startswith("pycontain: ") and len(done.stderr.splitlines()) <= 3


def test_command_that_cannot_be_executed_is_126(cli, scratch):
    root = scratch.tempdir("rootfs")
    (root / "bin").mkdir()
    (root / "bin/sh").symlink_to("busybox")  # a rootfs needs a shell, even a dangling one
    (root / "bin/tool").write_text("not a program\n")
    done = cli("run", "--rootfs", str(root), "--", "/bin/tool")
    assert done.returncode == 126
    assert "EACCES" in done.stderr and "hint:" in done.stderr


def test_rootfs_without_the_command_is_refused_before_anything_starts(cli, embedded_rootfs):
    before = lab.leftovers()
    done = cli("run", "--rootfs", embedded_rootfs, "--", "python3")
    assert done.returncode == 127 and "inside the rootfs" in done.stderr
    assert lab.leftovers() == before


def test_pid_namespace_makes_the_command_pid_1(cli, embedded_rootfs):
    done = cli("run", "--rootfs", embedded_rootfs, "--", "sh", "-c", "echo $$; ps -o pid")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    assert lines[0] == "1" and "1" in lines[2:]
    assert all(int(pid) <= 2 for pid in lines[2:])  # sh and ps at most, nothing of the host


def test_outside_the_lab_vm_the_message_says_how_to_get_in(cli):
    env = {k: v for k, v in os.environ.items() if k != lab.ALLOW_HOST_VARIABLE}
    done = cli("run", "--namespaces", "uts", "--", "true", env=env)
    assert done.returncode == 125
    assert "not the pycontain lab VM" in done.stderr and "vagrant up" in done.stderr
    assert cli("doctor", env=env).returncode == 1


def test_not_root_is_refused(cli, has_setpriv):
    if not has_setpriv:
        pytest.skip("setpriv (util-linux) is not installed")
    done = cli("run", "--namespaces", "uts", "--", "true", user=65534,
               env={**os.environ, "HOME": "/tmp"})
    assert done.returncode == 125, done.stderr
    assert "needs root" in done.stderr and "Traceback" not in done.stderr


def test_doctor_explains_this_machine(cli):
    done = cli("doctor")
    assert done.returncode == 0, done.stdout
    assert "root" in done.stdout and "cgroups" in done.stdout
    assert done.stdout.rstrip().endswith("ready")


def test_cleanup_removes_leftovers_and_says_so(tmp_path):
    # `pycontain cleanup` sweeps every pycontain- leftover on the machine. Confine it: its own
    # TMPDIR (where it looks for directories) and a private mount namespace (where it unmounts),
    # so that it cannot take what other tests of this session, or a lab beside them, still use.
    script = """set -e
mkdir -p "$TMPDIR/pycontain-test-leftover/m"
mount -t tmpfs tmpfs "$TMPDIR/pycontain-test-leftover/m"
"$@" cleanup
echo "exists: $(test -e "$TMPDIR/pycontain-test-leftover" && echo yes || echo no)"
"$@" cleanup
"""
    left = tmp_path / "pycontain-test-leftover"
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                           "sh", *PYCONTAIN], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    first, _, second = done.stdout.partition("exists: no\n")
    assert f"removed mount {left}/m" in first
    assert f"removed dir {left}" in first
    assert second and "pycontain-test-leftover" not in second  # nothing left to remove
    assert not left.exists()


def test_rootfs_prints_the_embedded_rootfs(cli, embedded_rootfs):
    done = cli("rootfs")
    assert done.stdout.strip() == embedded_rootfs
    assert os.path.exists(os.path.join(embedded_rootfs, "bin/sh"))


def test_ctrl_c_is_forwarded_and_a_second_one_kills():
    # `sleep` as PID 1 has no SIGINT handler, so the kernel ignores the first Ctrl-C (lesson 03);
    # the second one must end the container anyway.
    command = [sys.executable, "-m", "pycontain", "run", "--", "sleep", "30"]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
        _wait_until_catching(process.pid, signal.SIGHUP)  # the last of the CLI's handlers
        process.send_signal(signal.SIGINT)
        assert "Ctrl-C again kills it" in process.stderr.readline()  # forwarded, not fatal
        assert process.poll() is None  # still running: PID 1 ignored SIGINT
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 128 + signal.SIGKILL


def _wait_until_catching(pid: int, signum: int, timeout_s: float = 60) -> None:
    """Wait until process `pid` has a handler for `signum` (SigCgt in /proc/<pid>/status).

    An event, not a fixed sleep: a slow machine (the v2 guest under TCG) takes seconds to
    start the CLI, and a signal sent before its handler is installed kills it instead.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/status") as status:
            caught = next(int(line.split()[1], 16) for line in status
                          if line.startswith("SigCgt:"))
        if caught >> (signum - 1) & 1:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} installed no handler for {signum!r} in {timeout_s} s")


MIN_MEMORY = "must be a size of at least 6M (e.g. 64M, 1G), or 'max'"


@pytest.mark.parametrize("args,first", [
    (["--memory", "64"], f"--memory {MIN_MEMORY}, got '64'"),
    (["--memory-high", "1M"], f"--memory-high {MIN_MEMORY}, got '1M'"),
    (["--memory", "10XB"], "--memory must be a size in bytes such as 64M"),
    (["--memory-swap", "-1"], "--memory-swap must be a positive size"),
    (["--memory", "64M", "--memory-high", "128M"], "--memory-high must be at most --memory"),
    (["--pids-limit", "0"], "--pids-limit must be a whole number of processes >= 1"),
    (["--pids-limit", "-5"], "--pids-limit must be a whole number of processes >= 1"),
    (["-p", "8080:80"], "-p 8080:80 needs --network bridge"),
    (["--network", "bridge", "-p", "80"], "-p must be HOST:CONTAINER[/tcp|udp]"),
    (["--hostname", "x" * 65], "--hostname must be 1-64 bytes"),
    (["--namespaces", "pid", "--hostname", "box"], "--hostname box needs uts in --namespaces"),
    (["--namespaces", "uts", "--init"], "--init needs pid in --namespaces"),
    (["--read-only"], "--read-only needs --rootfs"),
    (["--namespaces", "utc"], "--namespaces must be a subset of"),
    (["--map-root", "abc"], "--map-root must be a uid outside"),
    (["--boottime-offset", "x"], "--boottime-offset must be a number of seconds"),
    (["--hostname", "box"], "the command after -- must be one or more words"),
])
def test_bad_input_names_the_flag_and_creates_nothing(cli, tmp_path, args, first):
    command = [] if first.startswith("the command") else ["true"]
    before = set(lab.leftovers())
    done = cli("run", *args, "--", *command, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 125 and "Traceback" not in done.stderr
    line = done.stderr.splitlines()[0]
    assert line.startswith(f"pycontain: {first}"), done.stderr
    assert not line.startswith("pycontain: `")  # not the Python parameter (`memory_max`)
    assert "given as" not in done.stderr and "{'" not in done.stderr  # no note, no dict
    assert not list(tmp_path.iterdir())  # no layer, no mount dir
    assert not set(lab.leftovers()) - before  # no cgroup, netns, link either


@pytest.mark.parametrize("args,where", [
    ([], "hint: it was looked up on PATH in the host's files"),
    (["--rootfs", "ROOTFS"], "hint: it was looked up on PATH inside the rootfs only"),
])
def test_command_not_found_says_where_it_looked_and_what_to_try(cli, embedded_rootfs, args,
                                                                 where):
    args = [embedded_rootfs if a == "ROOTFS" else a for a in args]
    done = cli("run", *args, "--", "no-such-command")
    assert done.returncode == 127 and "Traceback" not in done.stderr
    first, hint = done.stderr.splitlines()
    assert first.startswith("pycontain: the command after -- must be a program")
    assert hint.startswith(f"  {where}")
    if args:  # what to try names the command that lists the rootfs's programs
        assert "pycontain run --rootfs" in hint and "ls /bin" in hint
        listed = cli("run", "--rootfs", embedded_rootfs, "--", "ls", "/bin")
        assert listed.returncode == 0 and "sh" in listed.stdout.split()


def test_the_memory_minimum_lets_a_container_run(cli):
    done = cli("run", "--memory", "6M", "--", "true")  # the least accepted is enough
    assert done.returncode == 0, done.stderr


def test_cleanup_says_it_is_machine_wide_and_orphans_removes_only_ended_notebooks_dirs(tmp_path):
    assert "machine-wide" in run_cli("cleanup", "--help").stdout
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # confined: never the machine's own leftovers
    make_a_lab = ("from pycontain.lab import Lab; import time; "
                  "print(Lab(check=False).tempdir('orphan'), flush=True); time.sleep(300)")
    ended, running = (subprocess.Popen([sys.executable, "-c", make_a_lab], env=env,
                                       stdout=subprocess.PIPE, text=True) for _ in range(2))
    try:
        ended_dir, running_dir = (p.stdout.readline().strip() for p in (ended, running))
        ended.kill()  # as a kernel killed before its clean-up cell: no exit handler runs
        ended.wait()
        done = run_cli("cleanup", "--orphans", env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [f"removed dir {ended_dir}"]
        assert not os.path.exists(ended_dir) and os.path.isdir(running_dir)  # still in use
    finally:
        running.kill()
        running.wait()
    assert run_cli("cleanup", "--orphans", env=env).stdout.splitlines() == [
        f"removed dir {running_dir}"]  # ended now: its turn


def test_a_bridge_without_nft_is_refused_in_one_line_before_anything_is_created(cli):
    """`shutil.which` finds no nft on a PATH without the sbin directories: as on a machine
    without nftables, the refusal comes first, as a PreflightError, with nothing to undo."""
    before = [item for item in lab.leftovers() if item.startswith(("link", "netstate", "nft"))]
    done = cli("run", "--network", "bridge", "--", "/bin/true",
               env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 125 and "Traceback" not in done.stderr
    error, hint = done.stderr.splitlines()
    assert error == "pycontain: network='bridge' needs the nft tool, and it is not installed"
    assert hint.startswith("  hint: ") and "apt-get install nftables" in hint
    after = [item for item in lab.leftovers() if item.startswith(("link", "netstate", "nft"))]
    assert after == before or not set(after) - set(before)


@pytest.mark.parametrize("words", [["--hostname", "-x"], ["--hostname=--"]])
def test_a_malformed_option_is_refused_with_the_usage_of_run(cli, words):
    done = cli("run", *words, "--", "true")
    assert done.returncode == 125 and "Traceback" not in done.stderr
    assert done.stderr.startswith("usage: pycontain run")
    assert done.stderr.splitlines()[-1] == "pycontain: argument --hostname: expected one argument"


def test_trace_prints_each_step_and_its_calls_in_order(cli):
    done = cli("run", "--trace", "--hostname", "box", "--", "true")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    steps = [line for line in lines if line.startswith("step ")]
    # The outer half of the PID namespace's fork writes its own lines too, in any order with
    # the container's: keep the first time each step shows.
    seen = list(dict.fromkeys(steps))
    assert seen == ["step die_with_parent (lesson 03)", "step unshare_namespaces (lesson 02)",
                    "step make_mounts_private (lesson 04)",
                    "step fork_into_namespaces (lesson 03)", "step apply_hostname (lesson 02)",
                    "step mount_proc (lesson 03)", "step mask_paths (lesson 20)",
                    "step change_directory (lesson 05)",
                    "step drop_bounding_set (lesson 20)", "step set_capabilities (lesson 20)",
                    "step set_no_new_privs (lesson 20)", "step filter_system_calls (lesson 21)",
                    "step execute (lesson 02)"]
    hostname = lines.index("step apply_hostname (lesson 02)")
    # the next call of the container's (the outer half may have written a line in between)
    after = [line for line in lines[hostname + 1:] if line.startswith("  sethostname(")]
    assert after and re.fullmatch(r'  sethostname\("box"\) = 0  \d+\.\d\d ms', after[0])
    assert any(re.fullmatch(r"  unshare\(CLONE_NEW\w+(\|CLONE_NEW\w+)*\) = 0  \d+\.\d\d ms", line)
               for line in lines)
    assert "  prctl(PR_CAPBSET_DROP, CAP_MKNOD) = 0" in [line.split("  0.")[0] for line in lines]
    assert any(re.fullmatch(r"  seccomp\(SECCOMP_SET_MODE_FILTER, 0, \{len=\d+\}\) = 0  .*", line)
               for line in lines)
    assert any(line.startswith("  capset(0x00000000a00425fb, 0x00000000a00425fb, "
                               "0x0000000000000000) = 0") for line in lines)
    execs = [n for n, line in enumerate(lines) if line.startswith("  execve(")]
    assert len(execs) == 1 and execs[0] > hostname and '["true"]' in lines[execs[0]]
    assert "Traceback" not in done.stderr


def test_without_trace_nothing_extra_is_printed(cli):
    done = cli("run", "--hostname", "box", "--", "true")
    assert done.returncode == 0 and done.stderr == "" and done.stdout == ""
