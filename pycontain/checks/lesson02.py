"""The checks of lesson 02, give a process its own hostname.

`check_run_named` calls the learner's `run_named(container_id, argv)` with random Docker-style
ids and reads, from the container's own output, its hostname and its UTS namespace. Besides the
wrong results (no name given, the whole id, the wrong end of it, a container still running), it
guards against the two wrong turns that change this notebook rather than a container: a
sethostname(2) here renames the host (the check names it and sets the host's name back), and
`uts.isolate_hostname` here moves the notebook's own thread into a new UTS namespace (the check
names it and moves the thread back with setns(2)).

`check_hostname_of`, the stretch, wants the hostname of a running container read from outside
it; the same two guards hold.

The messages say what was seen and which section explains it, never the call to write.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pycontain import procfs, runtime, syscalls
from pycontain.checks import (
    CheckFailed,
    Passed,
    attempt,
    expect,
    kept,
    output_lines,
    release_started,
)
from pycontain.checks.exercise import exercise
from pycontain.runtime import Result

#: what the check asks the container to run: its hostname, then its UTS namespace
REPORT = ["sh", "-c", "hostname; readlink /proc/self/ns/uts"]

@contextmanager
def notebook_kept() -> Iterator[list[str]]:
    """Run the body, then undo what it did to this notebook's process: this thread moved into
    another UTS namespace (moved back, `kept.thread_namespaces_kept`) or a new hostname of the
    host (set back with sethostname(2)). Yields a list that receives one sentence per repair; a
    body that raised keeps its exception."""
    host_name = socket.gethostname()
    repaired: list[str] = []
    try:
        with kept.thread_namespaces_kept("uts") as moved:
            yield repaired
    finally:
        if moved:
            repaired.append(f"{moved[0]}. Your function ran unshare(2) in the notebook's "
                            "process instead of in a container's (see \"Why the notebook "
                            "never unshares itself\")")
        if socket.gethostname() != host_name:
            renamed = socket.gethostname()
            syscalls.sethostname(host_name)
            repaired.append(
                f"the host itself was renamed {renamed!r}: a sethostname(2) ran in the host's "
                "UTS namespace, this notebook's. Only a process in a UTS namespace of its own "
                "may rename freely (see \"Rename the machine from inside a container\"); the "
                f"check set the host's name back to {host_name!r}")


def _refuse_repairs(repaired: list[str]) -> None:
    expect(not repaired, "; and ".join(repaired))


def _wrong_type(value: Any) -> str:
    if isinstance(value, runtime.Container):
        return ("that is a container still running (what pycontain.spawn gives); the check "
                "reads what the container printed, once it has ended: return the result of a "
                "run that waits")
    if isinstance(value, subprocess.CompletedProcess):
        return ("that is the pycontain command's result (subprocess); the check wants the "
                "Python API's result, as the section \"Rename the machine from inside a "
                "container\" got one")
    return "return the Result of the pycontain run that ran argv, with argv as given"


RUN_NAMED_HINTS = (
    "The first section, \"Rename the machine from inside a container\", runs a container with "
    "a name of its choosing. Which of its options set the namespace and the name?",
    "Docker's short id is the id's first 12 characters: a Python slice. Pass `argv` on "
    "unchanged: the check's own command prints what it must see.",
)



@exercise(hints=RUN_NAMED_HINTS)
def check_run_named(run_named: Callable[[str, list[str]], object], tries: int = 3) -> Passed:
    """Call `run_named(container_id, argv)` with random 64-hex-digit ids, as `docker` makes them,
    and verify from the container's own output that it ran in a new UTS namespace named after
    the first 12 characters of the id, while the host and this notebook kept their names."""
    host_before = socket.gethostname()
    host_uts = procfs.namespace("self", "uts")
    for _ in range(tries):
        container_id = secrets.token_hex(32)
        short = container_id[:12]
        shown = f"run_named({container_id!r}, {REPORT!r})"
        before = set(runtime.unwaited())
        with notebook_kept() as repaired:
            result = attempt(shown, run_named, container_id, list(REPORT))
        _refuse_repairs(repaired)
        if not isinstance(result, Result):
            raise CheckFailed(f"{shown} returned {result!r}; {_wrong_type(result)}"
                              f"{release_started(before)}")
        inside, uts_link = output_lines(result, REPORT, 2,
                                        "pass argv on unchanged: it is the check's own command")
        expect(procfs.parse_ns_link(uts_link) != host_uts,
               f"the container ran in the host's UTS namespace ({uts_link}), so it could not "
               "have a name of its own (see \"Look at the container from outside\")")
        expect(inside != host_before,
               f"the container's hostname was the host's own, {inside!r}: a new UTS namespace "
               "starts as a copy of its parent's names, and keeps them until someone sets "
               "one (uts_namespaces(7))")
        expect(inside != container_id,
               f"the container's hostname was the whole 64-digit id; Docker takes the short "
               f"id, its first 12 characters ({short!r})")
        expect(inside != container_id[-12:],
               f"the container's hostname was {inside!r}, the id's last 12 characters; the "
               f"short id is the first 12 ({short!r})")
        expect(inside == short,
               f"for id {container_id!r} the container's hostname was {inside!r}; Docker's "
               f"rule makes it the id's first 12 characters, {short!r}")
    return Passed(f"{tries} containers each saw their own id as hostname, in their own UTS "
                  f"namespace; the host is still {host_before!r}")


HOSTNAME_OF_HINTS = (
    "The hostname is no file: it belongs to a UTS namespace (uts_namespaces(7)), so any way "
    "of reading it from this notebook (socket.gethostname, /proc/sys/kernel/hostname, "
    "/etc/hostname) answers for the host's namespace. Where must the reading happen?",
    "setns(2) joins the namespace an open /proc/<pid>/ns file names, and nsenter(1) is the "
    "command that does it for a program. Which process may join, given what \"Why the "
    "notebook never unshares itself\" says about threads?",
    "Either run a small program in the container's UTS namespace and read what it prints "
    "(nsenter's -t and -u options), or join in a thread of your own that ends afterwards: "
    "namespaces belong to threads.",
)


@exercise(hints=HOSTNAME_OF_HINTS, stretch=True)
def check_hostname_of(hostname_of: Callable[[int], object]) -> Passed:
    """Stretch: `hostname_of(pid)` must return the hostname of the running container whose
    process is `pid`, a name the check chose at random, without renaming the host or moving
    this notebook's thread."""
    secret = f"box-{secrets.token_hex(4)}"
    box = runtime.spawn(["sleep", "30"], namespaces={"uts"}, hostname=secret)
    try:
        with notebook_kept() as repaired:
            said = attempt(f"hostname_of({box.pid})", hostname_of, box.pid)
        _refuse_repairs(repaired)
        running = box.running
    finally:
        box.kill()
        box.wait()
    expect(isinstance(said, str),
           f"hostname_of({box.pid}) returned {said!r}: return the container's hostname, a str")
    assert isinstance(said, str)
    expect(said.strip() != socket.gethostname(),
           f"hostname_of({box.pid}) returned {said.strip()!r}, the host's hostname: wherever "
           "you read it, the reading happened in this notebook's UTS namespace (or in a new "
           "one, which starts as a copy of it), not in the container's")
    expect(said == said.strip() or said.strip() != secret,
           f"hostname_of({box.pid}) returned {said!r}: the name without the newline the "
           "command printed after it")
    expect(said == secret,
           f"hostname_of({box.pid}) returned {said!r}, but the container is called {secret!r}")
    expect(running, f"the container had ended when hostname_of({box.pid}) returned: read its "
                    "name without stopping it")
    return Passed(f"you read {secret!r} from inside the UTS namespace of container {box.pid}, "
                  "while this notebook and the host kept theirs")
