"""Masked and read-only paths: what of the kernel's files a container may not read or write
(lesson 20).

/proc and /sys are the kernel's own files, and most of them are not namespaced: a container's
/proc/sys/kernel/core_pattern is the host's, and a program named there runs as root on the host
when any process dumps core; /proc/kcore is the host's memory, /proc/keys the keyrings of every
user, /proc/timer_list and /proc/sched_debug name the host's processes and timers. So every
runtime hides some of them and freezes others, in the container's own mount namespace only:

- masked (`MASKED`): a file gets /dev/null bound over it, a directory an empty read-only tmpfs;
  reading gives nothing, and the mount cannot be lifted without CAP_SYS_ADMIN;
- read-only (`READ_ONLY`): the path is bound onto itself and the bind made read-only, so
  /proc/sys can still be read (programs look up `kernel/pid_max`) but no sysctl written.

The lists are runc's defaults (`runc spec`), as Docker and podman apply them, plus Docker's
/sys/devices/virtual/powercap (energy counters readable by anyone: the PLATYPUS side channel,
CVE-2020-8694). A path the kernel does not have is left alone, as runc does. The network
sysctls of a container's own network namespace live under the read-only /proc/sys too: a
runtime sets them (`docker run --sysctl`) before this step, never the container itself.
`pycontain run` applies both lists in any container with its own mount namespace;
`--security-opt systempaths=unconfined` (Docker's name) or `--privileged` leaves them out.

See also: proc(5), core(5) (core_pattern), mount(2) (MS_BIND, MS_REMOUNT, MS_RDONLY),
runc's libcontainer/rootfs_linux.go (maskPath, readonlyPath), the OCI runtime spec
(config-linux.md, maskedPaths and readonlyPaths).
"""

from __future__ import annotations

import errno
import os

from pycontain import syscalls
from pycontain.errors import SpecError, SyscallError
from pycontain.fs.rootfs import bind_read_only
from pycontain.syscalls import MountFlag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection

#: hidden inside a container: /dev/null over a file, an empty read-only tmpfs over a directory
MASKED = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
          "/sys/firmware", "/sys/devices/virtual/powercap")
#: readable but never writable inside a container
READ_ONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

def validate(parameter: str, given: Collection[str] | None) -> tuple[str, ...]:
    """`given` as a tuple of absolute paths, or a SpecError naming `parameter`.

    >>> validate("masked_paths", ["/proc/kcore"])
    ('/proc/kcore',)
    >>> validate("masked_paths", ["proc/kcore"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pycontain.errors.SpecError: `masked_paths` must be absolute paths inside the container, ...
    """
    if not given:
        return ()
    if isinstance(given, str):
        raise SpecError(parameter, "a list of absolute paths inside the container, such as "
                        "['/proc/kcore']", given)
    for path in given:
        if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
            raise SpecError(parameter, "absolute paths inside the container, such as "
                            "['/proc/kcore']", path)
    return tuple(dict.fromkeys(os.path.normpath(p) for p in given))


def mask(path: str) -> None:
    """Hide `path`: bind /dev/null over a file, mount an empty read-only tmpfs on a directory
    (runc's maskPath). A path that does not exist is left alone."""
    try:
        is_dir = os.path.isdir(path)
        if not is_dir and not os.path.lexists(path):
            return
        if is_dir:
            syscalls.mount("tmpfs", path, "tmpfs", MountFlag.MS_NOSUID | MountFlag.MS_NODEV
                           | MountFlag.MS_NOEXEC | MountFlag.MS_RDONLY)
        else:
            syscalls.mount("/dev/null", path, None, MountFlag.MS_BIND)
    except SyscallError as e:
        if e.errno not in (errno.ENOENT, errno.ENOTDIR):  # gone meanwhile, as runc ignores
            raise


def make_read_only(path: str) -> None:
    """Bind `path` onto itself, then make that bind read-only (runc's readonlyPath): the files
    stay readable; a write fails with EROFS. A path that does not exist is left alone."""
    if os.path.lexists(path):
        bind_read_only(path, path, recursive=True)


def apply(masked: Collection[str], read_only: Collection[str]) -> None:
    """Make `read_only` read-only, then mask `masked`, in the caller's (private) mount
    namespace, after its /proc is mounted and its root entered."""
    for path in read_only:
        make_read_only(path)
    for path in masked:
        mask(path)
