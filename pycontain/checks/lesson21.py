"""The checks of lesson 21, filter system calls.

`check_refuse_unshare` calls the learner's `refuse_unshare()`, which returns a seccomp profile
in Docker's format, and runs real containers under it (as root, with every capability, so that
only the filter can refuse anything): a shell must run, unshare(2) of a user namespace must fail
with EPERM, and the ordinary calls of `ORDINARY` must all succeed. A profile the compiler
refuses fails with the compiler's own message (its line and column, or the nearest name).

It recognises the wrong turns seen when the exercise was tried: no profile returned (a run's
Result, a list of rules), an allow-list whose default refuses what a shell needs, a kill
instead of an error, an errno other than EPERM (the ENOSYS of the lesson's first profile), and,
when unshare got through: no rule naming it, a rule left out because its `excludes` lists a
capability the containers keep (the default profile's own rule), a LOG or ALLOW action, a rule
whose `args` did not match; and a rule that refuses more (clone, which fork is underneath).

The stretch, `check_refuse_user_namespaces`, closes the other ways into a user namespace:
clone(2) and clone3(2) with CLONE_NEWUSER, and unshare with CLONE_NEWUSER among other flags,
while fork, a thread, and an unshare of a UTS namespace alone keep working. Whatever the
learner's function starts is stopped when it raises (`checks.attempt`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

from pycontain import runtime
from pycontain.checks import CheckFailed, Passed, attempt, expect
from pycontain.checks.exercise import exercise
from pycontain.errors import SpecError, format_error
from pycontain.observe import seccomp_probe
from pycontain.security import seccomp

#: the calls that must still work, as `seccomp_probe` makes them
ORDINARY = ("mkdir", "getpid", "write", "fork", "uname", "sync")
#: the stretch: the ways into a user namespace that must fail, and what must still work
USER_NAMESPACE_WAYS = ("unshare", "unshare-newuser-newuts", "clone-newuser", "clone3-newuser")
STILL_WORKING = ("fork", "thread", "unshare-newuts")
SIGSYS_STATUS = 128 + 31
#: what the check's containers keep: everything (None, as `seccomp.compile` reads it)
EVERY_CAPABILITY = None

PROFILE = ("return a profile: a dict in Docker's seccomp format, with a defaultAction and a "
           "list of syscalls rules (\"A filter, instruction by instruction\")")

UNSHARE_HINTS = (
    "\"Three answers to one call\" gave mkdir three actions: which of them fails the call and "
    "lets the program go on? \"A filter, instruction by instruction\" shows the fields a rule "
    "has; which errno is \"Operation not permitted\"? errno(3), or Python's errno module.",
    "The check's containers keep every capability, root with all its powers: the case where "
    "only the filter is left. A rule with `excludes` is left out for a container that keeps "
    "what it lists (\"Refuse what no capability guards\").",
    "A call that no rule names gets the defaultAction: a deny-list allows by default and names "
    "what it refuses. seccomp.listing(seccomp.compile(refuse_unshare())) shows the filter the "
    "kernel will run; seccomp_probe.try_call(\"unshare\", ..., directory) tries it.",
)
USER_NAMESPACE_HINTS = (
    "unshare(2) is one way into a new user namespace; clone(2) lists the flags that make "
    "namespaces, and \"A filter, instruction by instruction\" says what a filter can read of a "
    "call: its number and six argument values, never memory they point to.",
    "A rule's `args` compares one argument (seccomp(2), and SCMP_CMP_MASKED_EQ in "
    "seccomp_rule_add(3)): a flags word with several bits set must still match. clone3(2)'s "
    "flags are in a struct in memory: read the comment of the default profile's rule for it, "
    "seccomp.DEFAULT, and ask what the C library does when clone3 is missing.",
    "Try each way as the check does: seccomp_probe.try_call(way, profile, directory) for "
    "\"clone-newuser\", \"clone3-newuser\", \"unshare-newuser-newuts\", \"thread\", "
    "\"unshare-newuts\".",
)


def _shell(profile: object, directory: str) -> runtime.Result:
    path = os.path.join(directory, "note")
    return runtime.run(["sh", "-c", f"echo hello > {path} && cat {path}"], seccomp=profile,
                       timeout_s=30)


def _profile(profile: object, shown: str) -> tuple[object, list[seccomp.Instruction]]:
    """The learner's `profile` (returned by `shown`; "default" is `seccomp.DEFAULT`) and its
    filter, or a CheckFailed that says what else it is."""
    if profile == "unconfined":
        raise CheckFailed(f"{shown} returned 'unconfined', which is no filter at all: every "
                          f"call works, unshare too. {PROFILE}")
    if profile == "default":  # pycontain's own: its rules for unshare are the lesson's matter
        profile = seccomp.DEFAULT
    if isinstance(profile, runtime.Result):
        raise CheckFailed(f"{shown} returned what a container left when it ended, not a "
                          f"profile: {PROFILE}; the check runs the containers itself")
    if isinstance(profile, list):
        raise CheckFailed(f"{shown} returned a list: the rules alone have no default action. "
                          f"{PROFILE}")
    expect(profile is not None, f"{shown} returned None (no `return` yet?): {PROFILE}")
    expect(isinstance(profile, (dict, str, os.PathLike)),
           f"{shown} returned {profile!r}, which is not a profile: {PROFILE}")
    try:
        return profile, seccomp.compile(profile, EVERY_CAPABILITY)
    except SpecError as e:
        raise CheckFailed(f"the profile does not compile: {format_error(e)}") from e


def _run_a_shell(profile: object, program: list[seccomp.Instruction], directory: str) -> None:
    default = seccomp.action_name(program[-1].k)
    try:
        shell = _shell(profile, directory)
    except Exception as e:  # init could not even report: the filter refused its calls
        raise CheckFailed(f"a container under this filter failed to start: {e}") from e
    if shell.stdout != "hello\n":
        ended = f"{shell.reason}: status {shell.status}"
        expect(default == "ALLOW",
               f"a shell under this filter does not run ({ended}): every call that no "
               f"rule names gets the default action, here {default}, and a program makes "
               "dozens of calls before its first line (execve, mmap, openat, ...)")
        raise CheckFailed(f"a shell under this filter does not run ({ended}, printed "
                          f"{shell.stdout!r} {shell.stderr.strip()!r}): a rule refuses a "
                          "call it needs")


def _rules_for(profile: object, name: str) -> list[dict[str, Any]]:
    loaded = seccomp.load(profile)
    return [rule for rule in loaded.get("syscalls") or ()
            if name in (rule.get("names") or [rule.get("name")])]


def _why_unshare_got_through(profile: object, program: list[seccomp.Instruction]) -> str:
    """What in the profile let unshare(CLONE_NEWUSER) succeed, as far as the profile shows."""
    rules = _rules_for(profile, "unshare")
    if not rules:
        return ("no rule of the profile names unshare, so it got the default action "
                f"{seccomp.action_name(program[-1].k)}")
    if not any(i.note == "unshare" for i in program):
        left_out = [rule.get("excludes") for rule in rules if rule.get("excludes")]
        return ("the profile's rule for unshare is left out of the filter: its excludes "
                f"{left_out[0] if left_out else ''} lists a capability the check's containers "
                "keep (they keep every one), and a rule with `excludes` applies only to a "
                "container without it. Only a rule that applies whatever the capabilities "
                "refuses it to root")
    actions = {str(rule.get("action")) for rule in rules}
    letting = actions & {"SCMP_ACT_LOG", "SCMP_ACT_ALLOW", "SCMP_ACT_TRACE"}
    if letting and not any(rule.get("args") for rule in rules):
        logs = (" (LOG only writes it to the kernel's log: \"Three answers to one call\")"
                if "SCMP_ACT_LOG" in letting else "")
        return (f"the rule for unshare gives {', '.join(sorted(letting))}, which lets the "
                f"call happen{logs}")
    if any(rule.get("args") for rule in rules):
        return ("the rule for unshare compares its arguments (`args`), and unshare's flags, "
                "CLONE_NEWUSER (clone(2) lists its value), did not match: a rule with no args "
                "refuses every unshare")
    return "a rule that comes earlier in the profile allows unshare first (the first match wins)"


@exercise(hints=UNSHARE_HINTS, answers=(seccomp_probe.profile_for,))
def check_refuse_unshare(refuse_unshare: Callable[[], object]) -> Passed:
    """`refuse_unshare()` returns a profile under which unshare fails with EPERM, and only it."""
    profile = attempt("refuse_unshare()", refuse_unshare)
    profile, program = _profile(profile, "refuse_unshare()")
    with tempfile.TemporaryDirectory(prefix="pycontain-check21-") as directory:
        _run_a_shell(profile, program, directory)
        unshare = seccomp_probe.try_call("unshare", profile, directory)
        if unshare.result.status == SIGSYS_STATUS:
            raise CheckFailed("unshare killed the process (SIGSYS, status 159): the task is to "
                              "refuse the call with an error the program can handle, EPERM, "
                              "and let it go on (\"Three answers to one call\")")
        if unshare.answer == "done":
            raise CheckFailed("unshare(CLONE_NEWUSER) succeeded: "
                              f"{_why_unshare_got_through(profile, program)}")
        expect(unshare.errno_name == "EPERM",
               f"unshare failed with {unshare.answer} rather than EPERM (Operation not "
               "permitted): the errno a refused call gets is its rule's errnoRet, the errno's "
               "number as errno(3) and Python's errno module list them")
        broken = [seccomp_probe.try_call(call, profile, directory) for call in ORDINARY]
        broken = [answer for answer in broken if answer.answer != "done"]
        forking = " (fork(2) is clone(2) underneath)" if any(a.call == "fork" for a in broken) \
            else ""
        expect(not broken, "refused more than unshare: " + "; ".join(
            f"{a.call} got {a.answer}" for a in broken) + f". Only unshare may be refused"
            f"{forking}")
    return Passed(f"unshare failed with EPERM; a shell and {', '.join(ORDINARY)} all worked, "
                  f"under a filter of {len(program)} instructions")


#: the stretch's diagnosis of each way that got through, or each call that broke
GOT_THROUGH = {
    "unshare": "unshare(CLONE_NEWUSER) itself",
    "unshare-newuser-newuts": "unshare(CLONE_NEWUSER | CLONE_NEWUTS), both namespaces at once: "
                              "a rule that compares the flags with SCMP_CMP_EQ matches one "
                              "value only, while any flags word with the CLONE_NEWUSER bit "
                              "set makes a user namespace",
    "clone-newuser": "clone(2) with CLONE_NEWUSER: unshare is not the only way in",
    "clone3-newuser": "clone3(2) with CLONE_NEWUSER: its flags are in a struct in memory, which "
                      "no filter can read, so a rule on its arguments never sees them",
}
BROKE = {
    "fork": "fork(2) is clone(2) without a namespace flag: refuse clone only when its flags "
            "hold CLONE_NEWUSER",
    "thread": "the C library starts a thread with clone3(2), and falls back to clone(2) only "
              "when clone3 answers ENOSYS (\"this kernel has no such call\"), not EPERM",
    "unshare-newuts": "unshare of a UTS namespace alone makes no user namespace: refuse "
                      "unshare only when its flags hold CLONE_NEWUSER",
}


def _got_through(way: str, profile: object) -> str:
    if way == "clone-newuser" and _rules_for(profile, "clone"):
        return ("clone(2) with CLONE_NEWUSER | SIGCHLD (the signal the parent gets when the "
                "child ends shares the flags word): your rule for clone did not match them")
    return GOT_THROUGH[way]


@exercise(hints=USER_NAMESPACE_HINTS, stretch=True)
def check_refuse_user_namespaces(refuse_user_namespaces: Callable[[], object]) -> Passed:
    """Stretch: `refuse_user_namespaces()` returns a profile under which no call makes a user
    namespace (unshare, clone, clone3) without killing the process, while fork, a thread and
    an unshare of a UTS namespace alone still work, as root with every capability."""
    shown = "refuse_user_namespaces()"
    profile = attempt(shown, refuse_user_namespaces)
    profile, program = _profile(profile, shown)
    with tempfile.TemporaryDirectory(prefix="pycontain-check21-") as directory:
        _run_a_shell(profile, program, directory)
        ways = {way: seccomp_probe.try_call(way, profile, directory)
                for way in USER_NAMESPACE_WAYS}
        killed = [way for way, answer in ways.items() if answer.result.status == SIGSYS_STATUS]
        expect(not killed, f"{', '.join(killed)} killed the process (SIGSYS, status 159): "
                           "refuse with an error the program can handle, and let it go on")
        through = [way for way, answer in ways.items() if answer.answer == "done"]
        expect(not through, "a new user namespace was made by "
               + "; and by ".join(_got_through(way, profile) for way in through))
        working = [seccomp_probe.try_call(call, profile, directory) for call in STILL_WORKING]
        broken = [answer for answer in working if answer.answer != "done"]
        expect(not broken, "; ".join(f"{a.call} got {a.answer}: {BROKE[a.call]}"
                                     for a in broken))
    refused = ", ".join(f"{way} {answer.errno_name}" for way, answer in ways.items())
    return Passed(f"no way into a user namespace got through ({refused}), and fork, a thread "
                  f"and unshare(CLONE_NEWUTS) worked, under a filter of {len(program)} "
                  "instructions")
