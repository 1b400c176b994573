"""The checks of lesson 09, be root without being root.

Each check gives the learner's function a command that reports the ids it runs with and the
kernel's uid_map, and looks at files from both sides: a file's owner is the kernel's answer to
"who was root in there?". It recognises the wrong turns seen when the exercise was tried: no
user namespace (the host's identity map, the host's real root), pycontain's default map instead
of the learner's, a line written OUTSIDE INSIDE instead of INSIDE OUTSIDE, a second id left
unmapped (65534, "nobody"), ranges that overlap, a map that hands the container the host's
root. Whatever the function started is stopped when it raises (`checks.attempt`), and the
check's directory is removed whatever happens.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable

from pycontain.checks import RETURN_RESULT, CheckFailed, Passed, attempt, expect
from pycontain.checks.exercise import exercise
from pycontain.errors import SpecError, SyscallError
from pycontain.namespaces import user
from pycontain.runtime import Result

#: where the check's files go: a fresh directory each time, removed when the check ends
PREFIX = "/tmp/pycontain-check09-"
#: the uid_map of the host's own user namespace: every id is itself
IDENTITY = ["0", "0", "4294967295"]

MAP_HINTS = (
    "Reread \"Root inside, uid 100000 outside\": which file says how inside ids become outside "
    "ids, and in which order does a line give its three numbers? help(pycontain.run) names the "
    "parameter that takes those lines.",
    "One line maps a *range*. Root's line must not swallow `keep`: an id may be mapped once, "
    "inside and outside (the out-of-range failure above lists what pycontain refuses).",
    "Two lines: one for root, one for `keep`, mapped to itself. Count how many ids each needs.",
)
OWNER_HINTS = (
    "\"What the mapped root can and cannot do\": the permission check compares kuids. Which "
    "kuid does the file belong to, and which kuid is root inside?",
    "os.stat(path) tells you who owns the file on the host; choose the map so that root "
    "inside *is* that uid outside, and map nothing else (above all not the host's uid 0).",
)


def _fresh_dir() -> str:
    shared = f"{PREFIX}{os.urandom(4).hex()}"
    os.mkdir(shared)
    os.chmod(shared, 0o777)
    return shared


def _diagnose_map(lines: list[list[str]], outside: int) -> None:
    """The wrong turns that show in the kernel's uid_map, before anything else is judged."""
    expect(lines != [IDENTITY],
           "the kernel's uid_map reads '0 0 4294967295', the host's own: the container had no "
           "user namespace of its own, so its root was the host's real root. Ask for 'user' "
           "among the namespaces")
    expect(lines != [[str(n) for n in user.DEFAULT_MAP[0]]] or outside == user.DEFAULT_MAP[0][1],
           f"the kernel's uid_map reads {' '.join(map(str, user.DEFAULT_MAP[0]))!r}: "
           "pycontain's default map, not yours. Pass your own lines (the section \"Deliberate "
           "failure: an out-of-range map\" shows the parameter)")


def _attempt_map(shown: str, func: Callable[..., object], *args: object) -> Result:
    try:
        result = attempt(shown, func, *args, returns=Result, instead=RETURN_RESULT)
    except CheckFailed as e:
        if isinstance(e.__cause__, SpecError) and "overlap" in str(e.__cause__):
            raise CheckFailed(f"{e}. pycontain refused the map before anything existed: "
                              "does root's line's COUNT reach the other id?") from e
        if (isinstance(e.__cause__, SyscallError) and e.__cause__.errno_name == "EINVAL"
                and "setres" in str(e.__cause__)):
            raise CheckFailed(f"{e}. pycontain's init could not become uid and gid 0 inside: "
                              "no line of your map has 0 as its *inside* id. A line reads "
                              "INSIDE OUTSIDE COUNT (user_namespaces(7))") from e
        raise
    assert isinstance(result, Result)
    return result


def _parts(result: Result, argv: list[str], count: int) -> list[list[str]]:
    """The container's output, cut at its `==` lines into `count` parts of lines."""
    parts = [p.strip("\n").splitlines() for p in f"\n{result.stdout}".split("\n==\n")]
    if len(parts) < 2 and result.status != 0:
        raise CheckFailed(f"the container should run {argv!r}, but it {result.reason} before "
                          f"it printed anything: {result.stderr.strip()!r}. Does your map "
                          "map inside uid 0, the root pycontain's init becomes?")
    expect(len(parts) == count,
           f"the container should run {argv!r}, but it {result.reason} and printed "
           f"{result.stdout!r} {result.stderr!r}: pass argv on unchanged, and keep the "
           "host's filesystem (no rootfs)")
    return parts


