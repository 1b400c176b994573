"""The checks of lesson 04, keep mounts private.

The exercise: write the system calls, in order, that a process makes so that the tmpfs it mounts
on `base/secret` stays invisible to the host, while `base` is a shared mount. The learner returns
them as data, `[("unshare", flags), ("mount", ...), ...]` (the notebook may not make them
itself); `replay` makes them, for real, in a fresh process that stays alive while the check reads
the host's own mountinfo to see what reached it. The stretch, runc's default, also wants a mount
the host makes afterwards to reach that process.

Safety first: the check makes the calls as root on the host, so `validate_calls` refuses, before
any is made, every call that could touch anything but the check's own temporary `base`: a
target or a bind/move source outside it, a filesystem other than tmpfs, a remount of a whole
filesystem (MS_REMOUNT without MS_BIND changes the superblock, which the host shares: a
read-only remount of `base` would make the host's /tmp read-only), and a propagation change of
all of `/` before the process has a mount namespace of its own.

The messages say what reached whom and which section explains it, never the calls to write: the
library's calls are `mnt.enter_box`, shown once the check passes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from pycontain import helper, procfs, syscalls
from pycontain.checks import CheckFailed, Passed, attempt, expect, kept
from pycontain.checks.exercise import exercise
from pycontain.errors import PycontainError, format_error
from pycontain.namespaces import mnt
from pycontain.syscalls import CloneFlag, MountFlag

#: the directory, inside `base`, that the exercise mounts a tmpfs on
SECRET = "secret"
#: the directory, inside `base`, that the stretch's host mounts a tmpfs on afterwards
LATER = "later"
#: the calls an exercise may make
CALLS = ("unshare", "mount", "umount2")
#: the only filesystem an exercise may mount
FSTYPES = ("tmpfs",)
_PROPAGATION = MountFlag.MS_SHARED | MountFlag.MS_PRIVATE | MountFlag.MS_SLAVE \
    | MountFlag.MS_UNBINDABLE
_PROPAGATION_ONLY = MountFlag.MS_REC | _PROPAGATION
_PATH_SOURCE = MountFlag.MS_BIND | MountFlag.MS_MOVE


def _inside(path: object, base: str) -> bool:
    return isinstance(path, str) and (os.path.realpath(path) + "/").startswith(base + "/")


def _flags(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_propagation(call: tuple[Any, ...]) -> bool:
    """A mount(2) call that changes propagation only (flags of propagation only: the kernel
    ignores its source and filesystem type)."""
    return (call[0] == "mount" and len(call) >= 5 and _flags(call[4])
            and bool(call[4] & _PROPAGATION) and not call[4] & ~int(_PROPAGATION_ONLY))


def _check_mount(call: tuple[Any, ...], base: str, unshared: bool) -> None:
    """Refuse a mount(2) call that could reach outside `base`, before any call is made."""
    source, target, fstype, flags, data = (*call[1:], None, None, None)[:5]
    expect(_flags(flags), f"{call!r}: the fourth argument of mount, the flags, is a number made "
                          "of MountFlag values (0 for none)")
    expect(data is None or isinstance(data, str),
           f"{call!r}: the fifth argument of mount, its data, is a string such as 'size=1m' or "
           "None")
    whole_root = target == "/" and _is_propagation(call)
    expect(not whole_root or unshared,
           f"{call!r} would change the propagation of every mount of the host: a change to the "
           "whole of / is allowed only once the process has a mount namespace of its own (the "
           "check refused to make any of your calls)")
    expect(_inside(target, base) or whole_root,
           f"{call!r} reaches outside {base}; keep every path inside it (the check mounts "
           "nothing elsewhere, and refused to make any of your calls)")
    # in the order the kernel's do_mount() reads the flags: a remount, a bind, a propagation
    # change, a move, else a new mount
    if flags & MountFlag.MS_REMOUNT:
        expect(bool(flags & MountFlag.MS_BIND),
               f"{call!r}: MS_REMOUNT without MS_BIND changes the options of the whole "
               "filesystem under the mount, which the host shares (here, its /tmp): the check "
               "refused to make any of your calls. This exercise needs no remount")
    elif flags & MountFlag.MS_BIND or (flags & MountFlag.MS_MOVE and not flags & _PROPAGATION):
        expect(_inside(source, base),
               f"{call!r}: a bind or a move takes a path as source, and {source!r} is outside "
               f"{base}; the check refused to make any of your calls")
    elif not flags & _PROPAGATION:
        expect(fstype in FSTYPES,
               f"{call!r}: this exercise mounts only a tmpfs (filesystem type 'tmpfs', the "
               "third argument), never the host's disks or other filesystems; the check refused "
               "to make any of your calls")


def validate_calls(calls: object, base: str, shown: str = "hide_mount") -> list[tuple[Any, ...]]:
    """The calls as a list of tuples, if each is well formed and touches only `base`, or the
    whole `/` of a new mount namespace (a propagation change); CheckFailed before any is made.
    `shown` names the learner's function in the message."""
    expect(isinstance(calls, list | tuple) and all(isinstance(c, tuple) and c for c in calls),
           f"{shown}(base) returned {calls!r}; return a list of tuples, one per system call, "
           "each its name then its arguments, in the order of pycontain.syscalls")
    assert isinstance(calls, list | tuple)
    unshared = False
    for call in calls:
        name, *args = call
        expect(name in CALLS, f"{call!r}: this exercise needs only {', '.join(CALLS)}")
        if name == "unshare":
            expect(len(args) == 1 and _flags(args[0]),
                   f"{call!r}: unshare takes one argument, the flags, made of CloneFlag values")
            unshared = unshared or bool(args[0] & CloneFlag.CLONE_NEWNS)
        elif name == "mount":
            expect(4 <= len(args) <= 5,
                   f"{call!r}: mount takes (source, target, fstype, flags, data), data "
                   "optional, as in pycontain.syscalls")
            _check_mount(tuple(call), base, unshared)
        else:
            expect(1 <= len(args) <= 2 and (len(args) == 1 or _flags(args[1])),
                   f"{call!r}: umount2 takes (target, flags), as in pycontain.syscalls")
            expect(_inside(args[0], base),
                   f"{call!r} reaches outside {base}; keep every path inside it (the check "
                   "unmounts nothing elsewhere, and refused to make any of your calls)")
    return [tuple(c) for c in calls]


