"""Control groups: where the kernel counts and limits what a group of processes uses (lesson 12).

A cgroup is a directory in a cgroup filesystem. Its processes are listed in `cgroup.procs`; the
other files are *knobs* of controllers (`memory.max`, `pids.max`) and counters
(`memory.current`, `pids.events`). A process is in exactly one cgroup per hierarchy, and its
children start where it is. There are two versions of the filesystem:

- **v2** (every modern distribution, the lab VM): one tree, `/sys/fs/cgroup`, holding every
  controller. A parent hands controllers to its children through `cgroup.subtree_control`, and
  a cgroup that does so may not hold processes itself: the *no-internal-processes* rule.
- **v1**: one tree per controller (or group of controllers), `/sys/fs/cgroup/<controller>`,
  each with its own place for every process. *Hybrid* machines mount both: v1 controllers,
  and a cgroup2 tree at `/sys/fs/cgroup/unified` that holds processes but few controllers.

`detect()` says which this machine has and where each controller lives. `create()` makes a
`pycontain-…` cgroup beneath the caller's own (or `$PYCONTAIN_CGROUP_PARENT`) with one manager
per version behind one interface, `Cgroup` (v1: `cgroups.v1`, v2: `cgroups.v2`). Knobs are
always named the v2 way; `cgroups.controllers` translates them for v1. pycontain never writes to,
moves processes out of, or removes a cgroup it did not create.

See also: cgroups(7), the kernel's Documentation/admin-guide/cgroup-v2.rst, systemd.resource-
control(5) (`Delegate=`). Left out: threaded cgroups, the cgroup namespace (lesson 10).
"""

from __future__ import annotations

import os
from collections import namedtuple
from collections.abc import Iterable

