"""The checks of lesson 21, filter system calls.

`check_refuse_unshare` calls the learner's `refuse_unshare()`, which returns a seccomp profile
in Docker's format, and runs real containers under it (as root, with every capability, so that
only the filter can refuse anything): a shell must run, unshare(2) of a user namespace must fail
with EPERM, and the ordinary calls of `ORDINARY` must all succeed. A profile the compiler
refuses fails with the compiler's own message (its line and column, or the nearest name).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

from pycontain import runtime
from pycontain.checks import CheckFailed, Passed, attempt, expect
from pycontain.errors import SpecError, format_error
from pycontain.observe import seccomp_probe
from pycontain.security import seccomp

#: the calls that must still work, as `seccomp_probe` makes them
ORDINARY = ("mkdir", "getpid", "write", "fork", "uname", "sync")
SIGSYS_STATUS = 128 + 31


def _shell(profile: object, directory: str) -> runtime.Result:
    path = os.path.join(directory, "note")
    return runtime.run(["sh", "-c", f"echo hello > {path} && cat {path}"], seccomp=profile,
                       timeout_s=30)


def check_refuse_unshare(refuse_unshare: Callable[[], object]) -> Passed:
    """`refuse_unshare()` returns a profile under which unshare fails with EPERM, and only it."""
    profile = attempt("refuse_unshare()", refuse_unshare)
    expect(isinstance(profile, (dict, str, os.PathLike)),
           f"refuse_unshare() returned {profile!r}; return a profile: a dict in Docker's "
           "seccomp format, with a defaultAction and a list of syscalls rules")
    try:
        program = seccomp.compile(profile)
    except SpecError as e:
        raise CheckFailed(f"the profile does not compile: {format_error(e)}") from e
    default = seccomp.action_name(program[-1].k)
    with tempfile.TemporaryDirectory(prefix="pycontain-check21-") as directory:
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
        unshare = seccomp_probe.try_call("unshare", profile, directory)
        if unshare.result.status == SIGSYS_STATUS:
            raise CheckFailed("unshare killed the process (SIGSYS, status 159): the task is to "
                              "refuse the call with an error the program can handle, EPERM, "
                              "and let it go on")
        expect(unshare.answer != "done",
               "unshare(CLONE_NEWUSER) succeeded: no rule refused it. A user namespace needs "
               "no capability, so only the filter can refuse it; the check's containers keep "
               "every capability, so a rule that `excludes` one of them is left out")
        expect(unshare.errno_name == "EPERM",
               f"unshare failed with {unshare.answer} rather than EPERM (Operation not "
               "permitted): the errno a refused call gets is its rule's errnoRet")
        broken = [seccomp_probe.try_call(call, profile, directory) for call in ORDINARY]
        broken = [answer for answer in broken if answer.answer != "done"]
        expect(not broken, "refused more than unshare: " + "; ".join(
            f"{a.call} got {a.answer}" for a in broken) + ". Only unshare may be refused")
    return Passed(f"unshare failed with EPERM; a shell and {', '.join(ORDINARY)} all worked, "
                  f"under a filter of {len(program)} instructions")
