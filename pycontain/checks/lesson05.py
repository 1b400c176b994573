"""The checks of lesson 05, swap the root filesystem.

Both exercises are functions of `root` whose system calls, made through `pycontain.syscalls`,
are recorded (`rootfs.record`: nothing happens in the notebook) and replayed by a fresh
container as its root switch. The check then asks the kernel from inside: what mountinfo lists,
whether the chroot escape (`audit.escape`) reads a marker on the host, and, for the stretch,
whether the root is read-only while /tmp is not.

The messages diagnose: a call made with `os` instead of `syscalls` (not recorded, and it
changed this notebook's own working directory), a chroot, an old root left mounted. They point
to the man page and the section, never spell out the calls: those are `rootfs.pivot` and
`rootfs.enter`, which the success output shows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable

from pycontain import runtime
from pycontain.audit import escape
from pycontain.checks import CheckFailed, Passed, expect
from pycontain.checks.exercise import exercise
from pycontain.errors import PycontainError, SpecError, format_error
from pycontain.fs import rootfs
from pycontain.settings import PREFIX

PIVOT_HINTS = (
    "chroot(2) changes where one process starts looking up '/', while the host's root stays in "
    "the mount namespace above it. Which call moves the root *mount* of the whole namespace? "
    "Its man page, pivot_root(2), has an example that needs no put_old directory.",
    "After that call the old root is still mounted: on top of the new one. The section \"Switch "
    "the root with pivot_root, step by step\" says which call takes a mount out of the namespace "
    "even while it is in use; umount2(2) lists its flags.",
    "Four calls in all, each through `syscalls`: first stand where the new root is, and last "
    "move the working directory to the new '/', so that nothing is left outside it. "
    "syscalls.chdir, not os.chdir: only `syscalls` calls are recorded and replayed.",
)
READ_ONLY_HINTS = (
    "Start from your pivot_into. One more mount(2) call makes the rootfs read-only; which "
    "mount is it, and where is it before and after the pivot?",
    "mount(2), \"Remounting an existing mount\", and the section \"Make the root read-only\": "
    "which flags change one flag of a mount that already exists, and of that mount only?",
)


def _recorded(func: Callable[[str], object], name: str, root: str) -> list[list[object]]:
    """The calls `func(root)` makes through `syscalls`, with what it did to this process."""
    cwd, top = os.getcwd(), os.stat("/")
    try:
        steps = rootfs.record(func, root)
    except SpecError as e:
        raise CheckFailed(f"{name} may only call {', '.join(rootfs.SWITCH_CALLS)}: "
                          f"{format_error(e)}") from e
    except Exception as e:
        raise CheckFailed(f"{name}({root!r}) raised {type(e).__name__}: {e}") from e
    finally:
        moved = os.getcwd() != cwd
        if moved:
            os.chdir(cwd)  # put the notebook back where it was
    now = os.stat("/")
    expect((now.st_dev, now.st_ino) == (top.st_dev, top.st_ino),
           f"{name}({root!r}) changed the root directory of this notebook's own process: a call "
           "made with `os` (os.chroot?) ran here, in the kernel of this notebook, not in the "
           "container, and was not recorded. Make every call through `syscalls`, then restart "
           "the notebook's kernel (Kernel → Restart), since its '/' is the rootfs now")
    expect(not moved,
           f"{name}({root!r}) changed the working directory of this notebook's own process to "
           f"{root!r} (the check put it back): a call made with `os` (os.chdir?) ran here, in "
           "the notebook, and was not recorded, so the container never made it. Only calls "
           "through `syscalls` (syscalls.chdir, …) are recorded and replayed")
    expect(bool(steps), f"{name}({root!r}) made no system calls through `syscalls`: the check "
                        "records only `syscalls.<name>(...)` calls, and the container replays them")
    return steps


def _prepared() -> str:
    try:
        return rootfs.require_tools(rootfs.ensure(), *escape.TOOLS)  # what the escape runs
    except SpecError as e:
        raise CheckFailed(f"the check cannot run the escape yet: {format_error(e)}") from e


@exercise(hints=PIVOT_HINTS, answers=(rootfs.pivot,))
def check_pivot_into(pivot_into: Callable[[str], object]) -> Passed:
    """Record the calls `pivot_into(root)` makes, replay them in a fresh container as its root
    switch, and require that the container sees only its rootfs, that no mount of the old root
    is left in its mount namespace, and that the chroot escape cannot read a host marker."""
    root = _prepared()
    steps = _recorded(pivot_into, "pivot_into", root)
    mounts, tried = _replay_against_a_marker(root, steps)
    return Passed(f"the container's root is {root}; {len(mounts)} mounts, none of the old "
                  "root; the escape climbed to / and stayed inside")


def _replay_against_a_marker(root: str, steps: list[list[object]]
                             ) -> tuple[list[object], escape.Attempt]:
    """`_replay` with a host marker of the check's own, removed afterwards."""
    directory = tempfile.mkdtemp(prefix=f"{PREFIX}check05-")
    try:
        return _replay(root, steps, escape.place_marker(directory))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _replay(root: str, steps: list[list[object]], marker: escape.Marker
            ) -> tuple[list[object], escape.Attempt]:
    """Replay `steps` in containers: their mounts and the escape's attempt, judged."""
    try:
        mounts = escape.mounts_inside(root, root_switch=steps)
        tried = escape.attempt(marker, root, root_switch=steps)
    except PycontainError as e:
        raise CheckFailed(f"the container could not replay your calls {steps}:\n"
                          f"{format_error(e)}") from e
    chroot = any(name == "chroot" for name, _ in steps)
    left = escape.foreign_mounts(mounts)
    if chroot and tried.escaped(marker):
        raise CheckFailed(
            f"the escape climbed out and read the host's marker {marker.path!r}: chroot(2) "
            "changes only where this process starts '/', and the host's root is still in the "
            "mount namespace above it (the section \"Escape from the chroot\"). Which call "
            "changes the root of the whole mount namespace? pivot_root(2)")
    expect(not left, f"{len(left)} mounts of the old root are still in the container's mount "
                     f"namespace (such as {left[0] if left else ''!r}): pivot_root(2) did not "
                     "remove the old root, it moved it. Where to, and which call takes a mount "
                     "out of the namespace while it is still in use? umount2(2)")
    expect(not tried.escaped(marker),
           f"the escape climbed out and read the host's marker {marker.path!r}, although no "
           "mount of the old root is listed: where is the working directory of the process "
           "after your last call? path_resolution(7) on '..'")
    expect(tried.reached == tuple(sorted(os.listdir(root))),
           f"the escape ended in a directory holding {list(tried.reached)}, not the rootfs "
           f"{root!r}: the container's / should be the rootfs")
    return list(mounts), tried


