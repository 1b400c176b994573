"""Checks for lesson 00, "Set up the lab".

They look at this machine, not at the learner's code: the first re-runs the preflight, the
others look for a directory (and, in the stretch, a mount on it) before and after a `Lab` is
closed, and read the warnings that `close()` gave on the way.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

from pycontain import lab, procfs, settings, syscalls
from pycontain.checks import CheckFailed, Passed, attempt, expect
from pycontain.checks.exercise import exercise

GREEN_HINTS = [
    "Read the `fix:` under the yellow line: it names a command to run, and the directory it "
    "builds into is the one `PYCONTAIN_ROOTFS` points at right now.",
    "The cell above says how a Python cell runs the `pycontain` command of this very "
    "interpreter: `subprocess.run` with a list whose first item is `sys.executable`, then "
    "`-m pycontain`, then the command's own words.",
]

DEFER_HINTS = [
    "A Lab undoes only what it was told about, newest first. `help(practice.defer)` shows what "
    "it takes: what to run at close(), and words that name it.",
    "`practice.defer` wants a function that close() calls later with no arguments. Calling "
    "`shutil.rmtree(notes)` in your cell removes the directory now; a `lambda` around the call "
    "keeps it for later.",
]

MOUNTED_HINTS = [
    "Two things to undo: the directory and the mount on it. A mount point cannot be removed "
    "while something is mounted on it (rmdir(2), EBUSY), so one undo must run before the other.",
    "close() runs the undos newest first, the reverse of the order you registered them. "
    "Register each undo right after you make its thing: the directory's, then the mount's "
    "(`umount` from util-linux, or `syscalls.umount2`).",
]


def _closed(practice: lab.Lab) -> list[str]:
    """Close `practice` and return what it warned about (its undos that failed)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        practice.close()
    return [str(w.message) for w in caught]


@exercise(hints=GREEN_HINTS)
def check_fully_green() -> Passed:
    """Every line of the preflight is green: the required checks and the optional ones."""
    checks = lab.preflight()
    not_green = [c for c in checks if not c.ok]
    rootfs = os.environ.get(settings.ROOTFS_VARIABLE, "")
    if [c.name for c in not_green] == ["embedded rootfs"] and rootfs and os.path.isdir(rootfs) \
            and not os.listdir(rootfs):
        raise CheckFailed(
            f"{rootfs}, where PYCONTAIN_ROOTFS points, is still empty: the command that builds "
            "the root filesystem has not run there yet. Did your cell run it, and did it finish "
            "without an error (`check=True` makes a failing command raise)?")
    expect(not not_green,
           "the preflight is not fully green yet. Fix these lines, then run your cell and this "
           "one again:\n" + "\n".join(f"  {c.name}: {c.detail}\n    fix: {c.fix}"
                                      for c in not_green))
    return Passed(f"all {len(checks)} preflight checks are green: this machine is ready for "
                  "every lesson")


@exercise(hints=DEFER_HINTS)
def check_left_nothing_behind(practice: lab.Lab, made: Path) -> Passed:
    """`made` exists until `practice.close()`, and is gone afterwards.

    When it is still there after `close()`, the check removes it itself (so that a failed attempt
    leaves nothing behind either) and says what was missing.
    """
    made = Path(made)
    expect(made.name.startswith(settings.PREFIX),
           f"{made} should be named {settings.PREFIX}…: the prefix is how `pycontain cleanup` "
           "finds leftovers after a crash")
    registered = practice.pending()
    if not made.exists():
        practice.close()
        raise CheckFailed(
            f"{made} is already gone before practice.close(): something removed it when your "
            "cell ran. The removal is close()'s job; what you hand to practice.defer is run "
            "then, not now (see hint 2). Run the cell that makes it, then the check, again")
    failed = _closed(practice)
    still_there = made.exists()
    if still_there:
        shutil.rmtree(made, ignore_errors=True)  # tidy up for the learner, then explain
    if still_there and failed:
        raise CheckFailed(f"practice.close() ran your undo, and it failed: {failed[0]} (this "
                          f"check removed {made} for you; run your cell again)")
    expect(not (still_there and not registered),
           f"{made} was still there after practice.close(): nothing was registered with "
           "practice.defer, and a lab undoes only what it was told about (this check removed "
           "it for you; run your cell again)")
    expect(not still_there,
           f"{made} was still there after practice.close(), although an undo was registered and "
           "ran without an error: does your function remove the directory when it is called? "
           "A lambda that names a function without calling it, `lambda: shutil.rmtree`, does "
           "nothing (this check removed it for you; run your cell again)")
    expect(not any(str(made) in item for item in lab.leftovers()),
           f"{made} is still listed by leftovers()")
    return Passed(f"practice.close() removed {made}: nothing of it is left")


def _mounted(path: Path) -> bool:
    return any(m.mount_point == str(path) for m in procfs.mountinfo())


def _sweep(path: Path) -> None:
    """Remove the stretch's mounts on `path` and the directory, whatever state it is in."""
    while _mounted(path):
        syscalls.umount2(str(path), syscalls.UmountFlag.MNT_DETACH)
    shutil.rmtree(path, ignore_errors=True)


@exercise(hints=MOUNTED_HINTS, stretch=True)
def check_mounted_and_undone(make_mounted: Callable[[lab.Lab, Path], object]) -> Passed:
    """Stretch: `make_mounted(practice, path)` makes the directory `path`, mounts a tmpfs on
    it and registers both undos with `practice`; close() must leave neither."""
    path = Path(f"/tmp/{settings.PREFIX}stretch{lab.OWNER}{os.getpid()}")
    _sweep(path)
    practice = lab.Lab(check=False)
    try:
        attempt(f"make_mounted(practice, {str(path)!r})", make_mounted, practice, path)
        expect(path.is_dir(), f"{path} does not exist when make_mounted returns: make it "
                              "(Path.mkdir) before you mount on it")
        fstypes = [m.fstype for m in procfs.mountinfo() if m.mount_point == str(path)]
        expect(fstypes == ["tmpfs"], f"the mounts on {path} are {fstypes or 'none'}: mount "
                                     "one tmpfs on it (mount -t tmpfs, see mount(8))")
        pending = practice.pending()
        expect(len(pending) >= 2,
               f"practice holds {len(pending)} undo(s), {pending}: register one for the mount "
               "and one for the directory")
        failed = _closed(practice)
        mounted, there = _mounted(path), path.exists()
    except BaseException:
        practice.close()
        _sweep(path)
        raise
    _sweep(path)
    expect(not mounted, f"the tmpfs was still mounted on {path} after close(): the undo that "
                        "unmounts it did not run or failed" + (f" ({failed[0]})" if failed
                                                              else "") + "; the check removed it")
    expect(not there,
           f"{path} was still there after close(): "
           + (f"{failed[0]}. " if failed else "")
           + "close() runs the undos newest first; if the directory's removal ran while the "
             "tmpfs was still mounted, rmdir(2) refused with EBUSY and the directory stayed "
             "(the check removed it)")
    return Passed(f"close() unmounted the tmpfs, then removed {path}: newest first, the mount "
                  "before the directory it sits on")
