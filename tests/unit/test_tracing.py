"""`--trace`: each step and each kernel call, in the kernel's spelling (recorded, no root)."""

from __future__ import annotations

import errno
import os
import re

from pycontain import init, syscalls, tracing
from pycontain.syscalls import CloneFlag
from pycontain.testing import init_spec, recorded

from .test_setup_order import Quiet


def traced(wire, fail=None) -> list[str]:
    """The lines a traced, recorded setup of `wire` writes."""
    lines: list[str] = []
    with recorded(fail) as kernel:
        channel = Quiet()
        try:
            for step, _ in tracing.start(init.STEPS, channel, write=lines.append):
                step(wire, channel)
        except OSError:
            pass
        finally:
            syscalls.use(kernel)
    return lines


TIME = r"  \d+\.\d\d ms"


def test_each_step_then_its_calls_with_result_and_time():
    lines = traced(init_spec(namespaces=["uts", "pid"], hostname="box"))
    steps = [line for line in lines if line.startswith("step ")]
    assert steps == ["step die_with_parent (lesson 03)", "step unshare_namespaces (lesson 02)",
                     "step fork_into_namespaces (lesson 03)", "step apply_hostname (lesson 02)",
                     "step change_directory (lesson 05)", "step execute (lesson 02)"]
    unshare = lines.index("step unshare_namespaces (lesson 02)") + 1
    assert re.fullmatch(r"  unshare\(CLONE_NEWUTS\|CLONE_NEWPID\) = 0" + TIME, lines[unshare])
    assert re.fullmatch(r'  sethostname\("box"\) = 0' + TIME,
                        lines[lines.index("step apply_hostname (lesson 02)") + 1])
    assert re.fullmatch(r"  prctl\(PR_SET_PDEATHSIG, SIGKILL\) = 0" + TIME, lines[1])
    assert re.fullmatch(r"  fork\(\) = 0" + TIME, lines[lines.index(
        "step fork_into_namespaces (lesson 03)") + 1])
    assert any(line.startswith("  sigaction(SIGPIPE, SIG_DFL) = 0  ") for line in lines)
    assert lines[-2] == '  execve("/bin/sh", ["sh"], /* 0 vars */) = ?  (on success the ' \
                        'command replaces init)'


def test_a_step_with_nothing_to_do_stays_silent():
    lines = traced(init_spec(namespaces=["uts"]))
    assert "step apply_hostname (lesson 02)" not in lines  # no hostname asked for
    assert "step enter_user_namespace (lesson 09)" not in lines


def test_a_failure_shows_the_errno_and_stops():
    lines = traced(init_spec(namespaces=["uts"], hostname="box"),
                   fail={"sethostname": errno.EPERM})
    assert re.fullmatch(r'  sethostname\("box"\) = -1 EPERM \(Operation not permitted\)' + TIME,
                        lines[-1])


def test_messages_to_the_parent_are_shown():
    lines = traced(init_spec(namespaces=["user"], sync_before_exec=True))
    assert f"  -> parent {{'sync': 'userns', 'userns_pid': {os.getpid()}}}" in lines
    assert "  <- parent {'go': True}" in lines
    assert "  -> parent {'sync': 'created'}" in lines


def test_arguments_are_spelled_as_the_kernel_does():
    assert tracing.format_call("unshare", (CloneFlag.CLONE_NEWNS | CloneFlag.CLONE_NEWUTS,)) \
        == "unshare(CLONE_NEWNS|CLONE_NEWUTS)"
    assert tracing.format_call("openat", (syscalls.AT_FDCWD, "/proc/self/uid_map",
                                          syscalls.OpenFlag.O_WRONLY, 0)) \
        == 'openat(AT_FDCWD, "/proc/self/uid_map", O_WRONLY, 0)'
    assert tracing.format_call("write", (5, b'0 100000 65536\n')) == \
        'write(5, "0 100000 65536\\n")'
    assert tracing.format_call("mount", tracing.arguments("mount", ("none", "/", None), {})) \
        == 'mount("none", "/", NULL, 0, NULL)'
    assert tracing.format_result(7, None, 1_500_000) == " = 7  1.50 ms"


def test_tracing_is_not_imported_unless_asked_for():
    import subprocess
    import sys

    code = ("import sys; import pycontain.cli, pycontain.init, pycontain.runtime; "
            "print('pycontain.tracing' in sys.modules, 'inspect' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["False", "False"], done.stderr
