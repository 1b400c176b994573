"""The lab: is this machine ready, and what did we create on it (lesson 00).

`preflight()` checks what the lessons need and says how to fix what is missing. `Lab` is the
notebook's safety net: every resource a lesson creates registers an undo, and `close()` runs them
newest-first, keeps going when one fails (a warning ending in ", ignoring"), and can run twice
(`pycontain.undo.UndoStack`, which every container keeps too).
Everything pycontain creates is named `pycontain-…`, so `sweep()` (and `pycontain cleanup`) can
find and remove leftovers after a crash without touching anything else.

A lesson's clean-up cell is often never reached: "Run All" stops at the first failing check. So
a `Lab` also closes when its process exits (atexit: a Jupyter kernel runs the handlers when it is
shut down or restarted), and every new `Lab` removes the temp dirs of Labs whose process is gone
(killed, crashed): their names end in `.pid<owner>`, and a live owner's are never touched.

See also: namespaces(7), cgroups(7), the lab VM in vagrant/ (DESIGN §4, §7).
"""

from __future__ import annotations

import atexit
import os
import sys
from collections import namedtuple

from pycontain.errors import PreflightError
from pycontain.settings import ALLOW_HOST_VARIABLE, PREFIX, host_allowed
from pycontain.undo import UndoStack

# Every container start calls `require_ready()`, so this module imports almost nothing at the top:
# the `pycontain` command pays for each import before its container starts (bench/). What only
# the notebook's Lab, the preflight table or the sweep need is imported inside those functions.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from pathlib import Path
    from typing import Any

    from pycontain.cgroups.layout import Layout


#: written by vagrant/provision.sh; its presence means "this is the throw-away lab VM"
LAB_MARKER = "/etc/pycontain/lab-vm"

GET_INTO_THE_VM = (
    "the lessons change kernel state as root, so they run inside the throw-away lab VM: "
    "`cd vagrant && vagrant up`, then open the URL it prints (README, 'Start the lab'); "
    f"to run on this machine anyway, `export {ALLOW_HOST_VARIABLE}=1` in the shell that then "
    "starts `make lab` (set in a Jupyter terminal, it never reaches a running notebook)"
)


class Check(namedtuple("Check", "name ok detail fix required", defaults=("", True))):
    """One line of the preflight table: `name`, `ok`, `detail` (what this machine has), `fix`,
    and `required` (False: the lab works without it, some experiments do not)."""

    __slots__ = ()


def in_lab_vm() -> bool:
    return os.path.exists(LAB_MARKER)


def require_ready(user_namespace: bool = False) -> None:
    """The cheap checks every container start makes: root, and the lab VM (or permission).

    Without root only a rootless container starts: one with a user namespace, whose new
    root may then create the other namespaces (lesson 09)."""
    if os.geteuid() != 0 and not user_namespace:
        raise PreflightError(
            f"pycontain needs root to create namespaces (running as uid {os.geteuid()})",
            hint="inside the lab VM the notebooks already run as root; on the command line use "
                 "`sudo` (lesson 00), or run rootless with `--user-namespace` (lesson 09)")
    if not (in_lab_vm() or host_allowed()):
        raise PreflightError("this machine is not the pycontain lab VM", hint=GET_INTO_THE_VM)


def cgroup_mode(layout: Layout | None = None) -> str:
    """'v2' (unified), 'hybrid' (v1 controllers plus a cgroup2 mount) or 'v1': the mode of
    `layout`, by default what `cgroups.detect()` finds mounted for this process."""
    from pycontain.cgroups.layout import detect

    return (layout or detect()).mode


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def preflight() -> list[Check]:
    """Every check, in the order a newcomer should fix them."""
    from pycontain import procfs
    from pycontain.fs import rootfs  # lab sits below rootfs only for this report

    checks = []
    uid = os.geteuid()
    checks.append(Check("root", uid == 0, f"running as uid {uid}",
                        "run as root: the lab VM's Jupyter does; elsewhere use sudo "
                        "(without root only rootless runs work: `pycontain run "
                        "--user-namespace`, no limits)"))
    lab = in_lab_vm()
    checks.append(Check(
        "lab VM", lab or host_allowed(),
        "inside the lab VM" if lab else
        (f"not the lab VM, allowed by {ALLOW_HOST_VARIABLE}=1" if host_allowed()
         else "not the lab VM"),
        GET_INTO_THE_VM))
    checks.append(Check("Python", sys.version_info >= (3, 11), sys.version.split()[0],
                        "install Python 3.11 or newer"))
    kernel = os.uname().release
    checks.append(Check("Linux kernel", _kernel_at_least(kernel, (5, 6)), kernel,
                        "use a kernel >= 5.6 (time namespaces); the lab VM has 6.12"))
    have = procfs.namespaces("self")
    missing = [t for t in procfs.NAMESPACE_TYPES if t not in have]
    checks.append(Check("namespaces", not missing,
                        "all 8 types" if not missing else f"missing: {', '.join(missing)}",
                        "use a kernel built with CONFIG_*_NS (the lab VM's is)"))
    max_userns = _read("/proc/sys/user/max_user_namespaces") or "0"
    checks.append(Check("user namespaces", max_userns != "0",
                        f"max_user_namespaces = {max_userns}",
                        "sysctl -w user.max_user_namespaces=15000", required=False))
    from pycontain.cgroups.layout import detect

    layout = detect()
    checks.append(Check("cgroups", True, f"{cgroup_mode(layout)} ({_cgroup_detail(layout)})",
                        "v1, hybrid and v2 all work; the lab VM is v2"))
    checks.append(_rootfs_check(rootfs.status()))
    busybox = rootfs.find_busybox()
    checks.append(Check("busybox", busybox is not None, busybox or "not installed",
                        "apt-get install busybox-static (otherwise host binaries are used)",
                        required=False))
    return checks


