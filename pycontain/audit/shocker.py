"""A host file opened by its handle, past the container's root ("shocker", 2014).

open_by_handle_at(2) opens a file from a *handle*, the few bytes a file system gives out to
name one of its files (ext4: the inode number and its generation), for NFS servers that keep
no open files. No path is walked: the container's root, its mount namespace, every ".." check
are never asked. The kernel asks one thing of the caller, CAP_DAC_READ_SEARCH (in the initial
user namespace), and a descriptor of any file on the same file system (the `mount_fd`, which
picks the superblock). Docker 0.11 kept that capability, and bound /.dockerinit from the host's
disk into every container: Sebastian Krahmer's exploit walked handles from the root's
(inode 2 on ext4) to /etc/shadow and read it.

pycontain's defences: CAP_DAC_READ_SEARCH is not among the capabilities a container keeps
(security.capabilities.DEFAULT, Docker's since 1.0), and the default seccomp profile refuses
open_by_handle_at unless the container was given that capability back (security.seccomp.DEFAULT,
Docker's rule: the profile follows the capabilities, so `--cap-add DAC_READ_SEARCH` opens both).
The capability is the defence; the filter is the second wall for a container without it.

The demonstration: `attempt` makes a `pycontain-` temp dir holding `shared/`, bound into the
container (the part of the host's disk a container sees, as /.dockerinit was), and `secret/marker`,
which is not. The host passes the marker's handle (name_to_handle_at(2), as Krahmer's walk would
have found it) and the container's program opens it with `shared/` as its `mount_fd`. The
embedded rootfs has no interpreter, so the program is the host's own Python, bound read-only
into the container with the interpreter's directories (`interpreter_volumes`) and run as
`python -I -S -c`: ctypes, nothing of pycontain.

See also: open_by_handle_at(2), name_to_handle_at(2), capabilities(7) (CAP_DAC_READ_SEARCH),
seccomp(2); Docker's profile (default.json); Krahmer's shocker.c (2014).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from pycontain import runtime, syscalls
from pycontain.audit.escape import place_marker
from pycontain.audit.outcome import Outcome
from pycontain.fs import rootfs

#: where the bound part of the host's disk appears inside the container
SHARED = "/shared"

#: the container's program: open the handle given (hex) with SHARED as the mount_fd, print it
PROGRAM = r"""
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
mount_fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
handle = ctypes.create_string_buffer(bytes.fromhex(sys.argv[2]))
fd = libc.open_by_handle_at(mount_fd, handle, os.O_RDONLY)
if fd == -1:
    e = ctypes.get_errno()
    sys.exit(f"open_by_handle_at: {errno.errorcode[e]} {os.strerror(e)}")
print(os.readlink(f"/proc/self/fd/{fd}"))
print(os.read(fd, 200).decode().strip())
"""


def interpreter_volumes() -> list[str]:
    """`volumes` that show this host's Python to a container at the same paths, read-only:
    its installation (sys.base_prefix) and the directories its loader and libraries come
    from (/usr, /lib, /lib64: the loader's path, /lib64/ld-linux-x86-64.so.2, is written in
    the executable, a symlink into /usr or not). A Python whose libraries lie elsewhere
    would not start inside."""
    found = {os.path.realpath(sys.base_prefix)}
    found.update(top for top in ("/usr", "/lib", "/lib64", "/lib32") if os.path.isdir(top))
    kept = sorted(p for p in found if not any(p.startswith(q + "/") for q in found if q != p))
    return [f"{p}:{p}:ro" for p in kept]


def interpreter() -> str:
    """The host's interpreter (not a venv's symlink: the container does not see the venv)."""
    return os.path.realpath(sys.executable)


def attempt(directory: str | os.PathLike[str], *, weakened: bool, timeout_s: float = 20.0,
            **options: Any) -> Outcome:
    """Place a marker in `directory`/secret (a `pycontain-` temp dir), bind `directory`/shared
    into a container on the embedded rootfs with `options`, and let it open the marker by its
    handle."""
    shared = os.path.join(os.fspath(directory), "shared")
    secret = os.path.join(os.fspath(directory), "secret")
    os.makedirs(shared)
    os.makedirs(secret)
    marker = place_marker(secret)
    handle = syscalls.name_to_handle_at(syscalls.AT_FDCWD, marker.path)
    volumes = [*interpreter_volumes(), f"{shared}:{SHARED}:ro", *options.pop("volumes", ())]
    # through sh: the interpreter is looked up in the rootfs before its volumes are bound
    result = runtime.run(["sh", "-c", 'exec "$@"', "shocker", interpreter(), "-I", "-S", "-c",
                          PROGRAM, SHARED, handle.hex()],
                         rootfs=rootfs.ensure(), overlay=True, volumes=volumes,
                         timeout_s=timeout_s, **options)
    read = result.stdout.split()
    escaped = marker.secret in read
    return Outcome("shocker", weakened, escaped,
                   f"read the marker by its handle; the kernel names the file {read[0]!r}: no "
                   "path from this root leads there" if escaped
                   else f"{result.reason}: {result.stderr.strip()[-200:]}")

