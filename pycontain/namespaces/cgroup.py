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