def fixes() -> list[tuple[str, str]]:
    """Every (line, fix) the preflight table can print, in its order: the instructor guide's
    "when something goes wrong" table (tools/guide.py). The rootfs line has a fix per state,
    whatever state this machine's is in."""
    from pycontain.fs.embedded import Status

    found = []
    for check in preflight():
        if check.name == "embedded rootfs":
            for state in ("missing", "stale", "foreign"):
                found.append((check.name, _rootfs_check(Status(state, "")).fix))
        else:
            found.append((check.name, check.fix))
    return found


def _rootfs_check(found: Any) -> Check:
    """The embedded rootfs line. Missing only warns: lessons 00-04 never need it and `make lab`
    builds it. Stale fails: lessons 05 and 08 would break on it in ways that name neither the
    rootfs nor the fix. A tree pycontain did not build is used as it is, with a warning."""
    fix = {"stale": "run `pycontain rootfs`: it builds the rootfs again (make lab and make test "
                    "do)",
           "foreign": "unset PYCONTAIN_ROOTFS, or point it at a new directory and run "
                      "`pycontain rootfs`"}.get(found.state, "run `pycontain rootfs` (make lab "
                                                             "does)")
    detail = found.why if found.state != "stale" else f"stale: {found.why}"
    return Check("embedded rootfs", found.state == "ready", detail, fix,
                 required=found.state == "stale")


def _cgroup_detail(layout: Layout) -> str:
    unified = layout.unified
    if layout.mode == "v2" and unified is not None:
        return "unified hierarchy, " + (" ".join(unified.controllers) or "none")
    if layout.mode == "hybrid" and unified is not None:
        return f"v1 controllers, cgroup2 at {unified.mount}"
    return "v1 controllers"


def _kernel_at_least(release: str, wanted: tuple[int, int]) -> bool:
    """
    >>> _kernel_at_least("6.12.0-1-amd64", (5, 6)), _kernel_at_least("4.19.0", (5, 6))
    (True, False)
    """
    parts = release.split("-")[0].split(".")
    try:
        return (int(parts[0]), int(parts[1])) >= wanted
    except (IndexError, ValueError):
        return False


def ready(checks: list[Check]) -> bool:
    return all(c.ok for c in checks if c.required)


def render(checks: list[Check]) -> str:
    """The preflight table as text: one line per check, the fix under each failed one."""
    lines = []
    for c in checks:
        mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
        lines.append(f"{mark}  {c.name:<16} {c.detail}")
        if not c.ok:
            lines.append(f"{'':6}{'':16} fix: {c.fix}")
    lines.append("ready" if ready(checks) else "NOT ready: fix the FAIL lines above")
    return "\n".join(lines)


#: how a `Lab.tempdir()` name ends, followed by the pid of the process whose Lab made it
OWNER = ".pid"
#: every Lab of this process not closed yet: closed, newest first, when the process exits
_OPEN: list[Lab] = []


def _close_open_labs() -> None:
    for lab in reversed(_OPEN[:]):
        if lab._pid == os.getpid():  # a forked child that exits must not undo its parent's work
            lab.close()


atexit.register(_close_open_labs)


