"""Rootless containers: made by an unprivileged user, with no help from root (lesson 09).

An unprivileged process may unshare a user namespace and is root, with every capability, in
it; that root then creates the other namespaces (uts, mnt, pid, ...), which its user namespace
owns. The maps are the catch: without CAP_SETUID outside, the kernel lets the parent write one
line that maps its own uid, count 1, and the same for its gid after `deny` in setgroups. So
root inside is the caller outside, and every other id is the overflow id 65534.

What still needs root here: cgroups (a rootless run has no limits; systemd can delegate a
cgroup to a user, which rootless Podman uses), and mapping more than one id.

See also: user_namespaces(7) ("Defining user and group ID mappings"), setpriv(1), unshare(1)
(--map-root-user). Left out: newuidmap(1)/newgidmap(1) and /etc/subuid, slirp4netns/pasta for
a rootless network, fuse-overlayfs.
"""

from __future__ import annotations

import os

from pycontain.errors import ProcessError, SpecError
from pycontain.namespaces import user

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


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

def both_sides(command: str = "id", uid: int = user.OVERFLOW_ID,
               gid: int | None = None) -> dict[str, Any]:
    """A rootless run: as unprivileged `uid` (setpriv(1)), start a container with a user
    namespace and the shell `command`; return what it said and how the host sees it.

    The caller must be root (to become `uid`); the container is made by `uid` alone, in a
    helper (`pycontain.helper`) that holds it while the host looks, with the only maps it may
    write itself: `0 <uid> 1` and `0 <gid> 1`, after `deny` in setgroups.
    """
    from pycontain import helper

    gid = uid if gid is None else gid
    as_uid = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
    try:
        holder, started = helper.start(_hold_container, command, prefix=as_uid)
    except ProcessError as e:
        e.add_note("the rootless run failed in the unprivileged process; `pycontain doctor` "
                   "says whether user namespaces are enabled (lesson 09)")
        raise
    try:
        pid = started["pid"]
        return {"inside": started["said"], "outside (/proc/<pid>/status)": user.outside_ids(pid),
                "uid_map": user.map_text(user.read_map(pid, "uid")).strip(),
                "gid_map": user.map_text(user.read_map(pid, "gid")).strip(), "pid": pid}
    finally:
        helper.stop(holder)  # the container dies with it (PDEATHSIG), and is reaped by init:
        _wait_gone(started["pid"])  # the caller sees it gone, as after Container.wait()


def _wait_gone(pid: int, timeout_s: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.005)


_READY = "pycontain-ready"


def _hold_container(command: str) -> dict[str, Any]:
    """In the unprivileged helper: start the container, read what it says up to the mark that
    it is done, and leave it running for the caller to look at.

    The container is forked, as the `pycontain` command makes it (this helper is
    single-threaded): an unprivileged user may not be able to start the interpreter again from
    here. A fork shares this process's stdout, where the helper's answer goes, so the container
    gets a pipe as its stdout instead, for the time of the fork."""
    from pycontain.runtime import spawn_forked

    read_end, write_end = os.pipe()
    ours = os.dup(1)
    os.dup2(write_end, 1)
    try:
        box = spawn_forked(["sh", "-c", f"exec 2>&1; {command}; echo {_READY}; exec sleep 60"],
                           user_namespace=True)
    finally:
        os.dup2(ours, 1)
        os.close(ours)
        os.close(write_end)
    said = []
    with os.fdopen(read_end) as container_out:
        while (line := container_out.readline()) not in ("", f"{_READY}\n"):
            said.append(line.rstrip("\n"))
    if not line:
        raise ProcessError(f"the rootless container ended before it was done: {said}")
    return {"pid": box.pid, "said": said}
