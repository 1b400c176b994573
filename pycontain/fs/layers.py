"""Image layers: a writable layer over a read-only image, stacked by overlayfs (lesson 06).

overlayfs merges directories. Read-only *lower* dirs (the image, topmost layer first) sit under
one writable *upper* dir; the *work* dir, on the upper dir's filesystem, is the kernel's scratch
space for moving files into upper atomically. A file is read from the topmost layer that has it.
The first write to a lower file copies all of it into upper first (*copy-up*); deleting a lower
file leaves a *whiteout* in upper (a character device 0/0), and a directory that replaces a lower
one is marked *opaque* (xattr `trusted.overlay.opaque="y"`). Give every container its own upper
dir over the same lower dirs and no container can change the image, or see another's changes:
what `docker run` does with every image.

DESIGN §2 places the overlay in `rootfs.py`. It lives here instead: `rootfs` (lesson 05) is about
switching the root, image layers are a concept of their own (one concept, one module), and
together they would pass 300 lines. Importing images from tarballs is in `pycontain.fs.images`.

See also: mount(8) ("Mount options for overlay"), the kernel's
Documentation/filesystems/overlayfs.rst, mknod(2), getxattr(2), docker-diff(1).
Left out: read-only overlays without an upper dir, `redirect_dir`/`metacopy`/`index`/`volatile`
options, user-namespace (`userxattr`) overlays (lesson 09).
"""

from __future__ import annotations

import os
import stat
from collections import namedtuple

from pycontain import syscalls
from pycontain.errors import PycontainError, SpecError
from pycontain.fs import rootfs
from pycontain.settings import LAYER_PREFIX

# init imports this module for `mount_overlay` on every container start with an overlay: only
# `os`, `stat` and `collections` at the top; the measuring helpers import their own modules.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TypedDict

    class OverlayWire(TypedDict):
        """A writable layer as init receives it, to mount it over the rootfs (`mount_overlay`)."""

        lowers: list[str]
        upper: str
        work: str
        merged: str
        volatile: bool

#: the xattr overlayfs sets on an upper dir that hides the lower dir of the same name
OPAQUE_XATTR = "trusted.overlay.opaque"
#: characters that mount(2)'s overlay options cannot carry unescaped (`lowerdir=a:b,upperdir=…`)
RESERVED = (",", ":", "\\")


def validate_dir(path: str | os.PathLike[str], parameter: str, accepted: str) -> str:
    """Check that `path` is a directory usable in overlay options; return its real path."""
    real = os.path.realpath(path)
    if not os.path.isdir(real):
        what = "a file" if os.path.exists(real) else "missing"
        raise SpecError(parameter, accepted, os.fspath(path),
                        hint=f"it is {what}; overlayfs stacks directories only (lesson 06)")
    if any(c in real for c in RESERVED):
        raise SpecError(parameter, f"{accepted}, whose path has no ',' ':' or '\\'", real,
                        hint="these characters separate overlay mount options (lesson 06)")
    return real


def validate_lowers(lowers: Sequence[str | os.PathLike[str]],
                    parameter: str = "layers") -> list[str]:
    """Check that every lower dir is a directory; return their real paths, topmost first."""
    accepted = "a list of directories, topmost layer first"
    if isinstance(lowers, str | bytes) or not hasattr(lowers, "__iter__"):
        raise SpecError(parameter, accepted, lowers)
    checked = [validate_dir(lower, parameter, accepted) for lower in lowers]
    for lower in checked:  # what lesson 05 refuses in a rootfs, in any layer above it too
        for name in rootfs.MOUNT_POINTS:
            if os.path.islink(os.path.join(lower, name)):
                raise SpecError(parameter, f"{accepted}, without a symlink at /{name}",
                                os.path.join(lower, name),
                                hint="a mount on it would follow the link (lesson 05)")
    return checked


def mount_options(lowers: Sequence[str], upper: str, work: str, *, volatile: bool = False
                  ) -> str:
    """The data argument of mount(2) for an overlay.

    >>> mount_options(["/layers/app", "/layers/base"], "/c/upper", "/c/work")
    'lowerdir=/layers/app:/layers/base,upperdir=/c/upper,workdir=/c/work'
    """
    options = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
    return options + ",volatile" if volatile else options


