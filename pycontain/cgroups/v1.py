"""The cgroup v1 manager: one directory per hierarchy, knobs translated (lesson 12).

On v1 every controller has its own tree, so one container's cgroup is several directories:
`/sys/fs/cgroup/memory/…/pycontain-x`, `/sys/fs/cgroup/pids/…/pycontain-x`, and `freezer` to
stop processes while we kill them. A process joins by writing its PID to `cgroup.procs` in
each. On a hybrid machine the cgroup2 tree at `/sys/fs/cgroup/unified` holds no useful
controller but has `cgroup.kill` and `cgroup.events`: the container's processes join it too,
so that they can be killed all at once and their exit be noticed without polling each tree.

    >>> sorted(_needed(("memory", "pids")))
    ['freezer', 'memory', 'pids']
    >>> sorted(_needed(("memory", "pids", "cpu")))  # cpu.stat's usage is cpuacct's
    ['cpu', 'cpuacct', 'freezer', 'memory', 'pids']

A new cpuset cgroup gets its parent's cpuset.cpus and cpuset.mems (`_inherit`): v1 leaves them
empty and refuses every task until they are set (lesson 18).

See also: the kernel's Documentation/admin-guide/cgroup-v1/ (cgroups.rst, memory.rst,
freezer-subsystem.rst, pids.rst); runc's libcontainer/cgroups/fs (the same layout).
"""

from __future__ import annotations

import errno
import os

from pycontain.cgroups import controllers
from pycontain.cgroups.base import Cgroup
from pycontain.cgroups.files import (
    attach,
    make_dir,
    read_file,
    remove_dir,
    write_file,
)
from pycontain.cgroups.layout import Layout
from pycontain.errors import CgroupError


def _needed(wanted: tuple[str, ...]) -> set[str]:
    return set(wanted) | set(controllers.v1_companions(wanted)) | {"freezer"}


def _inherit(controller: str, path: str) -> None:
    """Copy into a new cgroup what v1 leaves empty and refuses tasks without: cpuset.cpus
    and cpuset.mems, from the parent (`V1_INHERIT` of the controller; lesson 18)."""
    module = controllers.MODULES.get(controller)
    for knob in getattr(module, "V1_INHERIT", ()):
        file = controllers.v1_file(knob) or knob
        parent = read_file(os.path.join(os.path.dirname(path), file)).strip()
        write_file(os.path.join(path, file), parent)


class V1Cgroup(Cgroup):
    """A cgroup made of one directory per v1 hierarchy (and one in the hybrid cgroup2 tree)."""

    version = 1

    @classmethod
    def create(cls, name: str, wanted: tuple[str, ...], layout: Layout,
               parent: str | None) -> V1Cgroup:
        dirs: dict[str, str] = {}
        for controller in sorted(_needed(wanted)):
            h = layout.hierarchy(controller)
            if h is None or h.version != 1:
                if controller == "freezer":
                    continue  # optional: cgroup.kill in the unified tree does the killing
                if controller in controllers.v1_companions(wanted):
                    continue  # optional: only reading its files fails, naming the hierarchy
                raise CgroupError(f"failed to create cgroup {name!r}: no v1 hierarchy has the "
                                  f"{controller} controller", errno.ENOENT,
                                  hint="mount it, or use the lab VM (cgroup v2) (lesson 12)")
            if h.mount not in dirs.values():  # co-mounted controllers (cpu,cpuacct) share one
                dirs[controller] = os.path.join(h.path(parent) if parent else h.own_dir, name)
        if layout.unified is not None:
            u = layout.unified
            dirs["unified"] = os.path.join(u.path(parent) if parent else u.own_dir, name)
        made = []
        try:
            for path in dirs.values():
                make_dir(path)
                made.append(path)
            for controller, path in dirs.items():
                _inherit(controller, path)
        except CgroupError:
            for path in reversed(made):
                remove_dir(path)
            raise
        return cls(name, dirs, layout)

    def _dir(self, controller: str) -> str:
        if controller not in self.dirs:  # co-mounted (cpu,cpuacct): the one directory of both
            h = self.layout.hierarchy(controller)
            for key, path in self.dirs.items():
                if h is not None and controllers.v1_name(key) in h.controllers:
                    return path
        try:
            return self.dirs[controller]
        except KeyError:
            raise CgroupError(f"cgroup {self.name} has no {controller} hierarchy",
                              errno.ENOENT, hint="create it with that controller: "
                              f"cgroups.create([{controller!r}, ...]) (lesson 12)") from None

    def file(self, knob: str) -> str:
        if knob.startswith("cgroup."):
            core = self.dirs.get("unified", next(iter(self.dirs.values())))
            return os.path.join(core, knob)
        v1 = controllers.v1_file(knob)
        if v1 is None:
            raise CgroupError(f"{knob} has no cgroup v1 equivalent", errno.EOPNOTSUPP,
                              hint=f"{controllers.v2_only(knob)} (lesson 12)")
        return os.path.join(self._dir(controllers.controller_of(knob)), v1)

    def attach(self, pid: int) -> None:
        attach(self.dirs.values(), pid)

    def read(self, knob: str) -> str:
        if knob.startswith("cgroup."):
            return read_file(self.file(knob)).strip()
        self.file(knob)  # refuses a v2-only knob with its reason
        return controllers.read_v1(knob, self._read_v1_file)

    def read_keyed(self, knob: str) -> dict[str, int]:
        self.file(knob)
        return controllers.keyed_from_v1(knob, self._read_v1_file)

    def _read_v1_file(self, file: str) -> str:
        return read_file(self.v1_path(file))

    def v1_path(self, file: str) -> str:
        """Where a v1 file is: in the hierarchy its name says (`cpuacct.usage`: cpuacct's,
        `blkio.throttle.io_service_bytes`: the io controller's, blkio). A CgroupError when this
        cgroup has no directory there."""
        return os.path.join(self._dir(controllers.controller_of(file)), file)

    def set(self, settings: dict[str, str]) -> None:
        try:
            writes = controllers.to_v1(settings)
        except ValueError as e:
            raise CgroupError(f"failed to set {', '.join(settings)}", errno.EOPNOTSUPP,
                              hint=f"{e} (lesson 12)") from None
        for controller, file, value in writes:
            write_file(os.path.join(self._dir(controller), file), value)

    def freezer_file(self) -> tuple[str, int]:
        """The unified tree's cgroup.freeze on a hybrid host (one freezer for every kernel
        file it has), else v1's freezer.state."""
        if "unified" in self.dirs and os.path.exists(self.file("cgroup.freeze")):
            return self.file("cgroup.freeze"), 2
        return os.path.join(self._dir("freezer"), "freezer.state"), 1
