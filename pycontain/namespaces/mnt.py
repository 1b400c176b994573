"""Mount namespace: a private list of mounts, and how mounts propagate between lists (lesson 04).

A mount namespace isolates the list of mount points a process sees (`/proc/<pid>/mountinfo`).
unshare(2) with `CLONE_NEWNS` gives the caller a *copy* of its parent's list, and each copied
mount keeps its *propagation type*: a `shared` mount is in a peer group (`shared:N`) whose
members pass every mount and unmount below them to each other, even across namespaces; a
`slave` (`master:N`) receives from its master's group but sends nothing back; a `private`
mount neither sends nor receives; an `unbindable` one is private and cannot be bind-mounted
either. So a fresh namespace is not yet private: a mount made in it beneath a shared mount
appears on the host, which is why `pycontain.init` makes every mount private first.

The demonstration helpers (`share`, `mount_tmpfs`, `release`, `experiment`) mount only inside
pycontain's own temporary directories (`/tmp/pycontain-*`), and they run in processes other than
the caller's: the notebook itself never calls mount(2) or unshare(2).

See also: mount_namespaces(7), mount(2) ("Changing the propagation type of an existing mount"),
umount2(2), unshare(2), proc_pid_mountinfo(5), findmnt(8),
Documentation/filesystems/sharedsubtree.rst.
Left out: the new mount API (open_tree(2), move_mount(2), mount_setattr(2)), MS_MOVE, idmapped
mounts, and the locked mounts of less privileged namespaces (lesson 09).
"""

from __future__ import annotations

import html
import os
import subprocess
from dataclasses import dataclass

from pycontain import helper, procfs, syscalls
from pycontain.errors import SpecError
from pycontain.procfs import Mount
from pycontain.settings import PREFIX
from pycontain.syscalls import CloneFlag, MountFlag, UmountFlag

#: the propagation types of mount(2), each with the flag that sets it (a MountFlag)
PROPAGATION_FLAGS: dict[str, int] = {
    "shared": MountFlag.MS_SHARED,
    "private": MountFlag.MS_PRIVATE,
    "slave": MountFlag.MS_SLAVE,
    "unbindable": MountFlag.MS_UNBINDABLE,
}

#: where the experiment's two mounts go, inside the demonstration directory
FROM_BOX, FROM_HOST = "from-box", "from-host"


def propagation_flag(kind: str) -> MountFlag:
    """The mount(2) flag for a propagation type; SpecError for a type that does not exist.

    >>> propagation_flag("private")
    <MountFlag.MS_PRIVATE: 262144>
    """
    if kind not in PROPAGATION_FLAGS:
        raise SpecError("kind", f"one of {', '.join(map(repr, PROPAGATION_FLAGS))}", kind,
                        hint="these are the four propagation types of mount_namespaces(7) "
                             "(lesson 04)")
    return MountFlag(PROPAGATION_FLAGS[kind])


def set_propagation(path: str, kind: str, *, recursive: bool = False) -> None:
    """Change the propagation type of the mount at `path` (with `recursive`: of every mount below
    it too, MS_REC). `path` must be a mount point, or the kernel answers EINVAL."""
    flags = propagation_flag(kind) | (MountFlag.MS_REC if recursive else 0)
    syscalls.mount(None, path, None, flags)


def make_private(path: str = "/") -> None:
    """mount(NULL, path, NULL, MS_REC|MS_PRIVATE): nothing below `path` propagates any more."""
    set_propagation(path, "private", recursive=True)


def propagation(mount: Mount) -> str:
    """The propagation type of a mountinfo entry, from its optional fields (as findmnt -o
    PROPAGATION, but calling a mount that is only a slave `slave`).

    >>> line = "36 35 98:0 / /mnt rw master:1 - ext3 /dev/root rw"
    >>> propagation(Mount.parse(line)), propagation(Mount.parse(line.replace("master", "shared")))
    ('slave', 'shared')
    """
    kinds = [k for k, field in (("shared", "shared:"), ("slave", "master:"),
                                ("unbindable", "unbindable")) if any(
        p.startswith(field) for p in mount.propagation)]
    return ",".join(kinds) or "private"


def describe(mount: Mount | None) -> str:
    """One table cell: the propagation type with the kernel's own fields, or `-` when absent.

    >>> describe(Mount.parse("36 35 98:0 / /mnt rw shared:7 - tmpfs tmpfs rw"))
    'tmpfs, shared (shared:7)'
    """
    if mount is None:
        return "-"
    fields = " ".join(p for p in mount.propagation if p != "unbindable")
    return f"{mount.fstype}, {propagation(mount)}" + (f" ({fields})" if fields else "")


def mounts(pid: int | str = "self") -> dict[str, Mount]:
    """The mounts a process sees, by mount point; of mounts stacked on one point, the top one."""
    return {m.mount_point: m for m in procfs.mountinfo(pid)}