def owner(name: str) -> int | None:
    """The pid that made a `Lab.tempdir()` of this name, or None for any other name.

    >>> owner("pycontain-scratch-k2j3h4a1.pid4242"), owner("pycontain-layer-0a1b2c3d4e")
    (4242, None)
    """
    pid = name.rpartition(OWNER)[2] if OWNER in name else ""
    return int(pid) if pid.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def sweep_orphans() -> list[str]:
    """Remove the temp dirs of Labs whose process has ended, and fork servers that outlived
    their owner; return what was removed.

    A dir whose owner still runs (another notebook) is kept. A pid reused since only keeps a dir
    longer, never removes a live one. Mounts below a dir are detached first: rmtree would
    otherwise delete what a bind mount shows (lesson 04 mounts inside its temp dir).
    """
    import tempfile
    from pathlib import Path

    from pycontain.fs import loop
    from pycontain.namespaces import mnt

    removed = []
    for path in sorted(Path(tempfile.gettempdir()).glob(f"{PREFIX}*{OWNER}*")):
        pid = owner(path.name)
        if pid is None or not path.is_dir() or _alive(pid):
            continue
        try:
            for mount_point in mnt.leftover_mounts():  # children before their parents
                if mount_point == str(path) or mount_point.startswith(f"{path}/"):
                    mnt.remove_mount(mount_point)
            for device in loop.leftover_loops(under=str(path)):  # lesson 16's disk, unmounted
                loop.remove_loop(device)
            remove_dir(str(path))
            removed.append(f"removed dir {path}")
        except Exception as e:  # report and go on, like Lab.close()
            removed.append(f"could not remove dir {path}: {e}, ignoring")
    from pycontain import forkserver

    for server in forkserver.leftover_servers():  # its owner ended: an orphan by definition
        try:
            forkserver.remove_server(server)
            removed.append(f"removed forkserver {server}")
        except Exception as e:
            removed.append(f"could not remove forkserver {server}: {e}, ignoring")
    return removed


class Lab:
    """A lesson's safety net: preflight on creation, and an undo stack for what it creates.

    >>> lab = Lab(check=False)
    >>> lab.defer(lambda: print("undone"), "say undone")
    >>> lab.close()
    undone
    >>> lab.close()  # idempotent
    """

    def __init__(self, *, check: bool = True) -> None:
        self.checks = preflight() if check else []
        if check and not ready(self.checks):
            failed = [c for c in self.checks if c.required and not c.ok]
            raise PreflightError(
                "the lab is not ready: " + "; ".join(f"{c.name} ({c.detail})" for c in failed),
                hint=failed[0].fix + " (lesson 00)")
        self._undo = UndoStack()
        self._pid = os.getpid()
        #: what this Lab removed on creation: temp dirs of Labs whose process is gone
        self.swept = sweep_orphans()
        _OPEN.append(self)

    def defer(self, undo: Callable[[], object], what: str) -> None:
        """Register `undo`, to run at `close()`; `what` names it in warnings."""
        self._undo.defer(undo, what)

    def pending(self) -> list[str]:
        """What `close()` will undo, by the words given to `defer`, newest (first undone) first."""
        return self._undo.pending()

    def tempdir(self, name: str = "") -> Path:
        """A fresh `/tmp/pycontain-….pid<this process>` directory, removed at `close()`, at exit,
        or by the next `Lab` once this process is gone."""
        import shutil
        import tempfile
        from pathlib import Path

        path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{name}{'-' if name else ''}",
                                     suffix=f"{OWNER}{os.getpid()}"))
        self.defer(lambda: shutil.rmtree(path, ignore_errors=True), f"remove {path}")
        return path

    def close(self) -> None:
        """Undo everything, newest first; a failing step is reported and skipped."""
        if self in _OPEN:
            _OPEN.remove(self)
        self._undo.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _repr_html_(self) -> str:
        return table(self.checks)._repr_html_()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(render(self.checks) if self.checks else "Lab(check=False)")


class Table:
    """The preflight table: coloured HTML in Jupyter, `render()`'s text everywhere else."""

    COLOURS = {"ok": "#e6f4ea", "FAIL": "#fce8e6", "warn": "#fef7e0"}  # green, red, yellow
    #: the fix column of a green line: said, so that an empty cell never reads as a missing fix
    NOTHING_TO_DO = "nothing to do"

    def __init__(self, checks: list[Check]) -> None:
        self.checks = checks

    def __repr__(self) -> str:
        return render(self.checks)

    def _repr_html_(self) -> str:
        from html import escape

        rows = []
        for c in self.checks:
            mark = "ok" if c.ok else ("FAIL" if c.required else "warn")
            icon = {"ok": "✅", "FAIL": "❌", "warn": "⚠️"}[mark]
            rows.append(
                f'<tr style="background:{self.COLOURS[mark]};color:#202124"><td>{icon}</td>'
                f"<td>{escape(c.name)}</td><td>{escape(c.detail)}</td>"
                f"<td>{self.NOTHING_TO_DO if c.ok else escape(c.fix)}</td></tr>")
        verdict = ("ready" if all(c.ok for c in self.checks) else
                   "ready (the ⚠️ lines are optional)" if ready(self.checks) else
                   "NOT ready: fix the ❌ lines")
        return ('<table><caption style="text-align:left">preflight: '
                f"{verdict}</caption><tr><th></th><th>check</th><th>this machine</th>"
                f"<th>fix</th></tr>{''.join(rows)}</table>")