def replay(calls: list[list[Any]], base: str, host_pid: int) -> dict[str, Any]:
    """Make `calls` in this process (a fresh one: `helper.start`, which keeps it alive), then
    report what it and the host (process `host_pid`) see on base/secret."""
    base = mnt.demo_dir(base)
    for name, *args in validate_calls([tuple(c) for c in calls], base):
        getattr(syscalls, name)(*args)
    mine = mnt.find_mount(os.path.join(base, SECRET))
    return {"new_namespace": procfs.namespace("self", "mnt") != procfs.namespace(host_pid, "mnt"),
            "fstype": mine.fstype if mine else None}


def _shape(calls: list[tuple[Any, ...]], base: str) -> dict[str, Any]:
    """Where in the calls the unshare, the propagation changes and the tmpfs mount are."""
    secret = os.path.join(base, SECRET)
    unshares = [i for i, c in enumerate(calls) if c[0] == "unshare"]
    newns = [i for i in unshares if calls[i][1] & CloneFlag.CLONE_NEWNS]
    changes = [(i, c[2], c[4]) for i, c in enumerate(calls) if _is_propagation(c)
               and (c[2] == "/" or os.path.realpath(c[2]) == base)]
    mounted = [i for i, c in enumerate(calls) if c[0] == "mount" and len(c) >= 4
               and c[3] in FSTYPES and _inside(c[2], base) and os.path.realpath(c[2]) == secret]
    return {"unshares": unshares, "newns": newns[0] if newns else None, "changes": changes,
            "mounted": mounted[0] if mounted else None}