def mount_overlay(target: str, lowers: Sequence[str], upper: str, work: str, *,
                  volatile: bool = False) -> None:
    """Mount an overlay of `lowers` (topmost first) under `upper` at `target`.

    Every directory is checked first: a bad one raises `SpecError` and nothing is mounted.
    Call it in a private mount namespace (a container's init does), never in the notebook.
    `volatile` skips every sync to the upper dir's disk (Linux >= 5.10): right for a throw-away
    layer, which no one reads after a crash, and it saves a journal commit at every exit.
    """
    lowers = validate_lowers(lowers)
    upper = validate_dir(upper, "upper", "a directory")
    work = validate_dir(work, "work", "a directory on the upper dir's filesystem")
    try:
        syscalls.mount("overlay", target, "overlay", 0,
                       mount_options(lowers, upper, work, volatile=volatile))
    except PycontainError as e:
        e.add_note(f"while stacking {len(lowers)} lower dir(s) under {upper!r} at {target!r}")
        raise


# --- a container's writable layer ------------------------------------------------------------

class WritableLayer(namedtuple("WritableLayer", "path upper work merged throwaway")):
    """A container's writable layer: `upper`, `work` and the mount point `merged`, all in `path`.

    `throwaway` layers live in a fresh `/tmp/pycontain-layer-…` directory that the runtime removes
    when the container is waited for (like `docker run --rm`); the others belong to the caller.
    """

    __slots__ = ()

    def wire(self, lowers: Sequence[str]) -> OverlayWire:
        """What init needs to mount it: the lower dirs (topmost first) and the three dirs."""
        return {"lowers": list(lowers), "upper": self.upper, "work": self.work,
                "merged": self.merged, "volatile": self.throwaway}

    def discard(self) -> None:
        """Remove a throw-away layer and everything in it; leave a caller's layer alone."""
        if not self.throwaway or not os.path.isdir(self.path):
            return
        if os.geteuid() != 0:  # rootless (lesson 09): overlayfs leaves work/work mode 000
            for top, dirs, _ in os.walk(self.path):  # top-down: opened before it descends
                for name in dirs:
                    full = os.path.join(top, name)
                    if not os.path.islink(full) and not os.access(full, os.R_OK | os.X_OK):
                        os.chmod(full, 0o700)
        for top, dirs, files in os.walk(self.path, topdown=False):  # not shutil: ~3 ms to import
            for name in files:
                os.unlink(os.path.join(top, name))
            for name in dirs:
                full = os.path.join(top, name)
                os.unlink(full) if os.path.islink(full) else os.rmdir(full)
        os.rmdir(self.path)


def writable_layer(path: str | os.PathLike[str] | None = None) -> WritableLayer:
    """Create (or reuse) `path`/upper, /work and /merged; with no path, a throw-away one.

    One running container per layer: the kernel only warns when two overlays share an upper
    dir, and what each then sees is undefined (overlayfs.rst, "Sharing and copying layers").
    """
    throwaway = path is None
    if path is None:  # not tempfile: the `pycontain` command would pay ~5 ms to import it
        base = os.environ.get("TMPDIR") or "/tmp"
        while True:
            path = os.path.join(base, LAYER_PREFIX + os.urandom(5).hex())
            try:
                os.mkdir(path, 0o700)
                break
            except FileExistsError:
                continue
    root = os.path.realpath(path)
    for name in ("upper", "work", "merged"):
        os.makedirs(os.path.join(root, name), exist_ok=True)
    return WritableLayer(root, f"{root}/upper", f"{root}/work", f"{root}/merged", throwaway)


def validate_overlay(overlay: object) -> str | bool:
    """`Spec`'s `overlay`: False, True (a throw-away layer) or a directory path for the layer."""
    if isinstance(overlay, bool):
        return overlay
    if not isinstance(overlay, str | os.PathLike):
        raise SpecError("overlay", "True, False or a directory for the writable layer", overlay)
    path = os.path.realpath(overlay)
    if os.path.exists(path) and not os.path.isdir(path):
        raise SpecError("overlay", "True, False or a directory for the writable layer", path)
    if any(c in path for c in RESERVED):
        raise SpecError("overlay", "a directory whose path has no ',' ':' or '\\'", path)
    return path


def resolve_command(command: str, lowers: Sequence[str], path: str) -> str:
    """`rootfs.resolve_command`, looking through the layers from the topmost down."""
    for lower in lowers[:-1]:
        found = rootfs.find_command(command, lower, path)
        if found is not None:
            return found
    return rootfs.resolve_command(command, lowers[-1], path)


# --- reading an upper dir --------------------------------------------------------------------