def table(checks: list[Check] | None = None) -> Table:
    """The preflight table for `checks` (default: a fresh `preflight()`), ready to display.

    >>> table([Check("root", True, "running as uid 0"), Check("busybox", False, "not installed",
    ...                                                        "apt-get install busybox-static",
    ...                                                        required=False)])
    ok    root             running as uid 0
    warn  busybox          not installed
                           fix: apt-get install busybox-static
    ready
    """
    return Table(preflight() if checks is None else checks)


class Kind(namedtuple("Kind", "name find remove")):
    """One kind of leftover: its `name`, the first word of each item `leftovers()` lists;
    `find()`, the targets there are now (paths, names, ids); `remove(target)`."""

    __slots__ = ()


def kinds() -> list[Kind]:
    """Every kind of leftover, each found and removed by the concept that makes it, in the
    order `sweep()` removes them: detached containers first (killed, then what their state
    records released: cgroup, veth, layer), mounts (children first) before the directories
    they are in, cgroups deepest first, the bridge's state (the bridge, ip_forward) before its
    nft table."""
    from pycontain import forkserver, state
    from pycontain.cgroups import base
    from pycontain.fs import loop
    from pycontain.namespaces import ipc, mnt, net
    from pycontain.network import bridge, nft

    return [Kind("forkserver", forkserver.leftover_servers, forkserver.remove_server),
            Kind("container", state.leftover_containers, state.remove_container),
            Kind("mount", mnt.leftover_mounts, mnt.remove_mount),
            Kind("loop", loop.leftover_loops, loop.remove_loop),  # lesson 16
            Kind("dir", leftover_dirs, remove_dir),
            Kind("netns", net.leftover_netns, net.remove_netns),
            Kind("link", net.leftover_links, net.remove_link),
            Kind("cgroup", base.leftover_cgroups, base.remove_cgroup),
            Kind("shm", ipc.leftover_segments, ipc.remove_segment),
            Kind("mqueue", ipc.leftover_queues, ipc.remove_queue_file),
            Kind("netstate", bridge.leftover_state, bridge.remove_state),
            Kind("nft", nft.leftover_tables, nft.remove_table)]


def leftover_dirs() -> list[str]:
    """Directories `pycontain-…` in the temp dir: `Lab.tempdir()`s, throw-away overlay layers
    (`fs.layers`), the checks' scratch directories."""
    import tempfile
    from pathlib import Path

    return [str(p) for p in sorted(Path(tempfile.gettempdir()).glob(f"{PREFIX}*"))]


def remove_dir(path: str) -> None:
    """Remove a directory tree. `sweep()` has unmounted what was mounted in it (the mounts come
    first), so rmtree never deletes what a bind mount shows."""
    import shutil

    shutil.rmtree(path)


def leftovers() -> list[str]:
    """Everything named `pycontain-…` still on this machine: mounts, temp dirs, netns, links,
    cgroups below this process's own cgroup, and in this IPC namespace SysV segments with a
    pycontain key (0x7063xxxx) and POSIX queues `/pycontain-…` (where /dev/mqueue is mounted);
    the bridge network's saved state and its nft table `ip pycontain`; detached containers'
    run directories (`state`) and names left without one. One line each, the kind
    first: `dir /tmp/pycontain-…` (see `kinds()`)."""
    return [f"{kind.name} {target}" for kind in kinds() for target in kind.find()]


def sweep(only: Collection[str] | None = None) -> list[str]:
    """Remove every `pycontain-` leftover, or only those of `only` (lines as `leftovers()`
    writes them; the grader passes what one submission left); return what was removed (and
    what could not be)."""
    remove = {kind.name: kind.remove for kind in kinds()}
    report = []
    def chosen() -> list[str]:
        return [item for item in leftovers() if only is None or item in only]

    items = chosen()
    if any(item.startswith("container ") for item in items):
        # removing a container releases its cgroup, veth and layer: list the rest afterwards
        report += _remove([item for item in items if item.startswith("container ")], remove)
        items = [item for item in chosen() if not item.startswith("container ")]
    return report + _remove(items, remove)


def _remove(items: list[str], remove: dict[str, Callable[[str], object]]) -> list[str]:
    report = []
    for item in items:
        name, _, target = item.partition(" ")
        try:
            remove[name](target)
            report.append(f"removed {item}")
        except Exception as e:  # report and go on, like Lab.close()
            report.append(f"could not remove {item}: {e}, ignoring")
    return report
