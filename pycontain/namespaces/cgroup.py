"""The cgroup namespace: a container sees its own cgroup as `/` (lesson 10).

Without one, `/proc/self/cgroup` inside a container shows the host's path to its cgroup
(`/pycontain-ctr-…`), and a cgroup filesystem mounted inside shows the host's whole tree. A
cgroup namespace has a *root*: the cgroup its creator was in at unshare(2) time. Paths in
/proc/<pid>/cgroup are then shown relative to that root, and a cgroupfs mounted from inside
shows only the subtree below it.

Because the root is fixed at unshare time, the order matters: `pycontain.init` unshares
CLONE_NEWCGROUP last, after the parent has moved it into the container's cgroup at the
"created" step; a container without limits stays in the caller's cgroup, which becomes its `/`.

On cgroup v1 (and the v1 hierarchies of a hybrid machine) every hierarchy has its own root:
the namespace's root in each is the cgroup the process was in there, and each line of
/proc/self/cgroup is relative to it. On v2 there is one hierarchy and one line, `0::/`.

    >>> parse("0::/\\n")
    {'': '/'}
    >>> parse("8:pids:/pycontain-ctr-1\\n0::/user.slice\\n")
    {'pids': '/pycontain-ctr-1', '': '/user.slice'}

See also: cgroup_namespaces(7), cgroups(7), unshare(1) (--cgroup).
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: where the view below mounts a cgroupfs inside the container: its private mount namespace
#: hides the mount from the host, and the host's /mnt stays as it was
MOUNT_POINT = "/mnt"


def parse(text: str) -> dict[str, str]:
    """/proc/<pid>/cgroup as {controllers: path}; the v2 hierarchy's key is ''."""
    found = {}
    for line in text.splitlines():
        if line:
            _, controllers, path = line.split(":", 2)
            found[controllers] = path
    return found


def own(pid: int | str = "self") -> dict[str, str]:
    """The cgroups of process `pid`, as its own cgroup namespace shows them."""
    with open(f"/proc/{pid}/cgroup") as f:
        return parse(f.read())


class CgroupView(namedtuple("CgroupView", "cgroups mounted children procs shows_own")):
    """What a container saw: `cgroups`, its /proc/self/cgroup (parsed); `mounted`, the
    hierarchy it mounted ('v2' or a v1 controller); `children`, the cgroup directories at the
    top of that mount; `procs`, the PIDs in the top cgroup.procs (its own numbering);
    `shows_own`, whether its own cgroup path (as /proc/self/cgroup names it) is in the mount."""

    __slots__ = ()


def _script(version: int, controller: str) -> str:
    options = f"-t cgroup -o {controller}" if version == 1 else "-t cgroup2"
    line = "^0::" if version == 2 else f"^[0-9]*:([^:]*,)?{controller}(,[^:]*)?:"
    return (f"cat /proc/self/cgroup; echo --; mount {options} none {MOUNT_POINT} && "
            f"(cd {MOUNT_POINT} && for d in */; do [ -d \"$d\" ] && echo \"${{d%/}}\"; done; "
            f"echo --; cat cgroup.procs; echo --; "
            f"own=$(grep -E '{line}' /proc/self/cgroup | cut -d: -f3-); "
            f"[ -d \"{MOUNT_POINT}$own\" ] && echo yes || echo no)")


def look_inside(controller: str = "pids", **options: Any) -> CgroupView:
    """Run a container that prints /proc/self/cgroup, mounts the cgroup hierarchy holding
    `controller` (v2, or v1's) at /mnt inside, and lists what that mount shows.

    Options are those of `pycontain.run`; the default namespaces are {"cgroup", "mnt", "pid"}:
    mnt so that the mount stays inside, pid so that cgroup.procs lists the container's PIDs.
    """
    import pycontain
    from pycontain import cgroups

    layout = cgroups.detect()
    version = 2
    for hierarchy in layout.hierarchies:
        if controller in hierarchy.controllers:
            version = hierarchy.version
            break
    options.setdefault("namespaces", {"cgroup", "mnt", "pid"})
    result = pycontain.run(["sh", "-c", _script(version, controller)], timeout_s=60, **options)
    if result.status != 0:
        raise RuntimeError(f"the cgroup view {result.reason}: {result.stderr}")
    own_text, children, procs, shows = (result.stdout + "\n").split("--\n", 3)
    return CgroupView(parse(own_text), "v2" if version == 2 else controller,
                      children.split(), [int(p) for p in procs.split()], shows.strip() == "yes")
