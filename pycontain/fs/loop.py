"""A loop device: a file seen as a block device, a disk of the lesson's own (lesson 16, coming).

`attach(file)` makes a file of `size_bytes` (sparse) and attaches it to the first free loop
device (`losetup --find --show`, which asks /dev/loop-control for LOOP_CTL_GET_FREE);
`detach(device)` lets it go. The lesson's io limits then name `/dev/loopN`, a device only its
experiments use, so the rates measured are theirs alone. A loop device backed by a file whose
path holds `pycontain-` is ours: `leftover_loops()` finds those still attached (the kernel keeps
each device's backing file in /sys/block/loopN/loop/backing_file) and `remove_loop()` detaches
them, for `lab.kinds()`.

    >>> parse_backing("/tmp/pycontain-io-x/disk.img\\n"), parse_backing("/tmp/other (deleted)\\n")
    ('/tmp/pycontain-io-x/disk.img', '/tmp/other')

See also: losetup(8), loop(4), mkfs.ext4(8).
"""

from __future__ import annotations

import glob
import os
import subprocess

from pycontain.errors import ProcessError
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
    """An ext4 filesystem on `device`: one that supports cgroup writeback (lesson 16, coming)."""
    _run("mkfs.ext4", "-q", "-F", device)


def parse_backing(text: str) -> str:
    """The backing file's path from /sys/block/loopN/loop/backing_file."""
    return text.strip().removesuffix(" (deleted)")


def leftover_loops(sys_block: str = "/sys/block") -> list[str]:
    """The loop devices still attached to a file named `pycontain-…`."""
    found = []
    for backing in sorted(glob.glob(os.path.join(sys_block, "loop*", "loop", "backing_file"))):
        try:
            with open(backing) as f:
                path = parse_backing(f.read())
        except OSError:
            continue  # detached meanwhile
        if PREFIX in path:
            found.append("/dev/" + os.path.basename(os.path.dirname(os.path.dirname(backing))))
    return found


def remove_loop(device: str) -> None:
    """Detach a leftover loop device (its mounts are gone first: `lab.kinds()` order)."""
    detach(device)
