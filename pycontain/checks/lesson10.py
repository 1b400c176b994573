"""The checks of lesson 10, hide the host cgroups.

The exercises turn the lesson's deliberate failure ("unshare first, place later") the right way
round, by hand: the check makes the cgroups (each recorded, each removed by its own path when
the check ends, never a sweep of anyone else's), gives them to the learner's function, and
reads what the process it started printed about itself (its pid, `/proc/self/cgroup`, its
cgroup namespace), then, from the host, which cgroup that pid is in. It recognises the wrong
turns seen when the exercise was tried: the lesson's demo copied (unshare, then attach: the root
stays where the process was), no cgroup namespace, a process never placed, stdout not piped,
a function that waited for the process. Whatever the function started is stopped and reaped
whatever happens (`checks.release_children`).
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable

from pycontain import cgroups, init, procfs
from pycontain.checks import CheckFailed, Passed, attempt, children, expect, release_children
from pycontain.checks.exercise import exercise
from pycontain.namespaces import cgroup

#: what the check asks the process to run: its pid, its cgroups, its cgroup namespace, then wait
#: (the check looks at it from the host meanwhile, and stops it)
REPORT = ["sh", "-c", "echo $$; cat /proc/self/cgroup; readlink /proc/self/ns/cgroup; "
                      "echo ==; exec sleep 10"]
#: how long the process may take to print its report once the function returned
READ_S = 10.0

PLACE_HINTS = (
    "Reread \"Deliberate failure: unshare first, place later\": it did the two steps in the "
    "wrong order. Your function does the same two steps; which must come first?",
    "The process must wait before it unshares, until you have placed it. The demo's process "
    "already waits for a line on its stdin; what it runs after that line is yours to choose "
    "(unshare(1)'s --cgroup option, and `exec`).",
    "Start it with stdin and stdout piped (text=True), place its pid, then send the line and "
    "flush; return the Popen without waiting: the check reads stdout itself.",
)
SIDEWAYS_HINTS = (
    "The path a process sees is its cgroup *relative to its namespace's root*, which is fixed "
    "when it unshares. Where must the process be at that moment, and where afterwards?",
    "Three steps: place in `a`, unshare, move to `b`, and only then run argv. The process must "
    "wait twice; a shell inside unshare(1) can wait for a second line, as the first one did.",
)


def _report(proc: object, shown: str, before: set[int]) -> tuple[int, dict[str, str], str]:
    """What the process printed: (its pid, its /proc/self/cgroup, its cgroup ns link)."""
    if not isinstance(proc, subprocess.Popen):
        raise CheckFailed(f"{shown} returned {proc!r}; return the subprocess.Popen that runs "
                          "argv")
    expect(proc.stdout is not None,
           "the process's stdout is not piped, so the check cannot read what it printed: start "
           "it with stdout=subprocess.PIPE (and text=True)")
    assert proc.stdout is not None
    expect(not proc.stdout.closed,
           "the process's stdout was read and closed before the check could read it: did your "
           "function wait for the process (communicate)? Return while it runs")
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            text = line.decode() if isinstance(line, bytes) else line
            if text.strip() == "==":
                return
            lines.append(text.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(READ_S)
    if reader.is_alive():
        proc.kill()
        reader.join(2)
        raise CheckFailed(f"the process printed {lines} and nothing more in {READ_S:g} s: is it "
                          "still waiting for a line on its stdin? Send it and flush")
    if len(lines) < 3 or not lines[0].isdigit():
        raise CheckFailed(
            f"the process should run {REPORT!r}, but it printed {lines}"
            + (" and had ended before your function returned: did it wait for the process "
               "(communicate, wait)? Return while it runs" if proc.poll() is not None else
               ": pass argv on unchanged, after the steps of your own"))
    return int(lines[0]), cgroup.parse("\n".join(lines[1:-1])), lines[-1]


def _where(pid: int, key: str) -> str:
    """Where the host says `pid` is in the hierarchy `key`."""
    try:
        return repr(cgroup.own(pid).get(key, "?"))
    except OSError:
        return "(it has ended)"


def _run(shown: str, func: Callable[..., object], made: tuple[cgroups.Cgroup, ...],
         judge: Callable[[int, dict[str, str]], None]) -> dict[str, str]:
    """Call `func(*made, argv)`, read the report of the process it started and `judge` it while
    the process still runs; then stop every process the function started, and remove `made`."""
    before = children()
    try:
        proc = attempt(shown, func, *made, list(REPORT))
        pid, seen, link = _report(proc, shown, before)
        expect(procfs.parse_ns_link(link) != procfs.namespace("self", "cgroup"),
               f"the process was in the host's cgroup namespace ({link}): nothing unshared a "
               "new one (unshare(1), cgroup_namespaces(7))")
        judge(pid, seen)
    except CheckFailed as e:
        stopped = release_children(before)
        raise CheckFailed(f"{e}{stopped}") from e
    finally:
        release_children(before)
        for cg in made:
            cg.remove()  # the check's own, by the paths it recorded
    return seen


def _made(label: str) -> cgroups.Cgroup:
    cg = cgroups.create(["pids"], label=label)
    try:
        cg.write("pids.max", 20)
    except BaseException:
        cg.remove()
        raise
    return cg


def _notebook_seen_from(pid: int) -> dict[str, str]:
    """This notebook's own cgroups as the cgroup namespace of `pid` sees them: "/" where that
    namespace's root is this notebook's cgroup. (nsenter(1) joins that one namespace from here,
    so the `cat` it runs is in this notebook's cgroups; in the lab VM those are siblings of
    the check's, and the path the process sees of itself alone cannot tell the two roots apart.)
    """
    import subprocess

    done = subprocess.run(["nsenter", f"--cgroup=/proc/{pid}/ns/cgroup", "cat",
                           "/proc/self/cgroup"], capture_output=True, text=True, timeout=30)
    return cgroup.parse(done.stdout) if done.returncode == 0 else {}


def _key(cg: cgroups.Cgroup) -> str:
    """The key of cg's pids hierarchy in /proc/<pid>/cgroup ('' on v2)."""
    return "" if cg.version == 2 else "pids"


@exercise(hints=PLACE_HINTS, answers=[init.wait_until_created, init.unshare_cgroup_namespace])
def check_placed_then_unshared(place_then_unshare: Callable[..., object]) -> Passed:
    """Call `place_then_unshare(cg, argv)` with a pids cgroup the check made; the process it
    returns must run argv in `cg`, in a new cgroup namespace whose root is `cg`: every line of
    its /proc/self/cgroup reads `/`."""
    cg = _made("ns")

    def judge(pid: int, seen: dict[str, str]) -> None:
        key = _key(cg)
        expect(pid in cg.procs(),
               f"the process {pid} did not run in {cg.name}; the host says it was in "
               f"{_where(pid, key)}. Place it in the cgroup you were given, before it unshares")
        path = seen.get(key, "?")
        expect(path == "/",
               f"inside, the process saw its cgroup as {path!r}, not '/': its namespace's root "
               "was fixed where the process was when it unshared, before you placed it. See "
               "\"Deliberate failure: unshare first, place later\"" if path.endswith(cg.name)
               else f"inside, the process saw its cgroup as {path!r}, not '/'")
        others = {k: v for k, v in seen.items() if v != "/"}
        expect(not others, f"inside, these hierarchies were not at '/': {others}")

    seen = _run("place_then_unshare(cg, argv)", place_then_unshare, (cg,), judge)
    return Passed(f"the process ran in {cg.name} and saw all {len(seen)} hierarchies at '/': "
                  "placed first, unshared after, as pycontain's init does after \"created\"")


@exercise(hints=SIDEWAYS_HINTS, stretch=True)
def check_sideways(sideways: Callable[..., object]) -> Passed:
    """Stretch: call `sideways(a, b, argv)` with two sibling cgroups the check made; the process
    must run argv in `b`, in a cgroup namespace rooted at `a`: it sees `/../<b>`."""
    a = _made("a")
    try:
        b = _made("b")
    except BaseException:
        a.remove()
        raise
    wanted = f"/../{b.name}"

    def judge(pid: int, seen: dict[str, str]) -> None:
        path = seen.get(_key(b), "?")
        if path == "/":
            raise CheckFailed(f"inside, the process saw its cgroup as '/': it was still where "
                              f"its namespace's root is. Move it to {b.name} after the unshare")
        expect(pid in b.procs(),
               f"the process {pid} did not run in {b.name}; the host says it was in "
               f"{_where(pid, _key(b))}")
        rooted_here = path == f"/{b.name}" or _notebook_seen_from(pid).get(_key(b)) == "/"
        expect(not rooted_here,
               f"inside, the process saw {path!r}: its namespace's root is the cgroup this "
               f"notebook is in, not {a.name}; it unshared before you placed it in {a.name}")
        expect(path == wanted, f"inside, the process saw {path!r}, not {wanted!r}")

    _run("sideways(a, b, argv)", sideways, (a, b), judge)
    return Passed(f"the process ran in {b.name} and saw {wanted}: its namespace's root stayed "
                  f"at {a.name}, where it unshared, and its real cgroup is a sibling of it")
