"""The checks of lesson 05, swap the root filesystem."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable

from pycontain.audit import escape
from pycontain.checks import CheckFailed, Passed, expect
from pycontain.errors import PycontainError, SpecError, format_error
from pycontain.fs import rootfs
from pycontain.settings import PREFIX

HOW = ("chdir(root), pivot_root('.', '.'), umount2('.', MNT_DETACH), chdir('/'), each through "
       "`syscalls`")


def check_pivot_into(pivot_into: Callable[[str], object]) -> Passed:
    """Record the calls `pivot_into(root)` makes, replay them in a fresh container as its root
    switch, and require that the container sees only its rootfs, that no mount of the old root
    is left in its mount namespace, and that the chroot escape cannot read a host marker."""
    try:
        root = rootfs.require_tools(rootfs.ensure(), *escape.TOOLS)  # what the escape runs
    except SpecError as e:
        raise CheckFailed(f"the check cannot run the escape yet: {format_error(e)}") from e
    try:
        steps = rootfs.record(pivot_into, root)
    except SpecError as e:
        raise CheckFailed(f"pivot_into may only call {', '.join(rootfs.SWITCH_CALLS)}: "
                          f"{format_error(e)}") from e
    except Exception as e:
        raise CheckFailed(f"pivot_into({root!r}) raised {type(e).__name__}: {e}") from e
    expect(bool(steps), f"pivot_into({root!r}) made no system calls: make them through "
                        f"`syscalls` ({HOW}); the container then replays them")
    directory = tempfile.mkdtemp(prefix=f"{PREFIX}check05-")
    try:
        marker = escape.place_marker(directory)
        return _judge(root, steps, marker)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _judge(root: str, steps: list[list[object]], marker: escape.Marker) -> Passed:
    try:
        mounts = escape.mounts_inside(root, root_switch=steps)
        tried = escape.attempt(marker, root, root_switch=steps)
    except PycontainError as e:
        raise CheckFailed(f"the container could not replay your calls {steps}:\n"
                          f"{format_error(e)}") from e
    left = escape.foreign_mounts(mounts)
    expect(not left, f"{len(left)} mounts of the old root are still in the container's mount "
                     f"namespace (such as {left[0] if left else ''!r}): after pivot_root('.', "
                     "'.') the old root sits on top of the new one; detach it with "
                     "umount2('.', MNT_DETACH)")
    chroot = any(name == "chroot" for name, _ in steps)
    expect(not tried.escaped(marker),
           f"the escape climbed out and read the host's marker {marker.path!r}"
           + (": chroot(2) changes only where this process starts '/', and the host's root is "
              "still in the mount namespace above it" if chroot else "") + f"; use {HOW}")
    expect(tried.reached == tuple(sorted(os.listdir(root))),
           f"the escape ended in a directory holding {list(tried.reached)}, not the rootfs "
           f"{root!r}: the container's / should be the rootfs")
    return Passed(f"the container's root is {root}; {len(mounts)} mounts, none of the old "
                  "root; the escape climbed to / and stayed inside")