from pycontain.cgroups.base import Cgroup
from pycontain.cgroups.files import (
    PREFIX,
    SELF_LEAF,
    _read_text,
    make_dir,
    new_name,
    procs,
    read_file,
    remove_dir,
    walk_up,
    write_file,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pycontain.cgroups.drawing import Tree

ROOT = "/sys/fs/cgroup"
#: set it to a cgroup path (as in /proc/self/cgroup) to create pycontain's cgroups there
PARENT_VARIABLE = "PYCONTAIN_CGROUP_PARENT"


class Hierarchy(namedtuple("Hierarchy", "version mount root controllers own")):
    """One mounted cgroup hierarchy: `version` 1 or 2, its `mount` point, the `root` of the
    filesystem it shows, its `controllers`, and `own`, the caller's cgroup in it (a path as in
    /proc/self/cgroup)."""

    __slots__ = ()

    def path(self, cgroup: str) -> str:
        """The directory of `cgroup` (a path as /proc/<pid>/cgroup shows it) in this mount."""
        inner = os.path.relpath(cgroup, self.root) if cgroup.startswith(self.root) else cgroup
        return os.path.normpath(os.path.join(self.mount, inner.lstrip("/")))

    @property
    def own_dir(self) -> str:
        return self.path(self.own)


class Layout(namedtuple("Layout", "mode hierarchies")):
    """What `detect()` found: `mode` ('v1', 'v2', 'hybrid') and the mounted `hierarchies`."""

    __slots__ = ()

    def hierarchy(self, controller: str) -> Hierarchy | None:
        """The hierarchy holding `controller` (v1 first: there it does the work), or None."""
        found = [h for h in self.hierarchies if controller in h.controllers]
        return min(found, key=lambda h: h.version) if found else None

    def version(self, controller: str) -> int | None:
        """1 or 2: which version enforces `controller` here; None when it is not mounted."""
        h = self.hierarchy(controller)
        return h.version if h else None

    @property
    def unified(self) -> Hierarchy | None:
        """The cgroup2 hierarchy, if any (all of v2; `/sys/fs/cgroup/unified` on hybrid)."""
        return next((h for h in self.hierarchies if h.version == 2), None)

    def where(self) -> dict[str, str]:
        """controller -> 'v1 /sys/fs/cgroup/memory' or 'v2 /sys/fs/cgroup'."""
        return {c: f"v{h.version} {h.mount}" for h in sorted(self.hierarchies)
                for c in h.controllers}

    def __repr__(self) -> str:
        lines = [f"cgroup mode: {self.mode}"]
        for h in sorted(self.hierarchies, key=lambda h: (h.version, h.mount)):
            shown = " ".join(h.controllers) or "(no controllers)"
            lines.append(f"  v{h.version} {h.mount:<28} {shown:<32} this process: {h.own}")
        return "\n".join(lines)


def detect(*, mountinfo: str = "/proc/self/mountinfo",
           proc_cgroup: str = "/proc/self/cgroup") -> Layout:
    """Find every mounted cgroup hierarchy, its controllers and this process's place in it.

    v1 mounts name their controllers in their mount options (`rw,memory`); a cgroup2 mount
    lists what it offers in its root's `cgroup.controllers`. /proc/self/cgroup gives the
    caller's cgroup in each: `4:memory:/a/b` (v1), `0::/a/b` (v2).
    """
    own_v1: dict[frozenset[str], str] = {}
    own_v2 = "/"
    with open(proc_cgroup) as f:
        for line in f:
            number, names, path = line.rstrip("\n").split(":", 2)
            if number == "0" and not names:
                own_v2 = path
            else:
                own_v1[frozenset(names.split(","))] = path
    # /proc/cgroups lists every controller the kernel has, v1 or v2 (cgroups(7))
    known = {line.split()[0] for line in _read_text("/proc/cgroups").splitlines()
             if line and not line.startswith("#")}
    hierarchies = []
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, (fstype, _source, options) = left.split(), right.split()[:3]
            root, mount = fields[3], fields[4].replace("\\040", " ")
            if fstype == "cgroup2":
                offered = _read_text(os.path.join(mount, "cgroup.controllers")).split()
                hierarchies.append(Hierarchy(2, mount, root, tuple(offered), own_v2))
            elif fstype == "cgroup":
                named = [o for o in options.split(",") if o in known or o.startswith("name=")]
                controllers = tuple(n for n in named if not n.startswith("name="))
                key = frozenset(named)
                if key in own_v1:
                    hierarchies.append(Hierarchy(1, mount, root, controllers, own_v1[key]))
    has_v2 = any(h.version == 2 for h in hierarchies)
    has_v1 = any(h.version == 1 and h.controllers for h in hierarchies)
    mode = "hybrid" if has_v2 and has_v1 else "v2" if has_v2 else "v1"
    return Layout(mode, tuple(hierarchies))


# --- placement ---------------------------------------------------------------------------------

def parent_path(layout: Layout) -> str | None:
    """`$PYCONTAIN_CGROUP_PARENT`, or None: then each hierarchy's own cgroup is the parent."""
    return os.environ.get(PARENT_VARIABLE) or None


def home(hierarchy: Hierarchy) -> str:
    """The directory pycontain makes its cgroups in, in `hierarchy`: beneath
    `$PYCONTAIN_CGROUP_PARENT` when it is set (the lab VM's delegated Jupyter service), else
    beneath this process's own cgroup."""
    parent = os.environ.get(PARENT_VARIABLE)
    return hierarchy.path(parent) if parent else hierarchy.own_dir


def create(controllers: Iterable[str] = ("memory", "pids"), *, name: str | None = None,
           label: str = "", layout: Layout | None = None) -> Cgroup:
    """Create a `pycontain-…` cgroup with `controllers`, beneath the caller's own cgroup.

    On v2 the parent must hand the controllers down (`cgroup.subtree_control`); when the
    parent also holds this very process (a systemd service with `Delegate=yes`), this process
    first moves into a leaf, `pycontain-self`, as the no-internal-processes rule demands.
    """
    layout = layout or detect()
    name = name or new_name(label)
    if not name.startswith(PREFIX):
        raise ValueError(f"pycontain creates only cgroups named {PREFIX}…, not {name!r}")
    if layout.mode == "v2":
        from pycontain.cgroups.v2 import V2Cgroup

        return V2Cgroup.create(name, tuple(controllers), layout, parent_path(layout))
    from pycontain.cgroups.v1 import V1Cgroup

    return V1Cgroup.create(name, tuple(controllers), layout, parent_path(layout))


def tree(layout: Layout | None = None, *, controllers: Iterable[str] = ("memory", "pids"),
         depth: int = 3) -> Tree:
    """The cgroup tree beneath this process's own cgroup, drawn as indented text."""
    from pycontain.cgroups.drawing import draw

    return draw(layout or detect(), tuple(controllers), depth)


__all__ = ["PREFIX", "SELF_LEAF", "Cgroup", "Hierarchy", "Layout", "create", "detect", "home",
           "make_dir",
           "new_name", "procs", "read_file", "remove_dir", "tree", "walk_up", "write_file"]


# The two managers, importable as cgroups.v1 and cgroups.v2 (lesson 12 shows their code).
from pycontain.cgroups import v1, v2  # noqa: E402, F401