def is_whiteout(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is an overlay whiteout: a character device with device number 0/0."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is an opaque upper dir: the lower dir of the same name is hidden."""
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:  # ENODATA: no such xattr; ENOTSUP: not an upper dir at all
        return False


class Change(namedtuple("Change", "kind path")):
    """One line of `docker diff`: A (added), C (changed) or D (deleted), and the path inside."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{self.kind} {self.path}"


def diff(upper: str | os.PathLike[str], lowers: Sequence[str | os.PathLike[str]] = ()
         ) -> list[Change]:
    """What a container changed, read from its upper dir, like `docker diff`.

    Without `lowers` every entry counts as added (A); with them, an entry that a lower dir also
    has is changed (C). Whiteouts are deletions (D). Directories appear too: the kernel copies
    a file's parent directories up with it.
    """
    found = []
    top = os.fspath(upper)
    hiding: set[str] = set()  # opaque dirs and everything below them: nothing there is lower's
    for here, dirs, files in os.walk(top):
        inner = os.path.relpath(here, top)
        hidden = here in hiding or (here != top and is_opaque(here))
        if hidden:
            hiding.update(os.path.join(here, d) for d in dirs)
        for name in sorted(dirs + files):
            rel = os.path.normpath(os.path.join(inner, name))
            full = os.path.join(here, name)
            below = not hidden and any(os.path.lexists(os.path.join(lower, rel))
                                       for lower in lowers)
            kind = "D" if is_whiteout(full) else ("C" if below else "A")
            found.append(Change(kind, "/" + rel))
        dirs.sort()
    return sorted(found, key=lambda c: c.path)


def changed_files(upper: str | os.PathLike[str], lowers: Sequence[str | os.PathLike[str]] = ()
                  ) -> dict[str, str]:
    """`diff` without the directories copied up only to hold a changed file: path -> kind."""
    result = {}
    for change in diff(upper, lowers):
        full = os.path.join(os.fspath(upper), change.path.lstrip("/"))
        carrier = (os.path.isdir(full) and not os.path.islink(full) and change.kind == "C"
                   and not is_opaque(full))
        if not carrier:
            result[change.path] = change.kind
    return result


# --- measuring copy-up (run in a fresh process: helper.in_fresh_process) -----------------------

def make_files(directory: str | os.PathLike[str], sizes_mib: Sequence[int]) -> list[str]:
    """Write one file of each size (`f1`, `f4`, … MiB) into `directory`; return their names.

    The bytes are not zero, so that no filesystem can store them as holes.
    """
    chunk = bytes(range(1, 256)) * 4112  # ~1 MiB of non-zero bytes
    names = []
    for size in sizes_mib:
        if not 0 < size <= 256:
            raise SpecError("sizes_mib", "sizes from 1 to 256 MiB", size)
        name = f"f{size}"
        with open(os.path.join(directory, name), "wb") as f:
            left = size << 20
            while left:
                left -= f.write(chunk[:min(left, len(chunk))])
        names.append(name)
    return names


def measure_copy_up(sizes_mib: Sequence[int], repeats: int = 3) -> dict[str, list[float]]:
    """Time the first and the second write to lower files of each size, in milliseconds.

    A write is open(2) for writing, write(2) of one byte, close(2). The first one copies the
    file up; the second finds it in upper already. Returns the median of `repeats` fresh
    overlays: {"sizes_mib": [...], "first_ms": [...], "second_ms": [...]}.

    It mounts, so it refuses to run in a multi-threaded process such as a notebook kernel:
    call it with `helper.in_fresh_process(layers.measure_copy_up, sizes)`.
    """
    import shutil
    import statistics
    import tempfile
    import time

    from pycontain import procfs

    if procfs.status("self").threads != 1:
        raise PycontainError("measure_copy_up mounts: run it in a fresh process with "
                             "helper.in_fresh_process(layers.measure_copy_up, sizes_mib)")
    syscalls.unshare(syscalls.CloneFlag.CLONE_NEWNS)
    syscalls.mount(None, "/", None, syscalls.MountFlag.MS_REC | syscalls.MountFlag.MS_PRIVATE)
    scratch = tempfile.mkdtemp(prefix="pycontain-copy-up-")
    try:
        lower = os.path.join(scratch, "lower")
        os.mkdir(lower)
        names = make_files(lower, sizes_mib)
        times: dict[str, list[list[float]]] = {"first_ms": [], "second_ms": []}
        for _ in range(repeats):
            layer = writable_layer(os.path.join(scratch, f"layer-{_}"))
            mount_overlay(layer.merged, [lower], layer.upper, layer.work)
            try:
                for key in ("first_ms", "second_ms"):
                    row = []
                    for name in names:
                        start = time.perf_counter()
                        with open(os.path.join(layer.merged, name), "r+b") as f:
                            f.write(b"!")
                        row.append((time.perf_counter() - start) * 1000)
                    times[key].append(row)
            finally:
                syscalls.umount2(layer.merged)
                shutil.rmtree(layer.path)  # at most one copy of the files in upper at a time
        return {"sizes_mib": list(sizes_mib),
                **{key: [statistics.median(col) for col in zip(*rows, strict=True)]
                   for key, rows in times.items()}}
    finally:
        shutil.rmtree(scratch)
