"""The checks of lesson 04, keep mounts private.

The exercise: write the system calls, in order, that a process makes so that the tmpfs it mounts
on `base/secret` stays invisible to the host, while `base` is a shared mount. The learner returns
them as data, `[("unshare", CloneFlag.CLONE_NEWNS), ("mount", ...), ...]` (the notebook may not
make them itself); `replay` makes them, for real, in a fresh process, and the check reads the
host's own mountinfo to see what reached it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from pycontain import helper, procfs, syscalls
from pycontain.checks import CheckFailed, Passed, attempt, expect
from pycontain.errors import PycontainError, format_error
from pycontain.namespaces import mnt
from pycontain.syscalls import MountFlag

#: the directory, inside `base`, that the exercise mounts a tmpfs on
SECRET = "secret"
#: the calls an exercise may make
CALLS = ("unshare", "mount", "umount2")
_PROPAGATION_ONLY = MountFlag.MS_REC | MountFlag.MS_SHARED | MountFlag.MS_PRIVATE \
    | MountFlag.MS_SLAVE | MountFlag.MS_UNBINDABLE


def _inside(path: object, base: str) -> bool:
    return isinstance(path, str) and (os.path.realpath(path) + "/").startswith(base + "/")


def validate_calls(calls: object, base: str) -> list[tuple[Any, ...]]:
    """The calls as a list of tuples, if each is well formed and touches only `base`, or the
    whole `/` of a new mount namespace (a propagation change); CheckFailed before any is made."""
    expect(isinstance(calls, list | tuple) and all(isinstance(c, tuple) and c for c in calls),
           f"hide_mount(base) returned {calls!r}; return a list of tuples, one per system call, "
           "such as [('unshare', CloneFlag.CLONE_NEWNS), ('mount', ...)]")
    assert isinstance(calls, list | tuple)
    unshared = False
    for call in calls:
        name, *args = call
        expect(name in CALLS, f"{call!r}: this exercise needs only {', '.join(CALLS)}")
        if name == "unshare":
            expect(len(args) == 1 and isinstance(args[0], int),
                   f"{call!r}: unshare takes one argument, the flags, such as CLONE_NEWNS")
            unshared = unshared or bool(args[0] & syscalls.CloneFlag.CLONE_NEWNS)
            continue
        expect(2 <= len(args) <= 5 if name == "mount" else 1 <= len(args) <= 2,
               f"{call!r}: mount takes (source, target, fstype, flags, data) and umount2 "
               "(target, flags), as in pycontain.syscalls")
        target = args[1] if name == "mount" else args[0]
        whole_root = (name == "mount" and target == "/" and args[0] is None and len(args) >= 4
                      and isinstance(args[3], int) and not args[3] & ~_PROPAGATION_ONLY)
        expect(not whole_root or unshared,
               f"{call!r} would change the propagation of every mount of the host; call "
               "unshare(CLONE_NEWNS) first, so that it changes the new namespace's copies only")
        expect(_inside(target, base) or whole_root,
               f"{call!r} reaches outside {base}; keep every path inside it (the check mounts "
               "nothing elsewhere)")
    return [tuple(c) for c in calls]


def replay(calls: list[list[Any]], base: str, host_pid: int) -> dict[str, Any]:
    """Make `calls` in this process (a fresh one: `helper.in_fresh_process`), then report what it
    and the host (process `host_pid`) see on base/secret."""
    base = mnt.demo_dir(base)
    for name, *args in validate_calls([tuple(c) for c in calls], base):
        getattr(syscalls, name)(*args)
    secret = os.path.join(base, SECRET)
    mine = mnt.find_mount(secret)
    return {"new_namespace": procfs.namespace("self", "mnt") != procfs.namespace(host_pid, "mnt"),
            "fstype": mine.fstype if mine else None,
            "host_sees": mnt.is_mount_point(secret, host_pid)}


def check_hide_mount(hide_mount: Callable[[str], object]) -> Passed:
    """Make a fresh shared mount `base`, get the calls from `hide_mount(base)`, make them in a
    fresh process, and require: a tmpfs on base/secret there, none on the host (neither while
    that process runs nor after), and the host's `base` still shared."""
    from pycontain.lab import Lab

    with Lab(check=False) as lab:
        base = mnt.demo_dir(lab.tempdir("check04"))
        secret = os.path.join(base, SECRET)
        os.mkdir(secret)
        helper.in_fresh_process(mnt.share, base)
        lab.defer(lambda: helper.in_fresh_process(mnt.release, base), f"unmount {base}")
        returned = attempt(f"hide_mount({base!r})", hide_mount, base)
        calls = validate_calls(returned, base)
        try:
            seen = helper.in_fresh_process(replay, calls, base, os.getpid())
        except PycontainError as e:
            raise CheckFailed(f"making your calls failed:\n{format_error(e)}") from e
        expect(seen["fstype"] == "tmpfs",
               f"after your calls the process saw no tmpfs on {secret}; end with "
               f"('mount', 'tmpfs', base + '/{SECRET}', 'tmpfs', 0)")
        expect(not seen["host_sees"] and not mnt.is_mount_point(secret),
               f"the host sees the tmpfs on {secret}: it leaked. "
               + ("Your process made it in the host's own mount namespace: start with "
                  "('unshare', CloneFlag.CLONE_NEWNS)" if not seen["new_namespace"] else
                  "When the mount was made, the new namespace's copy of base was still shared "
                  "with the host's: make it private (or a slave) after unshare and before "
                  "mounting"))
        host_base = mnt.find_mount(base)
        expect(host_base is not None and mnt.propagation(host_base) == "shared",
               f"the host's {base} is no longer shared ({mnt.describe(host_base)}): your "
               "calls changed the host's copy. Change the propagation after unshare, so that "
               "only the new namespace's copy changes")
    return Passed(f"the tmpfs on {secret} stayed in its own mount namespace; the host never saw "
                  "it, and its own mount stayed shared")
