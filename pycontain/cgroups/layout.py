"""Where the cgroup hierarchies are mounted, and where pycontain makes its cgroups in them.

`detect()` reads /proc/self/mountinfo and /proc/self/cgroup: each mounted hierarchy, its
version, its controllers and this process's own cgroup in it. The mode is `v2` (one unified
tree), `v1` (a tree per controller) or `hybrid` (v1 controllers and a cgroup2 mount beside them).

See also: cgroups(7), proc(5) (/proc/<pid>/cgroup, mountinfo).
"""

from __future__ import annotations

import os
from collections import namedtuple

from pycontain import settings
from pycontain.cgroups.files import _read_text

ROOT = "/sys/fs/cgroup"


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
        from pycontain.cgroups.controllers import v1_name  # io is blkio on v1

        found = [h for h in self.hierarchies if controller in h.controllers
                 or h.version == 1 and v1_name(controller) in h.controllers]
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
    return settings.cgroup_parent()


def home(hierarchy: Hierarchy) -> str:
    """The directory pycontain makes its cgroups in, in `hierarchy`: beneath
    `$PYCONTAIN_CGROUP_PARENT` when it is set (the lab VM's delegated Jupyter service), else
    beneath this process's own cgroup."""
    parent = settings.cgroup_parent()
    return hierarchy.path(parent) if parent else hierarchy.own_dir