def _why_it_leaked(calls: list[tuple[Any, ...]], base: str, seen: dict[str, Any]) -> str:
    shape = _shape(calls, base)
    if not seen["new_namespace"]:
        if shape["unshares"]:
            return ("your process called unshare(2) but stayed in the host's mount namespace: "
                    "which CLONE_NEW* flag is the mount namespace's? (unshare(2))")
        return ("your process never left the host's mount namespace, so its mount was the "
                "host's own (the section \"Watch a mount leak out of a new mount namespace\")")
    before_mount = [c for c in shape["changes"] if shape["mounted"] is None
                    or c[0] < shape["mounted"]]
    closing = [c for c in before_mount if c[2] & (MountFlag.MS_PRIVATE | MountFlag.MS_SLAVE
                                                  | MountFlag.MS_UNBINDABLE)]
    if shape["changes"] and not before_mount:
        return ("you changed the propagation only after the tmpfs was mounted: by then it had "
                "propagated to the host already, and a change afterwards does not call it back")
    if any(c[1] == "/" and not c[2] & MountFlag.MS_REC for c in closing):
        return ("your change to / applied to the mount at / alone, not to the mounts below it "
                "such as base: see MS_REC in mount(2)")
    if not closing:
        return ("the new namespace's copy of base was still in the host's peer group when the "
                "tmpfs was mounted: a copy keeps its original's propagation (the section \"Watch "
                "a mount leak out of a new mount namespace\"). Which propagation type sends "
                "nothing?")
    return ("the new namespace's copy of base still sent its mounts to the host; read the "
            "propagation of base in /proc/<pid>/mountinfo after each of your calls")


def _judge(calls: list[tuple[Any, ...]], base: str, seen: dict[str, Any], host_saw: bool,
           left_on_host: bool) -> None:
    """The failures both exercises share."""
    secret = os.path.join(base, SECRET)
    expect(seen["fstype"] == "tmpfs",
           f"after your calls the process saw no tmpfs on {secret}"
           + (f" (it saw {seen['fstype']})" if seen["fstype"] else "")
           + ": which of your calls mounts one there, with which filesystem type? (mount(2))")
    expect(not (host_saw or left_on_host),
           f"the host sees the tmpfs on {secret}: it leaked. {_why_it_leaked(calls, base, seen)}")
    host_base = mnt.find_mount(base)
    expect(host_base is not None and mnt.propagation(host_base) == "shared",
           f"the host's {base} is no longer shared ({mnt.describe(host_base)}): one of your "
           "calls changed the host's own copy. A propagation change made before the process "
           "has a namespace of its own changes the host's")


def _prepare(lab: Any, hide_mount: Callable[[str], object], shown: str
             ) -> tuple[str, list[tuple[Any, ...]]]:
    """A fresh shared mount `base` in `lab`, and the learner's calls for it, validated; fails
    when the function made mounts itself (in this notebook: the host's namespace)."""
    base = mnt.demo_dir(lab.tempdir("check04"))
    for name in (SECRET, LATER):
        os.mkdir(os.path.join(base, name))
    helper.in_fresh_process(mnt.share, base)
    lab.defer(lambda: helper.in_fresh_process(mnt.release, base), f"unmount {base}")
    with kept.thread_namespaces_kept("mnt") as moved:
        returned = attempt(f"{shown}({base!r})", hide_mount, base)
    expect(not moved, f"{moved[0] if moved else ''}. Your function made a call itself, in "
                      "this notebook, instead of returning it as data (see \"Why the notebook "
                      "never unshares itself\", lesson 02)")
    expect(not mnt.is_mount_point(os.path.join(base, SECRET)),
           f"{base}/{SECRET} was a mount point before the check made any of your calls: your "
           "function mounted it itself, in this notebook's namespace, the host's. Return the "
           "calls as data instead (the check unmounted it)")
    return base, validate_calls(returned, base, shown)


