"""The container's first process: errors cross back unchanged; threads block CLONE_NEWUSER."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest

import pycontain
from pycontain import procfs
from pycontain.errors import SyscallError


def test_an_error_in_init_crosses_the_process_boundary_unchanged(scratch):
    root = scratch.tempdir("noexec")
    (root / "bin").mkdir()
    (root / "bin/sh").symlink_to("busybox")  # a rootfs needs a shell, even a dangling one
    (root / "bin/tool").write_text("#!/bin/sh\n")  # present but not executable
    with pytest.raises(SyscallError) as info:
        pycontain.run(["/bin/tool"], namespaces={"mnt"}, rootfs=root)
    e = info.value
    assert type(e) is SyscallError
    assert (e.call, e.arguments, e.errno) == ("execve", ("/bin/tool", ["/bin/tool"]),
                                              errno.EACCES)
    assert str(e).startswith("execve('/bin/tool', ['/bin/tool']) failed: EACCES")
    assert "hint: the file is not executable" in str(e)


def test_a_kernel_error_in_setup_keeps_its_call_arguments_and_note():
    with pytest.raises(SyscallError) as info:
        pycontain.run(["true"], namespaces={"uts"}, cwd="/no/such/dir")
    e = info.value
    assert (e.call, e.arguments, e.errno) == ("chdir", ("/no/such/dir",), errno.ENOENT)


def test_unshare_newuser_from_a_threaded_process_gives_the_einval_hint():
    # In a child interpreter: if the kernel ever accepted it, only that child would move.
    script = textwrap.dedent("""
        import json, threading, time
        from pycontain import syscalls
        from pycontain.errors import SyscallError
        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
        try:
            syscalls.unshare(syscalls.CloneFlag.CLONE_NEWUSER)
            print(json.dumps({"errno": None}))
        except SyscallError as e:
            print(json.dumps({"errno": e.errno_name, "text": str(e)}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    report = json.loads(out)
    assert report["errno"] == "EINVAL"
    assert report["text"].startswith("unshare(CLONE_NEWUSER) failed: EINVAL (Invalid argument)")
    assert "multi-threaded" in report["text"]


def test_the_container_dies_with_its_parent():
    script = textwrap.dedent("""
        import pycontain, sys
        c = pycontain.spawn(["sleep", "60"], namespaces={"uts"})
        print(c.pid, flush=True)
        import os; os._exit(0)  # the parent vanishes without waiting
    """)
    env = dict(os.environ, PYCONTAIN_ALLOW_HOST="1")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, check=True).stdout
    pid = int(out)
    for _ in range(100):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split()[2] == "Z":
                    break
        except FileNotFoundError:
            break
        import time

        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        pytest.fail("the container outlived its parent (PR_SET_PDEATHSIG)")


def test_signals_and_results():
    with pycontain.spawn(["sleep", "30"], namespaces={"uts"}) as container:
        assert container.running
        container.signal(15)
        result = container.wait(timeout_s=10)
    assert (result.exit_code, result.signal, result.status) == (None, 15, 143)
    assert result.reason == "killed by signal 15 (SIGTERM)"
    slow = pycontain.run(["sleep", "30"], namespaces={"uts"}, timeout_s=0.5)
    assert slow.timed_out and slow.signal == 9


def test_on_created_runs_after_the_namespaces_exist_and_before_exec():
    seen = {}

    def created(pid: int) -> None:
        seen["uts"] = procfs.namespace(pid, "uts")
        seen["cmdline"] = procfs.cmdline(pid)

    with pycontain.spawn(["sleep", "30"], namespaces={"uts"}, on_created=created) as container:
        assert seen["uts"] == container.namespaces()["uts"] != procfs.namespace("self", "uts")
        assert "pycontain.init" in " ".join(seen["cmdline"])  # not exec'd yet when we were asked
        assert procfs.cmdline(container.pid) == ["sleep", "30"]  # and exec'd when spawn returned


def test_a_failing_on_created_stops_the_container():
    def refuse(pid: int) -> None:
        raise RuntimeError("no cgroup for you")

    with pytest.raises(RuntimeError, match="no cgroup for you"):
        pycontain.spawn(["sleep", "30"], namespaces={"uts"}, on_created=refuse)
    # nothing of ours is left running: every child was reaped, but the fork server
    from pycontain import runtime

    server = runtime.fork_server().process
    children = set()
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as f:
            children |= {int(pid) for pid in f.read().split()}
    assert server is not None and children == {server.pid}


def test_trace_shows_the_steps_in_the_result_and_changes_nothing_else():
    traced = pycontain.run(["hostname"], namespaces={"uts"}, hostname="box", trace=True)
    plain = pycontain.run(["hostname"], namespaces={"uts"}, hostname="box")
    assert traced.stdout == plain.stdout == "box\n" and traced.exit_code == plain.exit_code == 0
    assert plain.stderr == ""
    lines = traced.stderr.splitlines()
    assert [line for line in lines if line.startswith("step ")] == [
        "step die_with_parent (lesson 03)", "step unshare_namespaces (lesson 02)",
        "step fork_into_namespaces (lesson 03)",  # no fork without pid: it reports its own PID
        "step apply_hostname (lesson 02)", "step change_directory (lesson 05)",
        "step execute (lesson 02)"]
    assert lines[lines.index("step unshare_namespaces (lesson 02)") + 1].startswith(
        "  unshare(CLONE_NEWUTS) = 0  ")
    assert lines[lines.index("step apply_hostname (lesson 02)") + 1].startswith(
        '  sethostname("box") = 0  ')


def test_a_traced_failure_shows_the_errno_where_it_happened():
    with pytest.raises(SyscallError) as info:
        pycontain.run(["true"], namespaces={"uts"}, cwd="/no/such/dir", trace=True)
    assert info.value.call == "chdir"  # the same error as without the trace