@exercise(hints=READ_ONLY_HINTS, answers=(rootfs.enter,), stretch=True)
def check_read_only_pivot(read_only_pivot: Callable[[str], object]) -> Passed:
    """Stretch: as `check_pivot_into`, and the new root must be read-only (a write to /etc
    fails with EROFS) while /tmp stays writable."""
    root = _prepared()
    steps = _recorded(read_only_pivot, "read_only_pivot", root)
    mounts, _ = _replay_against_a_marker(root, steps)
    try:
        wrote = runtime.run(["sh", "-c", "touch /tmp/ok && echo tmp ok; touch /etc/x && echo etc"],
                            rootfs=root, root_switch=steps, timeout_s=20)
    except PycontainError as e:
        raise CheckFailed(f"the container could not replay your calls {steps}:\n"
                          f"{format_error(e)}") from e
    finally:
        if os.path.exists(f"{root}/etc/x"):
            os.unlink(f"{root}/etc/x")  # the shared image stays as it was
    said = wrote.stdout.split("\n")
    expect("etc" not in said,
           "the container wrote /etc/x into the image: its root is still writable. Which "
           "flags change one flag of an existing mount? mount(2), \"Remounting an existing "
           "mount\", and the section \"Make the root read-only\"")
    expect("tmp ok" in said,
           f"/tmp is not writable inside ({wrote.stderr.strip()[-200:]!r}): the read-only "
           "flag belongs on the rootfs's own bind mount only; the tmpfs on /tmp keeps its own")
    return Passed(f"the container's root is {root}, read-only ({len(mounts)} mounts, none of the "
                  "old root); /tmp stays writable and the escape stayed inside")