def _run(lab: Any, hide_mount: Callable[[str], object], shown: str, *, later: bool = False
         ) -> tuple[str, list[tuple[Any, ...]], dict[str, Any]]:
    """Make the calls in a fresh process that stays alive, look from the host while it runs
    (with `later`, the host mounts a tmpfs on base/later first), and after it ended."""
    base, calls = _prepare(lab, hide_mount, shown)
    secret = os.path.join(base, SECRET)
    try:
        box, seen = helper.start(replay, calls, base, os.getpid())
    except PycontainError as e:
        raise CheckFailed(f"making your calls failed:\n{format_error(e)}") from e
    try:
        host_saw = mnt.is_mount_point(secret)
        if later:
            helper.in_fresh_process(mnt.mount_tmpfs, os.path.join(base, LATER))
            seen["later"] = mnt.is_mount_point(os.path.join(base, LATER), box.pid)
    finally:
        helper.stop(box)
    _judge(calls, base, seen, host_saw, mnt.is_mount_point(secret))
    return base, calls, seen


HIDE_MOUNT_HINTS = (
    "Three questions, in this order: how does the process get mounts of its own, why does a "
    "mount still travel (the section \"Watch a mount leak out of a new mount namespace\"), and "
    "what stops it (\"Make it private first\")?",
    "unshare(2) lists the CLONE_NEW* flags; mount(2), \"Changing the propagation type of an "
    "existing mount\", says which arguments a propagation change takes (no source, no "
    "filesystem type). Which mount's propagation matters: the one the tmpfs goes below.",
    "Order decides: a propagation change made before the unshare changes the host's copy, and "
    "one made after the tmpfs is mounted comes too late. The tmpfs itself is a mount(2) with "
    "'tmpfs' as both source and filesystem type, and flags 0.",
)


@exercise(hints=HIDE_MOUNT_HINTS, answers=(mnt.enter_box,))
def check_hide_mount(hide_mount: Callable[[str], object]) -> Passed:
    """Make a fresh shared mount `base`, get the calls from `hide_mount(base)`, make them in a
    fresh process, and require: a tmpfs on base/secret there, none on the host (neither while
    that process runs nor after), and the host's `base` still shared."""
    from pycontain.lab import Lab

    with Lab(check=False) as lab:
        base, _, _ = _run(lab, hide_mount, "hide_mount")
    return Passed(f"the tmpfs on {base}/{SECRET} stayed in its own mount namespace; the host "
                  "never saw it, and its own mount stayed shared")


RUNC_HINTS = (
    "Reread \"A slave receives, but does not send\": which propagation type keeps the host's "
    "later mounts coming while sending nothing back?",
    "runc applies it to the whole tree, not to base alone: mount(2) on MS_REC, and the "
    "section \"Make it private first\" for where such a change may be made.",
)


@exercise(hints=RUNC_HINTS, answers=(mnt.enter_box,), stretch=True)
def check_runc_default(runc_default: Callable[[str], object]) -> Passed:
    """Stretch: as `check_hide_mount`, and while the process still runs the host mounts a tmpfs
    on base/later, which must reach the process (runc's `rslave` root)."""
    from pycontain.lab import Lab

    with Lab(check=False) as lab:
        base, calls, seen = _run(lab, runc_default, "runc_default", later=True)
    named = [c for c in _shape(calls, base)["changes"] if c[1] != "/"]
    expect(not named,
           f"your calls changed the propagation of {base} by name; a runtime cannot know which "
           "of the host's mounts are shared, so runc changes the whole tree at once, from /")
    expect(seen["later"],
           f"your tmpfs stayed hidden, but the tmpfs the host mounted afterwards on "
           f"{base}/{LATER} never reached your process: its copy of base cuts both ways. A "
           "container should still receive the disks and volumes the host mounts later")
    return Passed(f"your mount stayed in its namespace, and the host's later mount on "
                  f"{base}/{LATER} still reached it: one way only, as runc's rslave root")
