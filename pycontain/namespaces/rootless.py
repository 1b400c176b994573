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

_ROOTLESS = """
import json
from pycontain.runtime import spawn_forked
command = "exec 2>&1; " + {command!r} + "; echo pycontain-ready; exec sleep 60"
# forked, as the `pycontain` command does: no second interpreter to exec (this one is
# single-threaded); the container writes to our stdout, we report on stderr
with spawn_forked(["sh", "-c", command], user_namespace=True) as box:
    print(json.dumps({{"pid": box.pid}}), file=sys.stderr, flush=True)
    sys.stdin.readline()  # the container lives until the caller has looked at it
"""


def both_sides(command: str = "id", uid: int = user.OVERFLOW_ID,
               gid: int | None = None) -> dict[str, Any]:
    """A rootless run: as unprivileged `uid` (setpriv(1)), start a container with a user
    namespace and the shell `command`; return what it said and how the host sees it.

    The caller must be root (to become `uid`); the container is made by `uid` alone, with the
    only maps it may write itself: `0 <uid> 1` and `0 <gid> 1`, after `deny` in setgroups.
    """
    import json
    import subprocess

    from pycontain import fresh_python

    gid = uid if gid is None else gid
    with subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                           *fresh_python(_ROOTLESS.format(command=command))],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as process:
        out, err, stdin = process.stdout, process.stderr, process.stdin
        assert out is not None and err is not None and stdin is not None
        try:
            said = []
            while (line := out.readline()) not in ("", "pycontain-ready\n"):
                said.append(line.rstrip("\n"))
            report = err.readline()
            if not line or not report.startswith("{"):
                raise ProcessError(f"the rootless run failed: {report}{err.read()}",
                                   hint="the error above comes from the unprivileged process; "
                                        "`pycontain doctor` says whether user namespaces are "
                                        "enabled (lesson 09)")
            pid = json.loads(report)["pid"]
            seen = {"inside": said, "outside (/proc/<pid>/status)": user.outside_ids(pid),
                    "uid_map": user.map_text(user.read_map(pid, "uid")).strip(),
                    "gid_map": user.map_text(user.read_map(pid, "gid")).strip(), "pid": pid}
            stdin.write("\n")
            stdin.flush()
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    return seen
