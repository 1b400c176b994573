"""Mounting the host's disk from inside: a block device node and CAP_SYS_ADMIN (lesson 23).

A container's files are only what its root shows; the disk under them holds everything.
Root inside with CAP_MKNOD makes the node of a disk (`mknod /dev/d b 7 0`: loop0; in /dev,
since /tmp is mounted nodev), with CAP_SYS_ADMIN and no seccomp filter mounts it, read-only
even, and reads any file on it: the host's /etc/shadow, had it been the host's disk. Docker
stops the node with its device cgroup, pycontain with no CAP_MKNOD at all
(security.capabilities.DEFAULT); CAP_SYS_ADMIN is not kept and the seccomp profile refuses
mount(2) too; /dev holds six character devices, no disk (rootfs.mount_dev).

The demonstration never goes near the machine's disk: `attempt` makes a loop device over an
image file in a `pycontain-` temp dir (fs.loop), writes the marker on it, and the container
mounts that device. The loop device is detached again, whatever happened.

See also: mknod(2), mount(2), loop(4), capabilities(7) (CAP_MKNOD, CAP_SYS_ADMIN); Docker's
`--device` and `--privileged`.
"""

from __future__ import annotations

import os
from typing import Any

from pycontain import runtime, syscalls
from pycontain.audit.escape import place_marker
from pycontain.audit.outcome import Outcome
from pycontain.fs import loop, rootfs

#: the container's command: make the disk's node, mount it read-only, read the marker
SCRIPT = r"""
mknod /dev/pycontain-disk b "$1" "$2" || exit 3
mkdir -p /tmp/host-disk
mount -o ro -t ext4 /dev/pycontain-disk /tmp/host-disk || exit 4
cat /tmp/host-disk/marker
umount /tmp/host-disk
"""


def attempt(directory: str | os.PathLike[str], *, weakened: bool, timeout_s: float = 20.0,
            **options: Any) -> Outcome:
    """Make a loop disk in `directory` (a `pycontain-` temp dir) holding a marker, and let a
    container on the embedded rootfs with `options` try to mount it and read the marker."""
    disk = loop.make_disk(directory, size_bytes=8 << 20)
    try:
        marker = place_marker(disk.mount_point)
        syscalls.umount2(disk.mount_point, 0)  # the container mounts it, not the host
        rdev = os.stat(disk.device).st_rdev
        result = runtime.run(["sh", "-c", SCRIPT, "disk", str(os.major(rdev)),
                              str(os.minor(rdev))], rootfs=rootfs.ensure(),
                             timeout_s=timeout_s, **options)
    finally:
        loop.remove_disk(disk)
    escaped = marker.secret in result.stdout.split()
    return Outcome("host disk", weakened, escaped,
                   f"read the marker from {disk.device}" if escaped
                   else f"{result.reason}: {result.stderr.strip()}")