def find_mount(path: str | os.PathLike[str], pid: int | str = "self") -> Mount | None:
    """The mount at exactly `path` as process `pid` sees it, or None when `path` is no mount
    point there."""
    return mounts(pid).get(os.path.normpath(os.fspath(path)))


def is_mount_point(path: str | os.PathLike[str], pid: int | str = "self") -> bool:
    return find_mount(path, pid) is not None


# --- comparing two processes' mounts -------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """Rows of text under a header: plain text in a terminal, an HTML table in a notebook."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""

    def __repr__(self) -> str:
        """
        >>> Table(("kind", "leaks"), (("shared", "yes"), ("private", "no")), "two rows")
        kind     leaks
        shared   yes
        private  no
        (two rows)
        """
        lines = [self.header, *self.rows]
        widths = [max(len(r[i]) for r in lines) for i in range(len(self.header))]
        text = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                for r in lines]
        return "\n".join(text + ([f"({self.caption})"] if self.caption else []))

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td><code>{html.escape(c)}</code></td>" for c in r)
                       + "</tr>" for r in self.rows)
        small = f"<small>{html.escape(self.caption)}</small>" if self.caption else ""
        return f"<table><tr>{head}</tr>{body}</table>{small}"


@dataclass(frozen=True)
class MountDiff:
    """Where two processes' lists of mounts differ: what is mounted, or how it propagates."""

    labels: tuple[str, str]
    rows: tuple[tuple[str, Mount | None, Mount | None], ...]  # mount point, each side's mount
    same: int  # mount points with the same filesystem and propagation on both sides

    @property
    def only_first(self) -> list[str]:
        return [point for point, a, b in self.rows if b is None]

    @property
    def only_second(self) -> list[str]:
        return [point for point, a, b in self.rows if a is None]

    @property
    def changed(self) -> list[str]:
        return [point for point, a, b in self.rows if a is not None and b is not None]

    def table(self) -> Table:
        return Table(("mount point", *self.labels),
                     tuple((point, describe(a), describe(b)) for point, a, b in self.rows),
                     f"{self.same} other mount points are alike on both sides")

    def __repr__(self) -> str:
        return repr(self.table())

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


def _alike(a: Mount, b: Mount) -> bool:
    return (a.fstype, a.source, a.root, propagation(a)) == (b.fstype, b.source, b.root,
                                                            propagation(b))


def diff(first: int | str, second: int | str, labels: tuple[str, str] = ("host", "container"),
         *, under: str = "/") -> MountDiff:
    """Compare the mounts two processes see, mount point by mount point (only those at or below
    `under`): which only one side has, and which differ in filesystem or propagation type."""
    a, b = mounts(first), mounts(second)
    inside = os.path.normpath(under).rstrip("/") + "/"
    points = [p for p in [*a, *(p for p in b if p not in a)] if (p + "/").startswith(inside)]
    rows = tuple((p, a.get(p), b.get(p)) for p in points
                 if p not in a or p not in b or not _alike(a[p], b[p]))
    return MountDiff(labels, rows, len(points) - len(rows))


# --- leftovers: what `pycontain cleanup` finds and removes -----------------------------------

def leftover_mounts(mounts: list[Mount] | None = None) -> list[str]:
    """The mount points of this mount namespace whose path holds the `pycontain-` prefix, each
    child before its parent (the order they can be unmounted in); `mounts` default: mountinfo."""
    mounts = procfs.mountinfo("self") if mounts is None else mounts
    return [m.mount_point for m in reversed(mounts) if PREFIX in m.mount_point]


def remove_mount(mount_point: str) -> None:
    """umount2(2) with MNT_DETACH: gone from the tree now, released once nothing uses it."""
    syscalls.umount2(mount_point, UmountFlag.MNT_DETACH)


# --- the demonstration: everything inside /tmp/pycontain-* ----------------------------------


def demo_dir(path: str | os.PathLike[str]) -> str:
    """`path` resolved, if it is a directory inside a pycontain temporary directory; SpecError
    otherwise, before anything is mounted."""
    import tempfile

    real = os.path.realpath(path)
    parts = os.path.relpath(real, os.path.realpath(tempfile.gettempdir())).split(os.sep)
    if parts[0] == ".." or not parts[0].startswith(PREFIX) or not os.path.isdir(real):
        raise SpecError("path", f"an existing directory inside {tempfile.gettempdir()}/{PREFIX}*",
                        os.fspath(path),
                        hint="the demonstrations mount only inside pycontain's own temporary "
                             "directories, never elsewhere on the host; make one with "
                             "lab.tempdir() (lesson 04)")
    return real


