"""The checks of lesson 03, number processes from one.

`check_tiny_init` runs the learner's reaping loop as PID 1 of a real container: a fresh Python
interpreter that forks a shell (PID 2) whose subshells leave orphans behind. The orphans
re-parent to PID 1 and end; the check watches the container from the host and fails when a
zombie stays, when PID 1 ends before its child, or when it does not exit the way its child did.
`check_forwarding_init`, the stretch, also sends SIGTERM to PID 1 from the host: the child traps
it and exits 3, if the init passed it on.

The messages diagnose (what PID 1 did, which section or man page explains it), never spell out
the loop: the loop is `pid.reap_until`, which the success output shows.
"""

from __future__ import annotations

import inspect
import signal
import sys
import textwrap
import time
from collections.abc import Callable

from pycontain import runtime
from pycontain.checks import CheckFailed, Passed, expect
from pycontain.checks.exercise import exercise
from pycontain.namespaces import pid

ORPHANS = 5
#: how long each orphan lives: long enough for the check's sampling of /proc to see every one,
#: even where a sample takes a tenth of a second (the v2 guest), and ended before the child
ORPHAN_RUNS_S = 0.5
CHILD_RUNS_S = 1.0
CHILD_EXIT_CODE = 7
#: how long a zombie may wait for PID 1 before the check calls it left behind
ZOMBIE_GRACE_S = 0.3
#: how long PID 1 may take to end after its child did
EXIT_GRACE_S = 5.0

