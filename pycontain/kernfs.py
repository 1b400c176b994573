"""Writing a file the kernel serves (/proc, cgroupfs): the one way pycontain does it.

A kernel file is a command channel, not storage: each write(2) is parsed on its own, so a value
goes in exactly one write, and the file is opened without O_CREAT so that a misspelt name fails
with ENOENT instead of creating a regular file (cgroupfs refuses creation anyway; /proc too).
Used for cgroup knobs (lesson 12), uid_map/gid_map/setgroups (lesson 09) and timens_offsets
(lesson 11) and net.ipv4.ip_forward (lesson 08). Callers turn the OSError (a `SyscallError`
naming openat, write or close) into their own error with the call's name. The calls go through
`pycontain.syscalls`, so a recorded run writes nothing and a traced one shows each call.

See also: proc(5), cgroups(7).
"""

from __future__ import annotations

from pycontain import syscalls
from pycontain.syscalls import AT_FDCWD, OpenFlag


def write_once(path: str, text: str) -> None:
    """Write `text` to the existing kernel file `path` in a single write(2); OSError on failure."""
    fd = syscalls.openat(AT_FDCWD, path, OpenFlag.O_WRONLY | OpenFlag.O_CLOEXEC)
    try:
        syscalls.write(fd, text.encode())
    finally:
        syscalls.close(fd)
