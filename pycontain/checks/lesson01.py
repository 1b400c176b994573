"""The checks of lesson 01, look at a process through /proc.

`check_same_namespace` asks the learner's `same_namespace(pid_a, pid_b, ns_type)` about every
namespace type of real process pairs the check starts itself (a plain child, one in new UTS and
network namespaces), compares each answer with the kernel's, and then asks about a process that
has ended. Before it names a single wrong answer it looks at all of them, to recognise the usual
wrong turns: answers that follow the PIDs (a path or the link's own inode compared), one answer
for every type (`ns_type` unused), every answer reversed, a process that has ended answered
False instead of failing.

`check_kept_namespace`, the stretch, wants an open file descriptor that keeps a namespace alive
after its last process ended, and proves it by entering the namespace with nsenter(1).

The messages say what the answers show and where to look, never the comparison to write: the
library's is `procfs.shared_namespaces`, shown once the check passes.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable

from pycontain import procfs, runtime
from pycontain.checks import CheckFailed, Passed, attempt, expect
from pycontain.checks.exercise import exercise
from pycontain.observe import probe

Question = tuple[int, int, str]

SAME_NAMESPACE_HINTS = (
    "The section \"Every process is in one namespace of each type\" shows what identifies a "
    "namespace, and namespaces(7), \"The /proc/[pid]/ns/ directory\", says when two processes "
    "share one.",
    "Each /proc/<pid>/ns/<type> is a symbolic link. Which `os` function reads where a link "
    "points, and what does its answer look like for /proc/self/ns/uts?",
    "Read the link of `ns_type` for each of the two PIDs and compare what the two links point "
    "to, not the paths you read them from.",
)


def _questions(pairs: list[tuple[int, int]]) -> list[Question]:
    return [(a, b, ns_type) for a, b in pairs for ns_type in procfs.NAMESPACE_TYPES]


def _diagnose(answers: dict[Question, bool], truth: dict[Question, bool]) -> None:
    """Raise the `CheckFailed` that names the wrong turn the answers show, if any."""
    wrong = [q for q in answers if answers[q] != truth[q]]
    if not wrong:
        return
    expect(len(wrong) < len(answers),
           f"every one of your {len(answers)} answers is the opposite of the kernel's: "
           "same_namespace should be True when the two are in the same namespace")
    expect(not all(answers[q] == (q[0] == q[1]) for q in answers),
           "your answers follow the PIDs, not the namespaces: True only when pid_a == pid_b, "
           "even for a plain child that shares all eight namespaces with this notebook. "
           "Whatever you compare still holds the PID (a path such as /proc/<pid>/ns/uts, or "
           "the inode of the link itself, which os.lstat gives): compare what the link points "
           "to")
    for a, b in {(q[0], q[1]) for q in answers}:
        given = {answers[(a, b, t)] for t in procfs.NAMESPACE_TYPES}
        kernel = {truth[(a, b, t)] for t in procfs.NAMESPACE_TYPES}
        expect(len(given) > 1 or len(kernel) == 1,
               f"for processes {a} and {b} you gave the same answer, {given.pop()}, for all "
               f"eight types, but the kernel says they share "
               f"{sorted(procfs.shared_namespaces(a, b))} only: does your function read the "
               "link of the type it is given, `ns_type`?")
    a, b, ns_type = wrong[0]
    raise CheckFailed(
        f"same_namespace({a}, {b}, {ns_type!r}) returned {answers[wrong[0]]}, but the kernel "
        f"says {a} and {b} {'share' if truth[wrong[0]] else 'do not share'} their {ns_type} "
        f"namespace: /proc/{a}/ns/{ns_type} points to {procfs.namespace(a, ns_type)}, "
        f"/proc/{b}/ns/{ns_type} to {procfs.namespace(b, ns_type)} ({len(wrong)} of "
        f"{len(answers)} answers were wrong)")


def _ended_process() -> int:
    """The PID of a process that has ended and been reaped (its /proc directory gone)."""
    for _ in range(3):
        brief = probe.start(["sleep", "30"])
        probe.stop(brief)
        if not os.path.exists(f"/proc/{brief.pid}"):  # not yet given to another process
            return brief.pid
    raise RuntimeError("every PID the check reaped was reused at once; run the check again")


def _ask_about_an_ended_process(same_namespace: Callable[[int, int, str], object]) -> None:
    me, gone = os.getpid(), _ended_process()
    call = f"same_namespace({me}, {gone}, 'uts')"
    try:
        answer = same_namespace(me, gone, "uts")
    except FileNotFoundError:
        return
    except Exception as e:
        raise CheckFailed(f"{call} raised {type(e).__name__}: {e}, for a process {gone} that "
                          "has ended: let the error that reading its link raises go through "
                          "unchanged (the section \"When a process is gone\")") from e
    raise CheckFailed(f"{call} returned {answer!r}, but process {gone} has ended: it is in no "
                      "namespace, so neither True nor False is right. Reading its link fails; "
                      "let that FileNotFoundError go through rather than catching it (the "
                      "section \"When a process is gone\")")


@exercise(hints=SAME_NAMESPACE_HINTS, answers=(procfs.shared_namespaces,))
def check_same_namespace(same_namespace: Callable[[int, int, str], object]) -> Passed:
    """Compare `same_namespace(pid_a, pid_b, ns_type)` with the kernel, for every namespace type,
    on real process pairs: this process and a plain child (they share everything), a child the
    check starts itself in new UTS and network namespaces with unshare(1), and a process with
    itself; then ask about a process that has ended, which must raise FileNotFoundError."""
    plain = probe.start(["sleep", "30"])
    boxed = probe.start(["unshare", "--uts", "--net", "sleep", "30"])
    try:
        me = os.getpid()
        pairs = [(me, plain.pid), (me, boxed.pid), (boxed.pid, plain.pid), (boxed.pid, boxed.pid)]
        truth = {q: q[2] in procfs.shared_namespaces(q[0], q[1]) for q in _questions(pairs)}
        answers: dict[Question, bool] = {}
        for a, b, ns_type in truth:
            shown = f"same_namespace({a}, {b}, {ns_type!r})"
            answer = attempt(shown, same_namespace, a, b, ns_type)
            expect(isinstance(answer, bool),
                   f"{shown} returned {answer!r} ({type(answer).__name__}): return True or "
                   "False, which is what comparing two things gives")
            answers[(a, b, ns_type)] = answer
        _diagnose(answers, truth)
    finally:
        probe.stop(plain)
        probe.stop(boxed)
    _ask_about_an_ended_process(same_namespace)
    return Passed(f"same_namespace agrees with the kernel on {len(answers)} questions, including "
                  "a process in new UTS and network namespaces, and refuses to answer for a "
                  "process that has ended")


KEPT_HOSTNAME = "kept-alive"

KEEP_NAMESPACE_HINTS = (
    "The section \"Clean up\", below, names what holds a namespace besides its processes. "
    "A string such as 'uts:[4026532201]' is only a name: it holds nothing.",
    "An open file is a reference the kernel counts. What do you get when you open one of the "
    "/proc/<pid>/ns links itself, with os.open? (A file object that Python frees closes its "
    "descriptor, and a `with` block closes it at once.)",
)


def _fd_target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


@exercise(hints=KEEP_NAMESPACE_HINTS, answers=(), stretch=True)
def check_kept_namespace(keep_namespace: Callable[[int, str], object]) -> Passed:
    """Stretch: `keep_namespace(pid, "uts")` must return an open file descriptor that keeps the
    UTS namespace of `pid` alive once `pid` has ended; the check then enters the namespace with
    nsenter(1) through that descriptor and reads the hostname the container had set."""
    box = runtime.spawn(["sleep", "30"], namespaces={"uts"}, hostname=KEPT_HOSTNAME)
    fd: object = None
    try:
        kept = procfs.namespace(box.pid, "uts")
        fd = attempt(f"keep_namespace({box.pid}, 'uts')", keep_namespace, box.pid, "uts")
    finally:
        box.kill()
        box.wait()
    try:
        expect(not isinstance(fd, str),
               f"keep_namespace returned the string {fd!r}: a name holds nothing, and the "
               "namespace went when its last process ended. Return an open file descriptor "
               "(an int) that holds it")
        expect(not hasattr(fd, "fileno"),
               f"keep_namespace returned {fd!r}, a file object: return its descriptor, an int, "
               "and keep it open (Python closes a file object's descriptor when it frees it)")
        expect(isinstance(fd, int) and not isinstance(fd, bool),
               f"keep_namespace returned {fd!r}: return an open file descriptor, an int")
        assert isinstance(fd, int)
        try:
            held = os.fstat(fd)
        except OSError as e:
            raise CheckFailed(f"file descriptor {fd} is not open any more ({e.strerror}): was "
                              "it closed when your function returned (a `with` block, a file "
                              "object Python freed)?") from e
        expect(held.st_ino == kept.inode and not stat.S_ISDIR(held.st_mode),
               f"file descriptor {fd} is open on {_fd_target(fd)}, not on the namespace "
               f"{kept} itself: open the namespace's own link under /proc/{box.pid}/ns")
        entered = subprocess.run(["nsenter", f"--uts=/proc/self/fd/{fd}", "hostname"],
                                 capture_output=True, text=True, timeout=10, pass_fds=(fd,))
        expect(entered.stdout.strip() == KEPT_HOSTNAME,
               f"nsenter through file descriptor {fd} printed {entered.stdout!r} "
               f"{entered.stderr.strip()!r}, not the container's hostname {KEPT_HOSTNAME!r}")
    finally:
        if isinstance(fd, int) and not isinstance(fd, bool):
            try:
                os.close(fd)
            except OSError:
                pass
    return Passed(f"the container's process ended, yet its UTS namespace {kept} lived on, held "
                  f"by your descriptor {fd}: nsenter entered it and read {KEPT_HOSTNAME!r}. "
                  "`ip netns add` keeps a network namespace the same way, with a bind mount "
                  "of the link instead of a descriptor")