#: PID 2: leaves ORPHANS orphans (each a `sleep ORPHAN_RUNS_S` whose parent subshell exits at
#: once), then runs on for CHILD_RUNS_S and exits with CHILD_EXIT_CODE
WORKLOAD = (f"for i in $(seq {ORPHANS}); do (sleep {ORPHAN_RUNS_S} &); done; "
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
try:  # was the child still running when the function returned? (the wait status says)
    running = os.waitpid(child, os.WNOHANG)[0] == 0
except ChildProcessError:  # collected already, by the function
    running = False
if running:
    print("child still running", flush=True)
print("returned", repr(status), flush=True)
if not isinstance(status, int) or isinstance(status, bool):
    os._exit(101)
code = os.waitstatus_to_exitcode(status)
os._exit(code if code >= 0 else 128 - code)
"""


#: the stretch's PID 2: the same orphans, then it waits for a SIGTERM (its trap exits
#: TERM_EXIT_CODE) for at most STRETCH_RUNS_S, else exits CHILD_EXIT_CODE
TERM_EXIT_CODE = 3
STRETCH_RUNS_S = 3.0
STRETCH_WORKLOAD = (f"trap 'exit {TERM_EXIT_CODE}' TERM; "
                    f"for i in $(seq {ORPHANS}); do (sleep {ORPHAN_RUNS_S} &); done; "
                    f"sleep {STRETCH_RUNS_S} & wait $!; exit {CHILD_EXIT_CODE}")


def _program(tiny_init: Callable[[int], object], workload: str = WORKLOAD) -> str:
    try:
        source = textwrap.dedent(inspect.getsource(tiny_init))
    except (OSError, TypeError) as e:
        raise CheckFailed(f"could not read the source of {tiny_init!r} ({e}): define it with "
                          "`def tiny_init(child):` in a cell and run that cell") from e
    return HARNESS.format(source=source, name=tiny_init.__name__, workload=workload)


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


TINY_INIT_HINTS = (
    "Your function runs as PID 1. What happens to every other process of the namespace when "
    "PID 1 returns (and so exits)? The section \"When PID 1 exits, everyone goes\" says; so "
    "return only once `child` has ended.",
    "The orphans re-parent to PID 1 when their parent exits, so they are your children too. "
    "Read wait(2) on the `pid` argument: which value asks for *any* child, and which for one?",
    "os.waitpid returns (pid, status) for the child it collected. Keep collecting until the pid "
    "it returns is `child`, then hand back that status exactly as you got it.",
)


def _run(program: str, then: Callable[[runtime.Container], None] | None = None
         ) -> tuple[runtime.Result, dict[int, float], set[int], float, str]:
    """Run `program` as PID 1 of a container (`then(container)` once it runs), watch it, and
    return its result, the zombies that outstayed ZOMBIE_GRACE_S with how long, the orphans
    seen, when it ended, and the table of processes when a zombie stayed."""
    container = runtime.spawn([sys.executable, "-I", "-S", "-c", program],
                              namespaces={"pid", "mnt"})
    try:
        if then is not None:
            then(container)
        waited, orphans, ended_s = _watch(container)
        stuck = {host_pid: s for host_pid, s in waited.items() if s > ZOMBIE_GRACE_S}
        table = repr(pid.processes(container.pid)) if stuck else ""
        result = container.wait(timeout_s=1.0)  # _watch waited for it already
    finally:
        if container.running:
            container.kill()
            container.wait()
    return result, stuck, orphans, ended_s, table


def _said(result: runtime.Result) -> str:
    said = result.stdout.strip().splitlines()
    return said[-1] if said else "nothing"


def _judge_reaping(result: runtime.Result, stuck: dict[int, float], table: str, ended_s: float,
                   name: str, runs: str) -> str:
    """The failures both exercises share (`runs`: how long the child runs, in words); returns
    what the function said it did."""
    said_line = _said(result)
    expect(not said_line.startswith("raised"),
           f"{name}(2) {said_line}. It runs as PID 1 in a fresh Python, so it may use only "
           "`os`, `signal`, `sys` and `time`, and what it defines itself")
    if stuck:
        raise CheckFailed(
            f"{len(stuck)} zombie(s) waited more than {ZOMBIE_GRACE_S} s for PID 1:\n{table}\n"
            "Those are the orphans (PPID inside 1): they re-parented to your PID 1 and ended, "
            "but nobody collected their exit status. Which children does your wait ask for? "
            "See wait(2) on its `pid` argument, and the section \"Zombies pile up\"")
    expect(not result.timed_out,
           f"PID 1 had not ended {EXIT_GRACE_S} s after its child did, so the check killed it "
           f"({name}(2) said {said_line!r}): does your function notice when the child that "
           "ended is `child` itself, and return then?")
    expect("child still running" not in result.stdout,
           f"PID 1 ended after {ended_s:.2f} s, before its child (which {runs}): "
           f"{name}(2) {said_line}. When PID 1 exits, the kernel kills every other process of "
           "its namespace (the section \"When PID 1 exits, everyone goes\"): do not return "
           "until the wait has handed you `child` itself")
    expect(not said_line.startswith("returned None"),
           f"{name}(2) returned None: return `child`'s wait status (an int)")
    return said_line


@exercise(hints=TINY_INIT_HINTS, answers=(pid.reap_until,))
def check_tiny_init(tiny_init: Callable[[int], object]) -> Passed:
    """Run `tiny_init(child)` as PID 1 of a container whose PID 2 leaves orphans behind, and
    verify from the host that no zombie stays, that it returns once PID 2 has ended, and that
    PID 1 then exits with PID 2's exit code."""
    result, stuck, orphans, ended_s, table = _run(_program(tiny_init))
    said_line = _judge_reaping(result, stuck, table, ended_s, "tiny_init",
                               f"runs {CHILD_RUNS_S:g} s")
    expect(said_line != f"returned {CHILD_EXIT_CODE}",
           f"tiny_init(2) returned {CHILD_EXIT_CODE}, the child's exit code; the harness wants "
           "the wait status, the raw number wait(2) reports (it turns it into an exit code "
           "itself, with os.waitstatus_to_exitcode)")
    expect(result.exit_code == CHILD_EXIT_CODE,
           f"PID 1 {result.reason} (tiny_init(2) {said_line}), but its child exited "
           f"{CHILD_EXIT_CODE}: is the status you return the one the wait gave for `child`, "
           "not for another process?")
    return Passed(f"your init reaped {len(orphans)} orphans as PID 1 (none stayed a zombie "
                  f"longer than {ZOMBIE_GRACE_S} s) and exited {CHILD_EXIT_CODE}, as its child did")


FORWARDING_HINTS = (
    "The check sends SIGTERM to PID 1 from the host. Which signals does the kernel deliver to "
    "a PID 1 at all? The section \"PID 1 ignores SIGTERM\" and pid_namespaces(7) say.",
    "Python's `signal.signal(signum, handler)` installs a handler; the handler may call "
    "os.kill(child, signum). Install it before your first wait: a wait interrupted by a "
    "handler carries on by itself (PEP 475).",
)


def _terminate_once_waiting(sent: list[bool]) -> Callable[[runtime.Container], None]:
    """SIGTERM to PID 1 once PID 2 has set its trap and sleeps (its `sleep`, PPID 2, runs);
    `sent` says whether it came to that (PID 1 may have ended before)."""
    def terminate(container: runtime.Container) -> None:
        try:
            pid.wait_for_processes(container.pid, 1, name="sleep", ppid=2,
                                   timeout_s=EXIT_GRACE_S)
        except (TimeoutError, OSError):
            return  # PID 1 ended, and its namespace with it
        container.signal(signal.SIGTERM)
        sent.append(True)
    return terminate


@exercise(hints=FORWARDING_HINTS, answers=(pid.reap_until,), stretch=True)
def check_forwarding_init(forwarding_init: Callable[[int], object]) -> Passed:
    """Stretch: as `check_tiny_init`, and SIGTERM sent to PID 1 must reach the child, which
    traps it and exits TERM_EXIT_CODE; PID 1 must exit the same way."""
    sent: list[bool] = []
    result, stuck, _, ended_s, table = _run(_program(forwarding_init, STRETCH_WORKLOAD),
                                            then=_terminate_once_waiting(sent))
    # PID 1 must last until its child ended, after the SIGTERM that comes once the child runs
    said_line = _judge_reaping(result, stuck, table, ended_s, "forwarding_init",
                               f"runs until SIGTERM, or {STRETCH_RUNS_S:g} s")
    expect(result.exit_code != CHILD_EXIT_CODE,
           f"the child ran its full {STRETCH_RUNS_S:g} s and exited {CHILD_EXIT_CODE}: the "
           "SIGTERM sent to your PID 1 went no further. A PID 1 receives only the signals it "
           "has a handler for, and passing one on is its job (signal(7), os.kill)")
    expect(result.exit_code == TERM_EXIT_CODE,
           f"PID 1 {result.reason} (forwarding_init(2) {said_line}), but the child, told "
           f"SIGTERM, exited {TERM_EXIT_CODE}: return the wait status the child ended with")
    return Passed(f"SIGTERM went from the host to your PID 1, on to the child, which exited "
                  f"{TERM_EXIT_CODE} after {ended_s:.2f} s; your init exited {TERM_EXIT_CODE} "
                  "too, and left no zombie")
