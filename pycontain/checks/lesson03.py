"""The checks of lesson 03, number processes from one.

`check_tiny_init` runs the learner's reaping loop as PID 1 of a real container: a fresh Python
interpreter that forks a shell (PID 2) whose subshells leave orphans behind. The orphans
re-parent to PID 1 and end; the check watches the container from the host and fails when a
zombie stays, when PID 1 ends before its child, or when it does not exit the way its child did.
"""

from __future__ import annotations

import inspect
import sys
import textwrap
import time
from collections.abc import Callable

from pycontain import runtime
from pycontain.checks import CheckFailed, Passed, expect
from pycontain.namespaces import pid

ORPHANS = 5
CHILD_RUNS_S = 1.0
CHILD_EXIT_CODE = 7
#: how long a zombie may wait for PID 1 before the check calls it left behind
ZOMBIE_GRACE_S = 0.3
#: how long PID 1 may take to end after its child did
EXIT_GRACE_S = 5.0

#: PID 2: leaves ORPHANS orphans (each `sleep 0.1`, whose parent subshell exits at once), then
#: runs on for CHILD_RUNS_S and exits with CHILD_EXIT_CODE
WORKLOAD = (f"for i in $(seq {ORPHANS}); do (sleep 0.1 &); done; "
            f"sleep {CHILD_RUNS_S}; exit {CHILD_EXIT_CODE}")

#: PID 1: the learner's function, the fork of PID 2, and an exit with what the function returned
HARNESS = """\
import os, signal, sys, time
{source}
child = os.fork()
if child == 0:
    os.execv("/bin/sh", ["sh", "-c", {workload!r}])
try:
    status = {name}(child)
except BaseException as e:
    print("raised", f"{{type(e).__name__}}: {{e}}", flush=True)
    os._exit(100)
print("returned", repr(status), flush=True)
if not isinstance(status, int) or isinstance(status, bool):
    os._exit(101)
code = os.waitstatus_to_exitcode(status)
os._exit(code if code >= 0 else 128 - code)
"""


def _program(tiny_init: Callable[[int], object]) -> str:
    try:
        source = textwrap.dedent(inspect.getsource(tiny_init))
    except (OSError, TypeError) as e:
        raise CheckFailed(f"could not read the source of {tiny_init!r} ({e}): define it with "
                          "`def tiny_init(child):` in a cell and run that cell") from e
    return HARNESS.format(source=source, name=tiny_init.__name__, workload=WORKLOAD)


def _watch(container: runtime.Container) -> tuple[dict[int, float], set[int], float]:
    """Sample the container until it ends or a zombie outstays ZOMBIE_GRACE_S.

    Returns how long each zombie seen has waited so far, the orphans seen (host PIDs of
    processes whose parent is PID 1, other than PID 2), and when the container ended (or now).
    """
    start = time.monotonic()
    first_seen: dict[int, float] = {}
    waited: dict[int, float] = {}
    orphans: set[int] = set()
    deadline = start + CHILD_RUNS_S + EXIT_GRACE_S
    while container.running and time.monotonic() < deadline:
        try:
            table = pid.processes(container.pid)
        except (FileNotFoundError, ProcessLookupError):
            break  # the namespace has just gone
        now = time.monotonic()
        orphans |= {p.host_pid for p in table if p.ppid == 1 and p.pid != 2}
        for p in table.zombies():
            waited[p.host_pid] = now - first_seen.setdefault(p.host_pid, now)
        if waited and max(waited.values()) > ZOMBIE_GRACE_S:
            break
        time.sleep(0.02)
    return waited, orphans, time.monotonic() - start


def check_tiny_init(tiny_init: Callable[[int], object]) -> Passed:
    """Run `tiny_init(child)` as PID 1 of a container whose PID 2 leaves orphans behind, and
    verify from the host that no zombie stays, that it returns once PID 2 has ended, and that
    PID 1 then exits with PID 2's exit code."""
    container = runtime.spawn([sys.executable, "-I", "-S", "-c", _program(tiny_init)],
                              namespaces={"pid", "mnt"})
    try:
        waited, orphans, ended_s = _watch(container)
        stuck = {host_pid: s for host_pid, s in waited.items() if s > ZOMBIE_GRACE_S}
        if stuck:
            table = pid.processes(container.pid)
            raise CheckFailed(
                f"{len(stuck)} zombie(s) waited more than {ZOMBIE_GRACE_S} s for PID 1:\n"
                f"{table!r}\nThe orphans (PPID inside 1) re-parented to your PID 1 and ended, "
                "but nobody called wait for them. os.waitpid(child, 0) waits for that one child "
                "only: call os.waitpid(-1, 0) in a loop, which reaps whichever child ends next.")
        result = container.wait(timeout_s=1.0)  # _watch waited for it already
    finally:
        if container.running:
            container.kill()
            container.wait()
    said = result.stdout.strip().splitlines()
    said_line = said[-1] if said else "nothing"
    expect(not result.timed_out,
           f"PID 1 had not ended {EXIT_GRACE_S} s after its child did, so the check killed it: "
           "return the status as soon as os.waitpid returns the child's PID")
    expect(not said_line.startswith("raised"),
           f"tiny_init(2) {said_line}. It runs as PID 1 in a fresh Python, so it may use only "
           "`os`, `signal`, `sys` and `time`, and what it defines itself")
    expect(ended_s >= CHILD_RUNS_S,
           f"PID 1 ended after {ended_s:.2f} s, before its child (which runs {CHILD_RUNS_S} s and "
           f"exits {CHILD_EXIT_CODE}); tiny_init(2) {said_line}. When PID 1 exits, the kernel "
           "kills every other process of its namespace. Loop on os.waitpid(-1, 0) and return "
           "only when it returns the child's PID (2 here), with the status it returned with it")
    expect(said_line != f"returned {CHILD_EXIT_CODE}",
           f"tiny_init(2) returned {CHILD_EXIT_CODE}, the exit code; return the wait status as "
           "os.waitpid gives it (the harness turns it into an exit code with "
           "os.waitstatus_to_exitcode)")
    expect(result.exit_code == CHILD_EXIT_CODE,
           f"PID 1 {result.reason} (tiny_init(2) {said_line}), but its child exited "
           f"{CHILD_EXIT_CODE}: return the status os.waitpid returned for the child's PID")
    return Passed(f"your init reaped {len(orphans)} orphans as PID 1 (none stayed a zombie "
                  f"longer than {ZOMBIE_GRACE_S} s) and exited {CHILD_EXIT_CODE}, as its child did")
