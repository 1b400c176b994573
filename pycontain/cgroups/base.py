"""The interface both cgroup managers implement, and the behaviour they share (lesson 12).

`Cgroup` is one cgroup pycontain created, whatever the version: `cgroups.v1.V1Cgroup` spans one
directory per hierarchy, `cgroups.v2.V2Cgroup` is one directory. Knobs are named the v2 way.
Freezing (lesson 19) is one method for both: each manager only says where its freezer is.
Removal follows runc: kill (cgroup.kill, or freeze -> SIGKILL each -> thaw), wait until empty,
rmdir depth-first. See also: the kernel's cgroup-v2.rst ("Core Interface Files").
"""

from __future__ import annotations

import _signal as signal  # without its enums: every delete and run with limits loads this
import errno as errno_module
import os
import time
from collections.abc import Callable

from pycontain import settings
from pycontain.cgroups.controllers import freezer
from pycontain.cgroups.events import populated, wait_for, wait_until_empty
from pycontain.cgroups.files import procs, read_file, remove_dir, walk_up, write_file
from pycontain.cgroups.layout import ROOT
from pycontain.errors import CgroupError, hint_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pycontain.cgroups.layout import Layout


#: the cgroups this process created (`create()`) and has not removed yet, oldest first
_UNREMOVED: list[Cgroup] = []


def made(cgroup: Cgroup) -> Cgroup:
    """Record `cgroup`, just created by this process, until its `remove()`."""
    _UNREMOVED.append(cgroup)
    return cgroup


def unremoved() -> list[Cgroup]:
    """The cgroups this process created and has not removed, oldest first: what a check
    removes after a learner's function raised (as `runtime.unwaited()` for containers)."""
    return list(_UNREMOVED)


