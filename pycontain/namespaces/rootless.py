"""Rootless containers: made by an unprivileged user, with no help from root (lesson 09).

An unprivileged process may unshare a user namespace and is root, with every capability, in
it; that root then creates the other namespaces (uts, mnt, pid, ...), which its user namespace
owns. The maps are the catch: without CAP_SETUID outside, the kernel lets the parent write one
line that maps its own uid, count 1, and the same for its gid after `deny` in setgroups. So
root inside is the caller outside, and every other id is the overflow id 65534.

What still needs root here: cgroups (a rootless run has no limits; systemd can delegate a
cgroup to a user, which rootless Podman uses), and mapping more than one id.

`observe.both_sides.rootless` runs one and shows it from both sides.

See also: user_namespaces(7) ("Defining user and group ID mappings"), setpriv(1), unshare(1)
(--map-root-user). Left out: newuidmap(1)/newgidmap(1) and /etc/subuid, slirp4netns/pasta for
a rootless network, fuse-overlayfs.
"""

from __future__ import annotations

import os

from pycontain.errors import SpecError
from pycontain.namespaces import user


def own_maps(uid_map: object = None, gid_map: object = None
                  ) -> tuple[tuple[user.IdMap, ...], tuple[user.IdMap, ...]]:
    """Check the maps of a rootless run: one line each, mapping the caller's own effective uid
    (gid) once. Default: root inside is the caller outside, `0 <euid> 1` and `0 <egid> 1`."""
    own = {"uid_map": os.geteuid(), "gid_map": os.getegid()}
    checked = []
    for name, given in (("uid_map", uid_map), ("gid_map", gid_map)):
        lines = user.validate_map(name, [(0, own[name], 1)] if given is None else given)
        if len(lines) != 1 or lines[0].outside != own[name] or lines[0].count != 1:
            raise SpecError(name, f"one line that maps your own id {own[name]} once, such as "
                            f"[(0, {own[name]}, 1)], when not root", [tuple(m) for m in lines],
                            hint="without root, the kernel lets a process map only its own uid "
                                 "and gid; more ids need newuidmap(1) and /etc/subuid, or root "
                                 "(lesson 09)")
        checked.append(lines)
    return checked[0], checked[1]
