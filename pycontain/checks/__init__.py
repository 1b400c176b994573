"""The checks behind every "Try it" cell (DESIGN §3).

A check looks at kernel state or behaviour, never at the learner's code. It returns a short
success message, or raises `CheckFailed` whose text says what is missing and how to get there.
One module per lesson: `pycontain.checks.lesson02` holds the checks of lesson 02.

In a notebook a `CheckFailed` shows its message only, as "❌ Not yet: …", not a traceback through
this package that buries it; the traceback is one click away below it, and `%tb` prints it. It is
still an *error* output, so "Run All" stops there and graders (nbval, nbclient) see the failure.
Importing this package installs that display, as every check cell imports its lesson's checks,
and records each check cell's result after it ran (`course.progress`, `pycontain progress`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any


class CheckFailed(AssertionError):
    """An exercise is not done yet. The message teaches: what was expected, what was seen."""


NOT_YET = "❌ Not yet: "
RED, BOLD_RED, RESET = "\x1b[31m", "\x1b[1;31m", "\x1b[0m"  # ANSI: Jupyter colours error text


def not_yet(message: str) -> list[str]:
    """The lines a notebook shows for a failed check: the message, in red, and nothing else.

    >>> import re
    >>> [re.sub(r"\x1b\\[[0-9;]*m", "", line) for line in not_yet("pids.max is 'max'")]
    ["❌ Not yet: pids.max is 'max'"]
    """
    return [f"{BOLD_RED}{NOT_YET}{RESET}{RED}{message}{RESET}"]


def _show_check_failed(shell: Any, etype: type, value: BaseException, tb: Any,
                       tb_offset: int | None = None) -> list[str]:
    """IPython's handler for a `CheckFailed` (`InteractiveShell.set_custom_exc`).

    IPython calls it instead of printing a traceback and ignores what it returns, so it shows
    the error itself, with `_showtraceback`: the one call that both the terminal and ipykernel
    implement, and that makes ipykernel send an `error` output (ename, evalue, these lines).
    """
    import html
    import traceback

    # the first frame is IPython's run_code, which exec'd the cell: not the learner's business
    tb = tb.tb_next or tb
    # what `%tb` (and pdb) read: IPython's own showtraceback() sets them, this handler replaces it
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = value
    shell._showtraceback(etype, value, not_yet(str(value)))
    if type(shell).__name__ == "ZMQInteractiveShell":  # a notebook: the traceback, folded
        from IPython.display import display

        text = html.escape("".join(traceback.format_exception(etype, value, tb)))
        display({"text/html": "<details><summary>where the check stopped (the traceback; "
                              f"<code>%tb</code> prints it too)</summary><pre>{text}</pre>"
                              "</details>",
                 "text/plain": "%tb prints the traceback"}, raw=True)
    return []


def _install_display() -> None:
    """Show `CheckFailed` as `not_yet()` in the IPython shell that imports this, if any."""
    if "IPython" not in sys.modules:  # the CLI and the tests never import IPython: no shell
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        from pycontain.course import progress

        shell.set_custom_exc((CheckFailed,), _show_check_failed)
        # every check cell runs here: its result is the learner's progress (course.progress)
        if progress.record_cell not in shell.events.callbacks["post_run_cell"]:
            shell.events.register("post_run_cell", progress.record_cell)


_install_display()


class Passed(str):
    """A check's success message; shows with a tick in a notebook, followed by the library's
    own answer to the exercise (`answers`, declared with `checks.exercise`): only now, once the
    learner's own has passed, may it be shown."""

    answers: tuple[Any, ...] = ()

    def __new__(cls, message: str, answers: Sequence[Any] = ()) -> Passed:
        passed = super().__new__(cls, message)
        passed.answers = tuple(answers)
        return passed

    def _repr_markdown_(self) -> str:
        if not self.answers:
            return f"✅ {self}"
        from pycontain.observe.display import show

        shown = "\n\n".join(show(answer)._repr_markdown_() for answer in self.answers)
        return f"✅ {self}\n\n{ANSWER_HEADING}\n\n{shown}"


#: what separates a success message from the library's answer after it (the grader keeps the
#: message only, `course.score`)
ANSWER_HEADING = "Compare yours with the library's:"