@exercise(hints=MAP_HINTS, answers=[user.validate_map, user.write_maps])
def check_root_maps_to(run_as_mapped_root: Callable[[list[str], int, int], object]) -> Passed:
    """Call `run_as_mapped_root(argv, outside, keep)` with a random outside uid and a random
    `keep` uid; verify that the command ran as root inside, that the kernel's map says root is
    `outside`, that the file it created belongs to `outside` on the host, and that a file of
    the host's uid `keep` belongs to `keep` inside too."""
    outside = random.randrange(100, 4000) * 1000
    keep = random.randrange(1000, 3000)
    shared = _fresh_dir()
    try:
        theirs = f"{shared}/of-{keep}"
        open(theirs, "w").close()
        os.chown(theirs, keep, keep)
        made = f"{shared}/made-inside"
        argv = ["sh", "-c", f"id -u; echo ==; cat /proc/self/uid_map; echo ==; touch {made}; "
                            f"stat -c %u {theirs}"]
        result = _attempt_map(f"run_as_mapped_root(argv, {outside}, {keep})",
                              run_as_mapped_root, list(argv), outside, keep)
        ids, uid_map, seen = _parts(result, argv, 3)
        mapped = [line.split() for line in uid_map]
        _diagnose_map(mapped, outside)
        expect(ids == ["0"], f"inside, the command ran as uid {ids}, not 0")
        expect(any(line[:2] == ["0", str(outside)] for line in mapped),
               f"the kernel's uid_map reads {[' '.join(m) for m in mapped]}: no line maps "
               f"inside uid 0 to {outside}")
        owner = os.stat(made).st_uid if os.path.exists(made) else None
        expect(owner == outside, f"the file the container made belongs to uid {owner} on the "
               f"host, not {outside}: {result.stderr.strip()!r}")
        shown = seen[0] if seen else "?"
        expect(shown == str(keep),
               f"inside, the host's file of uid {keep} showed as owned by {shown}"
               + (": 65534 is \"nobody\", an id that no line of the map covers. Map "
                  f"{keep} too" if shown == str(user.OVERFLOW_ID) else
                  f": map {keep} inside to {keep} outside, so that it is the same user "
                  "on both sides"))
    finally:
        shutil.rmtree(shared)
    return Passed(f"root inside was uid {outside} outside: the kernel's uid_map said so, the "
                  f"file it made belongs to {outside} on the host, and uid {keep} was {keep} "
                  "on both sides")


@exercise(hints=OWNER_HINTS, stretch=True)  # the answer is one line of public API
def check_reads_as_owner(read_protected: Callable[[list[str], str], object]) -> Passed:
    """Stretch: call `read_protected(argv, path)` on a file of mode 0600 owned by a random uid;
    verify that root inside read it, in a user namespace whose map leaves the host's uid 0
    unmapped."""
    owner = random.randrange(200, 900) * 1000 + random.randrange(1, 999)
    shared = _fresh_dir()
    try:
        os.chmod(shared, 0o755)
        secret = f"{shared}/secret"
        words = f"only uid {owner} may read this {os.urandom(3).hex()}"
        with open(secret, "w") as f:
            f.write(words + "\n")
        os.chown(secret, owner, owner)
        os.chmod(secret, 0o600)
        argv = ["sh", "-c", f"id -u; echo ==; cat /proc/self/uid_map; echo ==; cat {secret}"]
        result = _attempt_map(f"read_protected(argv, {secret!r})", read_protected,
                              list(argv), secret)
        ids, uid_map, read = _parts(result, argv, 3)
        mapped = [line.split() for line in uid_map]
        expect(mapped != [IDENTITY],
               "the container had no user namespace of its own (uid_map '0 0 4294967295'): its "
               "root was the host's real root, which reads every file. Read it as a root that "
               "owns nothing on the host")
        expect(ids == ["0"], f"inside, the command ran as uid {ids}, not 0")
        gives_root = [m for m in mapped
                      if len(m) == 3 and int(m[1]) <= 0 < int(m[1]) + int(m[2])]
        expect(not gives_root,
               f"the uid_map line {' '.join(gives_root[0]) if gives_root else ''!r} maps the "
               "host's uid 0 into the container: whoever holds it is the host's root. Map only "
               "the id the file needs")
        root = [m[1] for m in mapped if m[0] == "0"]
        expect(read == [words],
               f"root inside could not read the file ({result.stderr.strip()!r}): its kuid is "
               f"{root[0] if root else 'unmapped'}, the file's is {owner} on the host, and "
               "capabilities inside a user namespace do not count on the host's files")
    finally:
        shutil.rmtree(shared)
    return Passed(f"root inside was uid {owner} outside, the file's owner: it read a file of "
                  "mode 0600 that no other non-root user could, with the host's root unmapped")
