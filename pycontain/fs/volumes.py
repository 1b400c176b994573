"""Bind volumes: a host directory or file shown inside the container (`-v HOST:CONTAINER[:ro]`).

A volume is a bind mount (mount(2) with MS_BIND|MS_REC), made by init in the container's own
mount namespace after the overlay and before pivot_root, while the host's path is still in
reach; `rootfs.enter` binds the root recursively, so the volume comes along. `:ro` remounts the
bind read-only (a bind mount's own flag, MS_REMOUNT|MS_BIND|MS_RDONLY): the host's files stay
writable to the host, not to the container. The mount point is made in the container's root
(its throw-away layer, with an overlay), a directory or an empty file like the source.

The checks come first, before anything is made: the host path absolute and existing, the
container path absolute and inside the root, not `/` and not over /proc, /sys or /dev, whose
mounts init makes itself (Docker refuses a volume over /proc, CVE-2019-16884 ran through a
symlink there). A symlink inside the image may point anywhere: the mount point is resolved
inside the root, and one that leaves it is refused (runc's securejoin, CVE-2021-30465).

See also: mount(2) (MS_BIND, MS_REMOUNT), mount_namespaces(7), docker-run(1) (-v).
"""

from __future__ import annotations

import os
from collections import namedtuple

from pycontain import syscalls
from pycontain.errors import SpecError
from pycontain.syscalls import MountFlag

#: the accepted form, as errors say it
FORM = "HOST:CONTAINER or HOST:CONTAINER:ro, two absolute paths"
#: where init mounts what the kernel provides: no volume over these
RESERVED = ("/proc", "/sys", "/dev")

Volume = namedtuple("Volume", "source target read_only")


def parse(given: str | Volume | tuple[str, str, bool]) -> Volume:
    """One volume from `HOST:CONTAINER[:ro|:rw]` (or a Volume), paths not yet checked.

    >>> parse("/srv/data:/data:ro")
    Volume(source='/srv/data', target='/data', read_only=True)
    >>> parse("/srv/data")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pycontain.errors.SpecError: `volumes` must be HOST:CONTAINER or HOST:CONTAINER:ro, ...
    """
    if isinstance(given, tuple) and len(given) == 3:
        return Volume(str(given[0]), str(given[1]), bool(given[2]))
    if not isinstance(given, str):
        raise SpecError("volumes", FORM, given)
    parts = given.split(":")
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        return Volume(parts[0], parts[1], parts[2] == "ro")
    if len(parts) != 2 or not all(parts):
        raise SpecError("volumes", FORM, given)
    return Volume(parts[0], parts[1], False)


def inside(root: str, target: str) -> str:
    """Where `target`, a path inside the container, is on the host, with symlinks resolved as
    the container would (within `root`); a SpecError when it leaves the root.

    >>> inside("/", "/etc/../tmp")
    '/tmp'
    """
    real_root = os.path.realpath(root)
    found = os.path.realpath(os.path.join(real_root, target.lstrip("/")))
    if found != real_root and not found.startswith(real_root.rstrip("/") + "/"):
        raise SpecError("volumes", "a container path inside the rootfs", target,
                        hint=f"inside the rootfs it leads to {found}, outside it (a symlink "
                             "in the image): choose a path whose parents are directories")
    return found


def validate(given: object, root: str | None) -> tuple[Volume, ...]:
    """Check Spec's `volumes`: each host path absolute and existing, each container path
    absolute, inside `root` and not over /proc, /sys or /dev."""
    if not given:
        return ()
    if isinstance(given, str) or not hasattr(given, "__iter__"):
        raise SpecError("volumes", f"a list of {FORM}", given)
    volumes = tuple(parse(item) for item in given)  # type: ignore[attr-defined]
    if root is None:
        raise SpecError("volumes", "used only with a rootfs", [v.target for v in volumes],
                        needs=("rootfs", None),
                        hint="a volume is a mount in the container's root (lessons 04, 05)")
    for volume in volumes:
        shown = f"{volume.source}:{volume.target}"
        if not os.path.isabs(volume.source):
            raise SpecError("volumes", "an absolute host path (HOST in HOST:CONTAINER)", shown,
                            hint="relative to what? give the full path, such as $PWD/data")
        if not os.path.exists(volume.source):
            raise SpecError("volumes", "a host path that exists", shown,
                            hint=f"{volume.source} does not exist: make it first")
        target = os.path.normpath(volume.target)
        if not volume.target.startswith("/") or target in ("/", "//"):
            raise SpecError("volumes", "an absolute container path other than /", shown)
        if any(target == r or target.startswith(r + "/") for r in RESERVED):
            raise SpecError("volumes", "a container path not over /proc, /sys or /dev", shown,
                            hint="init mounts the kernel's own filesystems there (lesson 05)")
        inside(root, target)
    return tuple(v._replace(target=os.path.normpath(v.target)) for v in volumes)


def mount(volumes: list[list[object]], root: str) -> None:
    """In init, before pivot_root: bind each volume at its place under `root`."""
    for source, target, read_only in volumes:
        point = inside(root, str(target))  # again: the image may have changed meanwhile
        if os.path.isdir(str(source)):
            os.makedirs(point, exist_ok=True)
        elif not os.path.exists(point):
            os.makedirs(os.path.dirname(point), exist_ok=True)
            open(point, "w").close()  # a bind mount needs a file to cover
        syscalls.mount(str(source), point, None, MountFlag.MS_BIND | MountFlag.MS_REC)
        if read_only:
            syscalls.mount(None, point, None,
                           MountFlag.MS_REMOUNT | MountFlag.MS_BIND | MountFlag.MS_RDONLY)