def expect(condition: bool, message: str) -> None:
    """Raise `CheckFailed(message)` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


#: what a "Try it" function that runs a container should hand back
RETURN_RESULT = "return what pycontain.run(argv, ...) returns, with argv as given"


def attempt(shown: str, func: Callable[..., Any], *args: Any, returns: type | None = None,
            instead: str = "") -> Any:
    """Call the learner's `func(*args)` (written `shown` in messages) and hand back its value.

    Whatever it raises becomes a `CheckFailed` that names the call; with `returns`, a value of
    another type fails with `instead`, which says what to return. Either way the containers it
    started are stopped first (`release_started`), and the message says so: a learner's
    exception must not leave a container, its cgroup or its place on the bridge behind.
    """
    from pycontain import runtime

    before = set(runtime.unwaited())
    try:
        value = func(*args)
    except Exception as e:
        raise CheckFailed(f"{shown} raised {type(e).__name__}: {e}"
                          f"{release_started(before)}") from e
    if returns is not None and not isinstance(value, returns):
        raise CheckFailed(f"{shown} returned {value!r}; {instead}{release_started(before)}")
    return value


def release_started(before: set[Any]) -> str:
    """Stop and wait for every container started since `before` (`runtime.unwaited()` then),
    which releases its cgroup, veth and layer; say what was stopped ('' when nothing was)."""
    from pycontain import runtime

    stopped = [box for box in runtime.unwaited() if box not in before]
    for box in stopped:
        box.kill()
        box.wait()
    if not stopped:
        return ""
    return (f" (the check stopped the {len(stopped)} container(s) it had started, "
            f"{', '.join(str(b.pid) for b in stopped)}, and released what they held)")


@contextlib.contextmanager
def releasing(practice: Any) -> Iterator[None]:
    """Inside, a failure of any kind closes the learner's `practice` Lab and stops every
    container started meanwhile (`release_started`); a `CheckFailed` then says what was stopped.
    """
    from pycontain import runtime

    before = set(runtime.unwaited())
    try:
        yield
    except BaseException as e:
        practice.close()
        stopped = release_started(before)
        if isinstance(e, CheckFailed) and stopped and stopped not in str(e):
            raise CheckFailed(f"{e}{stopped}") from e
        raise


def children() -> set[int]:
    """The PIDs of this process's children now (zombies too), as /proc says, but for the first
    processes of containers started here: `release_started` stops those through their
    Container, which must reap its own process to release its cgroup and veth."""
    from pycontain import procfs, runtime

    me, found = os.getpid(), set()
    containers = {box.pid for box in runtime.unwaited()}
    for pid in procfs.pids():
        try:
            if procfs.status(pid).ppid == me and pid not in containers:
                found.add(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def release_children(before: set[int]) -> str:
    """SIGKILL and reap every child of this process born since `before` (`children()` then):
    what a learner's function started with subprocess, and the check then stops; say what was
    stopped ('' when nothing was)."""
    stopped = sorted(children() - before)
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):  # ended, or reaped by its Popen
            continue
    if not stopped:
        return ""
    return (f" (the check stopped the {len(stopped)} process(es) your function had started, "
            f"{', '.join(map(str, stopped))})")


def output_lines(result: Any, argv: Sequence[str], count: int, fix: str) -> list[str]:
    """The `count` lines a container that ran `argv` printed, or a `CheckFailed` ending in `fix`."""
    lines: list[str] = result.stdout.splitlines()
    expect(result.status == 0 and len(lines) == count,
           f"the container should run {list(argv)!r} and print {count} line(s), but it "
           f"{result.reason} and printed {result.stdout!r} {result.stderr!r}; {fix}")
    return lines


def abandon(practice: Any, box: object) -> None:
    """A check failed half-way: close the learner's `practice` Lab and stop `box` if it is a
    container, so that the failure leaves nothing behind."""
    from pycontain.runtime import Container

    practice.close()
    if isinstance(box, Container):
        box.kill()
        box.wait()


def expect_closed(practice: Any, box: Any, what: str, stop: str) -> None:
    """`practice.close()` must stop the container `box` (`what`, registered as `stop`) and so
    remove its cgroup's directories; the check stops it itself if not."""
    import os

    dirs = list(box.cgroup.dirs.values())

    practice.close()
    running = box.running
    if running:
        box.kill()
        box.wait()
    expect(not running, f"practice.close() left {what} running: register "
                        f"practice.defer(lambda: probe.stop(box), {stop!r}) (the check "
                        "stopped it)")
    expect(not any(os.path.isdir(d) for d in dirs),
           "the container's cgroup is still there: stop the container with probe.stop(box), "
           "which waits for it; waiting removes the cgroup")


def fetch(url: str, timeout_s: float = 30.0, *, errors: bool = False) -> str:
    """GET `url`, retrying while the server inside starts; '' when it never answers. With
    `errors`, an answer with an error status (404, 500) is raised at once as
    urllib.error.HTTPError: the server runs, so waiting changes nothing, and the status says
    what is wrong."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return str(answer.read().decode(errors="replace"))
        except (urllib.error.URLError, OSError) as e:
            if errors and isinstance(e, urllib.error.HTTPError):
                raise
            if time.monotonic() > deadline:
                return ""
            time.sleep(0.2)
