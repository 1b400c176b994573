"""The cgroup v2 manager: one directory, controllers handed down by the parent (lesson 12).

On v2 a cgroup gets a controller only when its parent lists it in `cgroup.subtree_control`, and
a cgroup that hands controllers down may not hold processes itself (the no-internal-processes
rule; the root is exempt). So pycontain enables what the container needs in the parent, then
creates the container's cgroup as a leaf. When the parent is the caller's own cgroup and holds
the caller (a systemd service with `Delegate=yes`, like the lab VM's Jupyter), the caller first
moves into a leaf of its own, `pycontain-self`: what systemd's `DelegateSubgroup=` does.

See also: the kernel's Documentation/admin-guide/cgroup-v2.rst ("No Internal Process
Constraint", "Delegation"), systemd.resource-control(5); runc's libcontainer/cgroups/fs2.
"""

from __future__ import annotations

import errno
import os

from pycontain.cgroups import controllers
from pycontain.cgroups.base import Cgroup
from pycontain.cgroups.files import _read_text, attach, make_dir, procs, read_file, write_file
from pycontain.cgroups.layout import Layout
from pycontain.errors import CgroupError, hint_for
from pycontain.settings import SELF_LEAF


def delegate(parent_dir: str, wanted: tuple[str, ...], *, is_root: bool) -> None:
    """Make `parent_dir` hand `wanted` controllers to its children, moving the caller to a leaf
    first when the parent holds it (the only time pycontain moves the calling process)."""
    enabled = _read_text(os.path.join(parent_dir, "cgroup.subtree_control")).split()
    missing = [c for c in wanted if c not in enabled]
    if not missing:
        return
    offered = _read_text(os.path.join(parent_dir, "cgroup.controllers")).split()
    absent = [c for c in missing if c not in offered]
    if absent:
        raise CgroupError(f"failed to enable {' '.join(absent)} in {parent_dir}: not offered "
                          f"by its cgroup.controllers ({' '.join(offered) or 'none'})",
                          errno.ENOENT, hint_for("write cgroup.subtree_control", errno.ENOENT))
    if not is_root and procs(parent_dir):
        me = os.getpid()
        if me in procs(parent_dir):
            leaf = os.path.join(parent_dir, SELF_LEAF)
            if not os.path.isdir(leaf):
                make_dir(leaf)
            write_file(os.path.join(leaf, "cgroup.procs"), me)
    write_file(os.path.join(parent_dir, "cgroup.subtree_control"),
               " ".join(f"+{c}" for c in missing))


class V2Cgroup(Cgroup):
    """A cgroup of the unified (v2) hierarchy: one directory, files named as the lessons say."""

    version = 2

    @classmethod
    def create(cls, name: str, wanted: tuple[str, ...], layout: Layout,
               parent: str | None) -> V2Cgroup:
        h = layout.unified
        assert h is not None
        parent_dir = h.path(parent) if parent else h.own_dir
        delegate(parent_dir, wanted, is_root=os.path.samefile(parent_dir, h.mount))
        path = os.path.join(parent_dir, name)
        make_dir(path)
        return cls(name, {"": path}, layout)

    @property
    def path(self) -> str:
        return self.dirs[""]

    def file(self, knob: str) -> str:
        return os.path.join(self.path, knob)

    def attach(self, pid: int) -> None:
        attach([self.path], pid)

    def read(self, knob: str) -> str:
        return read_file(self.file(knob)).strip()

    def read_keyed(self, knob: str) -> dict[str, int]:
        return controllers.keyed_v2(knob, read_file(self.file(knob)))

    def set(self, settings: dict[str, str]) -> None:
        for knob, value in controllers.to_v2(settings).items():
            write_file(self.file(knob), value)

    def freezer_file(self) -> tuple[str, int]:
        return self.file("cgroup.freeze"), 2