class Cgroup:
    """A cgroup pycontain created: one directory on v2, one per hierarchy on v1.

    Knobs are named the v2 way on both versions (`memory.max`, `pids.events`). Every method
    works on v1 and v2 alike; `cgroups.v1.V1Cgroup` and `cgroups.v2.V2Cgroup` implement them.
    """

    version = 0

    def __init__(self, name: str, dirs: dict[str, str], layout: Layout) -> None:
        self.name = name
        self.dirs = dirs  # hierarchy key ('memory', 'pids', 'unified', or '' on v2) -> directory
        self.layout = layout
        self.removed = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {sorted(self.dirs.values())}>"

    # what each manager provides
    def attach(self, pid: int) -> None:
        """Move process `pid` (not its threads' peers elsewhere) into this cgroup."""
        raise NotImplementedError

    def file(self, knob: str) -> str:
        """The path of the file that holds `knob` here (v1: translated)."""
        raise NotImplementedError

    def read(self, knob: str) -> str:
        """`knob`'s value as v2 shows it (`max` for no limit)."""
        raise NotImplementedError

    def read_keyed(self, knob: str) -> dict[str, int]:
        """A keyed file (`memory.events`, `pids.events`) as a dict."""
        raise NotImplementedError

    def set(self, settings: dict[str, str]) -> None:
        """Write v2 `settings` ({'memory.max': '33554432'}), translated and ordered for v1."""
        raise NotImplementedError

    def freezer_file(self) -> tuple[str, int]:
        """The file that freezes this cgroup, and its version: `cgroup.freeze` (2; on a hybrid
        host in the unified tree) or v1's `freezer.state` (1)."""
        raise NotImplementedError

    # shared behaviour
    def view(self) -> dict[str, str]:
        """This cgroup as a container sees it at /sys/fs/cgroup (`fs.rootfs.mount_cgroups`):
        each hierarchy's name there ('memory', 'unified'; '' when the one v2 tree is all of
        /sys/fs/cgroup) -> this cgroup's directory in it (lesson 20)."""
        shown = {}
        for path in self.dirs.values():
            mount = max((h.mount for h in self.layout.hierarchies
                         if path.startswith(h.mount.rstrip("/") + "/")), key=len)
            name = os.path.relpath(mount, ROOT) if mount.startswith(ROOT) else \
                os.path.basename(mount)
            shown["" if name == "." else name] = path
        return shown

    def write(self, knob: str, value: str | int) -> None:
        """Write one knob (named the v2 way)."""
        self.set({knob: str(value)})

    def populated(self) -> bool:
        """Whether any process is in the cgroup or below it (`events.populated`)."""
        return any(populated(path) for path in self._watched())

    def _watched(self) -> list[str]:
        """The directories that say whether the cgroup is empty: its cgroup2 one if it has one
        (all of v2; the hybrid host's unified tree, whose `cgroup.events` notifies), else every
        v1 directory."""
        if "unified" in self.dirs:
            return [self.dirs["unified"]]
        return list(self.dirs.values())

    def procs(self) -> list[int]:
        """The PIDs in this cgroup (not in its children), from the first hierarchy."""
        return sorted({p for d in self.dirs.values() for p in procs(d)})

    def wait_empty(self, timeout_s: float = 5.0) -> None:
        """Wait until no process is left (`events.wait_until_empty`: an event where the cgroup
        has a cgroup2 directory, a poll of every v1 directory otherwise)."""
        deadline = time.monotonic() + timeout_s
        try:
            for path in self._watched():
                wait_until_empty(path, timeout_s=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise CgroupError(f"cgroup {self.name} still has processes {self.procs()} "
                              f"after {timeout_s} s", errno_module.EBUSY,
                              hint_for("rmdir", errno_module.EBUSY)) from None

    def wait_for_event(self, knob: str, key: str, timeout_s: float = 10.0) -> dict[str, int]:
        """Read the keyed file `knob` until its `key` counts at least one event; return it.

        Polling every 10 ms keeps it simple; lesson 14's monitor waits on the kernel instead.
        """
        deadline = time.monotonic() + timeout_s
        while (found := self.read_keyed(knob)).get(key, 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        return found

    def sample(self, knob: str, *, every_s: float = 0.02, duration_s: float = 5.0,
               stop: Callable[[], bool] | None = None) -> tuple[list[float], list[int]]:
        """Read the counter `knob` (`pids.current`) every `every_s` for at most `duration_s`,
        or until `stop()` says so; return the times (s since the first read) and the values."""
        times: list[float] = []
        values: list[int] = []
        start = time.monotonic()
        while (now := time.monotonic() - start) <= duration_s:
            try:
                values.append(int(self.read(knob)))
            except (CgroupError, ValueError):
                break  # the cgroup went away
            times.append(now)
            if stop is not None and stop():
                break
            time.sleep(max(0.0, start + len(times) * every_s - time.monotonic()))
        return times, values

    # the freezer (lesson 19), the same on both versions but for the file's name and values
    def freeze(self, timeout_s: float = 5.0) -> None:
        """Stop every process in the cgroup and below; return once the kernel says all are
        stopped (`cgroup.events` frozen 1, an event; v1: `freezer.state` FROZEN, polled).

        Raises:
            CgroupError: not all were stopped within `timeout_s`; the cgroup is thawed again.
        """
        path, version = self._ask_frozen(True)
        done = os.path.join(os.path.dirname(path), freezer.DONE_FILE[version])
        try:
            wait_for(done, lambda text: freezer.frozen(text, version), timeout_s=timeout_s,
                     poll_s=0.005)
        except TimeoutError as e:
            self.thaw()
            raise CgroupError(f"cgroup {self.name} did not freeze within {timeout_s} s",
                              errno_module.ETIMEDOUT,
                              hint=f"{e}; a task in an uninterruptible sleep (state D) cannot "
                                   "be frozen until it wakes: try again (lesson 19)") from None

    def frozen(self) -> bool:
        """Whether every process in the cgroup is stopped (not merely asked to stop)."""
        path, version = self.freezer_file()
        done = os.path.join(os.path.dirname(path), freezer.DONE_FILE[version])
        return freezer.frozen(read_file(done), version)

    def thaw(self) -> None:
        """Let every process in the cgroup run again, where it stopped."""
        self._ask_frozen(False)

    def _ask_frozen(self, wanted: bool) -> tuple[str, int]:
        path, version = self.freezer_file()
        value = "1" if wanted else "0"
        write_file(path, value if version == 2 else
                   freezer.to_v1({"cgroup.freeze": value})[0][1])
        return path, version

    def kill(self) -> None:
        """SIGKILL every process in the cgroup and below, including those forking right now:
        one write to `cgroup.kill` (v2 and the hybrid host's unified tree, Linux >= 5.14),
        else freeze, SIGKILL each, thaw."""
        kill = self.file("cgroup.kill")
        if os.path.exists(kill):
            write_file(kill, 1)
        else:
            self.kill_by_freezing()

    def kill_by_freezing(self) -> None:
        """Kill without cgroup.kill: freeze (no more forks), SIGKILL each process, thaw.

        A frozen process cannot fork, so the list of PIDs cannot grow while we go through it;
        SIGKILL is delivered once the processes are thawed (runc does the same on v1).
        """
        self.freeze()
        try:
            for pid in sorted({p for top in self.dirs.values() for d in walk_up(top)
                               for p in procs(d)}):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        finally:
            self.thaw()

    def remove(self, timeout_s: float = 5.0) -> None:
        """Kill what is left, wait until empty, rmdir depth-first in every hierarchy. Idempotent."""
        if self.removed:
            return
        if any(os.path.isdir(d) for d in self.dirs.values()):
            if self.populated():
                self.kill()
                self.wait_empty(timeout_s)
            for top in self.dirs.values():
                if os.path.isdir(top):
                    for path in walk_up(top):
                        _rmdir_when_released(path, timeout_s)
        self.removed = True
        if self in _UNREMOVED:
            _UNREMOVED.remove(self)

    def __enter__(self) -> Cgroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _rmdir_when_released(path: str, timeout_s: float) -> None:
    """rmdir, retrying EBUSY for a moment: an exited task leaves its cgroup a little later."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return remove_dir(path)
        except CgroupError as e:
            if e.errno != errno_module.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


# --- leftovers: what `pycontain cleanup` finds and removes --------------------------------------

def leftover_cgroups(layout: Layout | None = None) -> list[str]:
    """`pycontain-` cgroups beneath this process's own cgroup in every hierarchy `detect()`
    finds, and beneath `$PYCONTAIN_CGROUP_PARENT` (where the lab VM's delegated service puts
    them); deepest first, the order rmdir(2) needs. `pycontain-self` holds a caller that moved
    there (v2 delegation): not a leftover."""
    from pycontain.cgroups.layout import detect

    layout = layout or detect()
    found: set[str] = set()
    for hierarchy in layout.hierarchies:
        for start in {hierarchy.own, settings.cgroup_parent()} - {None, ""}:
            for top, dirs, _ in os.walk(hierarchy.path(start)):
                found.update(os.path.join(top, d) for d in dirs
                             if d.startswith(settings.PREFIX) and d != settings.SELF_LEAF)
    return sorted(found, key=lambda path: (-path.count("/"), path))


def remove_cgroup(path: str, timeout_s: float = 5.0) -> None:
    """Remove one leftover `pycontain-` cgroup directory (`pycontain cleanup`): kill what is
    inside, wait until it is empty, rmdir. Its children must be gone already (deepest first).

    `pycontain-self` is never killed: it holds a caller that moved there (v2 delegation), such
    as a running notebook kernel; it is only removed once empty.
    """
    deadline = time.monotonic() + timeout_s
    if os.path.basename(path) != settings.SELF_LEAF:
        kill = os.path.join(path, "cgroup.kill")
        while True:
            if os.path.exists(kill):
                write_file(kill, 1)
            else:  # v1: no cgroup.kill; SIGKILL each, again if a fork slipped through
                for pid in procs(path):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            try:
                wait_until_empty(path, timeout_s=min(0.5, max(0.0, deadline - time.monotonic())))
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
    _rmdir_when_released(path, max(0.0, deadline - time.monotonic()))