def share(base: str) -> None:
    """Make the directory `base` a shared mount point with a peer group of its own: bind it onto
    itself (unless it is a mount point already), then MS_PRIVATE, then MS_SHARED."""
    base = demo_dir(base)
    if not is_mount_point(base):
        syscalls.mount(base, base, None, MountFlag.MS_BIND)
    # A bind of a shared mount joins its source's peer group (sharedsubtree.rst, "bind"): on a
    # systemd host, the group of `/` or `/tmp`. Leave it, so the demonstration stays ours alone.
    syscalls.mount(None, base, None, MountFlag.MS_PRIVATE)
    syscalls.mount(None, base, None, MountFlag.MS_SHARED)


def mount_tmpfs(path: str) -> None:
    """Mount a small tmpfs (1 MiB) on the directory `path`."""
    syscalls.mount("tmpfs", demo_dir(path), "tmpfs",
                   MountFlag.MS_NOSUID | MountFlag.MS_NODEV | MountFlag.MS_NOEXEC, "size=1m")


def release(base: str, keep_base: bool = False) -> None:
    """Unmount everything mounted below `base`, and `base` itself unless `keep_base`."""
    base = demo_dir(base)
    while True:  # one at a time: an unmount may propagate and take others with it
        found = [m.mount_point for m in procfs.mountinfo("self") if m.mount_point.startswith(
            base + "/") or (m.mount_point == base and not keep_base)]
        if not found:
            return
        syscalls.umount2(found[-1], UmountFlag.MNT_DETACH)  # children come after parents


def enter_box(base: str, kind: str) -> None:
    """What the box's process does: a new mount namespace, `base` made `kind` there, a mount."""
    base, _ = demo_dir(base), propagation_flag(kind)  # bad input: an error before any change
    syscalls.unshare(CloneFlag.CLONE_NEWNS)   # a copy of the host's mounts, propagation and all
    set_propagation(base, kind)               # only the box's copy of `base` changes
    mount_tmpfs(os.path.join(base, FROM_BOX))


def start_box(base: str, kind: str, *, timeout_s: float = 10.0) -> subprocess.Popen[str]:
    """Start a process that runs `enter_box(base, kind)` in a fresh interpreter, then waits;
    return it once its mount is made. Stop it with `stop_box`."""
    box, _ = helper.start(enter_box, base, kind, timeout_s=timeout_s)
    return box


def stop_box(box: subprocess.Popen[str]) -> None:
    """End the box and reap it: its mount namespace, and every mount only it had, go with it."""
    helper.stop(box)


@dataclass(frozen=True)
class Experiment:
    """What one run of `experiment` saw."""

    kind: str
    in_box: str       # the box's copy of `base`: filesystem and propagation
    box_to_host: bool  # the box's mount (on from-box) appeared on the host
    host_to_box: bool  # the host's mount (on from-host) appeared in the box
    outlived_box: bool  # the box's mount was still on the host after the box ended

    def __repr__(self) -> str:
        return repr(table([self]))

    def _repr_html_(self) -> str:
        return table([self])._repr_html_()


def table(experiments: list[Experiment]) -> Table:
    """Experiments side by side, one row each."""
    yes = {True: "yes", False: "no"}
    return Table(("kind", "base in the box", "box's mount seen by host",
                  "host's mount seen by box", "left on host after box ended"),
                 tuple((e.kind, e.in_box, yes[e.box_to_host], yes[e.host_to_box],
                        yes[e.outlived_box]) for e in experiments))


def experiment(base: str | os.PathLike[str], kind: str) -> Experiment:
    """Start a box whose copy of the shared mount `base` is made `kind`; the box mounts a tmpfs on
    base/from-box, the host one on base/from-host; look at both sides; undo every mount.

    Raises:
        SpecError: `kind` is not a propagation type, or `base` is not a shared mount point inside
            /tmp/pycontain-* (call `share(base)` in another process first); nothing was mounted.
    """
    base, _ = demo_dir(base), propagation_flag(kind)
    host_base = find_mount(base)
    if host_base is None or propagation(host_base) != "shared":
        raise SpecError("base", "a shared mount point", base,
                        hint="make it one first: helper.in_fresh_process(mnt.share, base) "
                             "(lesson 04)")
    to_host, to_box = os.path.join(base, FROM_BOX), os.path.join(base, FROM_HOST)
    for path in (to_host, to_box):
        os.makedirs(path, exist_ok=True)
    helper.in_fresh_process(release, base, True)  # a clean slate after an interrupted run
    try:
        box = start_box(base, kind)
        try:
            helper.in_fresh_process(mount_tmpfs, to_box)  # a host process, in the host's namespace
            seen = (describe(find_mount(base, box.pid)), is_mount_point(to_host),
                    is_mount_point(to_box, box.pid))
        finally:
            stop_box(box)
        return Experiment(kind, *seen, outlived_box=is_mount_point(to_host))
    finally:
        helper.in_fresh_process(release, base, True)
