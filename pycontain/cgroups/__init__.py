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

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    # The two managers, cgroups.v1 and cgroups.v2, behind one interface (lesson 12 shows their
    # code), and the names this package offers, each from its home module:
    from pycontain.cgroups import v1, v2
    from pycontain.cgroups.base import Cgroup
    from pycontain.cgroups.files import (
        make_dir,
        new_name,
        procs,
        read_file,
        remove_dir,
        walk_up,
        write_file,
    )
    from pycontain.cgroups.layout import ROOT, Hierarchy, Layout, detect, home, parent_path

#: name -> the module that holds it, imported on first use: `pycontain run` reads its limit
#: flags from `cgroups.controllers`, and a container without limits needs none of the managers
_EXPORTS = {
    "v1": "v1", "v2": "v2", "Cgroup": "base", "unremoved": "base",
    **dict.fromkeys(("make_dir", "new_name", "procs", "read_file", "remove_dir", "walk_up",
                     "write_file"), "files"),
    **dict.fromkeys(("ROOT", "Hierarchy", "Layout", "detect", "home", "parent_path"), "layout"),
}


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pycontain.cgroups' has no attribute {name!r}")
    from importlib import import_module

    module = import_module(f"pycontain.cgroups.{_EXPORTS[name]}")
    return module if _EXPORTS[name] == name else getattr(module, name)


def create(controllers: Iterable[str] = ("memory", "pids"), *, name: str | None = None,
           label: str = "", layout: Layout | None = None) -> Cgroup:
    """Create a `pycontain-…` cgroup with `controllers`, beneath the caller's own cgroup.

    On v2 the parent must hand the controllers down (`cgroup.subtree_control`); when the
    parent also holds this very process (a systemd service with `Delegate=yes`), this process
    first moves into a leaf, `pycontain-self`, as the no-internal-processes rule demands.
    """
    from pycontain.cgroups import v1, v2
    from pycontain.cgroups.files import new_name
    from pycontain.cgroups.layout import detect, parent_path
    from pycontain.settings import PREFIX

    layout = layout or detect()
    name = name or new_name(label)
    if not name.startswith(PREFIX):
        raise ValueError(f"pycontain creates only cgroups named {PREFIX}…, not {name!r}")
    from pycontain.cgroups.base import made

    if layout.mode == "v2":
        return made(v2.V2Cgroup.create(name, tuple(controllers), layout, parent_path(layout)))
    return made(v1.V1Cgroup.create(name, tuple(controllers), layout, parent_path(layout)))


__all__ = ["ROOT", "Cgroup", "Hierarchy", "Layout", "create", "detect",
           "home", "make_dir", "new_name", "parent_path", "procs", "read_file", "remove_dir",
           "unremoved", "v1", "v2", "walk_up", "write_file"]

