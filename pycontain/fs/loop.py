"""A loop device: a file seen as a block device, a disk of the lesson's own (lesson 16).

`attach(file)` makes a file of `size_bytes` (sparse) and attaches it to the first free loop
device (`losetup --find --show`, which asks /dev/loop-control for LOOP_CTL_GET_FREE);
`detach(device)` lets it go. The lesson's io limits then name `/dev/loopN`, a device only its
experiments use, so the rates measured are theirs alone. A loop device backed by a file whose
path holds `pycontain-` is ours: `leftover_loops()` finds those still attached (the kernel keeps
each device's backing file in /sys/block/loopN/loop/backing_file) and `remove_loop()` detaches
them, for `lab.kinds()`.

`make_disk(directory)` goes one step further for buffered writes: it attaches a file in
`directory`, makes an ext4 on the device (a filesystem that supports cgroup writeback) and
mounts it at `directory/mnt`; `remove_disk()` unmounts and detaches it. `directory` must be one
of pycontain's own (`Lab.tempdir()`), so that a mount a dead notebook left is a leftover
`lab.kinds()` finds, by its path, before the loop device it holds.

    >>> parse_backing("/tmp/pycontain-io-x/disk.img\\n"), parse_backing("/tmp/other (deleted)\\n")
    ('/tmp/pycontain-io-x/disk.img', '/tmp/other')

See also: losetup(8), loop(4), mkfs.ext4(8).
"""

from __future__ import annotations

import glob
import os
import subprocess
from typing import NamedTuple

from pycontain import syscalls
from pycontain.errors import ProcessError, SpecError
from pycontain.settings import PREFIX


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise ProcessError(f"{' '.join(argv)} failed (status {done.returncode}): "
                           f"{done.stderr.strip()}",
                           hint="loop devices need root and /dev/loop-control (modprobe loop)")
    return done.stdout.strip()


def attach(file: str | os.PathLike[str], size_bytes: int = 256 << 20) -> str:
    """Make `file` (sparse, `size_bytes`) and attach it to a free loop device: `/dev/loopN`."""
    with open(file, "wb") as f:
        f.truncate(size_bytes)
    return _run("losetup", "--find", "--show", os.fspath(file))


def detach(device: str) -> None:
    """Detach the loop device (the kernel lets it go once nothing has it open or mounted)."""
    _run("losetup", "--detach", device)


def make_ext4(device: str) -> None:
    """An ext4 filesystem on `device`: one that supports cgroup writeback (lesson 16)."""
    _run("mkfs.ext4", "-q", "-F", device)


class Disk(NamedTuple):
    """A loop device with an ext4 on it, mounted: the lesson's own disk."""

    device: str  # /dev/loopN: what io.max names (by its MAJ:MIN)
    mount_point: str  # where its filesystem is mounted: DIRECTORY/mnt
    image: str  # the file behind the device: DIRECTORY/disk.img


def make_disk(directory: str | os.PathLike[str], size_bytes: int = 64 << 20) -> Disk:
    """Attach `directory/disk.img` (sparse, `size_bytes`) to a loop device, make an ext4 on it
    and mount it at `directory/mnt`. `directory` must be a pycontain temp dir (its name starts
    with `pycontain-`), checked before anything is made."""
    where = os.path.realpath(directory)
    if not os.path.basename(where).startswith(PREFIX) or not os.path.isdir(where):
        raise SpecError("directory", f"an existing directory named {PREFIX}… (lab.tempdir())",
                        os.fspath(directory),
                        hint="a mount outside pycontain's own directories is one no sweep "
                             "would find again")
    image, mount_point = os.path.join(where, "disk.img"), os.path.join(where, "mnt")
    device = attach(image, size_bytes)
    try:
        make_ext4(device)
        os.makedirs(mount_point, exist_ok=True)
        syscalls.mount(device, mount_point, "ext4")
    except BaseException:
        detach(device)
        raise
    return Disk(device, mount_point, image)


def remove_disk(disk: Disk) -> None:
    """Unmount the disk's filesystem and detach its loop device (the image file stays)."""
    if os.path.ismount(disk.mount_point):
        syscalls.umount2(disk.mount_point, 0)
    detach(disk.device)


def parse_backing(text: str) -> str:
    """The backing file's path from /sys/block/loopN/loop/backing_file."""
    return text.strip().removesuffix(" (deleted)")


def leftover_loops(sys_block: str = "/sys/block", *, under: str = "") -> list[str]:
    """The loop devices still attached to a file named `pycontain-…` (below the directory
    `under` only, if given: a dead notebook's `Lab.tempdir()`)."""
    found = []
    for backing in sorted(glob.glob(os.path.join(sys_block, "loop*", "loop", "backing_file"))):
        try:
            with open(backing) as f:
                path = parse_backing(f.read())
        except OSError:
            continue  # detached meanwhile
        if PREFIX in path and path.startswith(os.path.join(under, "") if under else ""):
            found.append("/dev/" + os.path.basename(os.path.dirname(os.path.dirname(backing))))
    return found


def remove_loop(device: str) -> None:
    """Detach a leftover loop device (its mounts are gone first: `lab.kinds()` order)."""
    detach(device)
