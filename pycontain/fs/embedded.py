"""The embedded root filesystem: a small one built offline, with nothing to download.

`build()` makes it from a static busybox (Debian's busybox-static) when installed: one binary and
a symlink for each of its applets. Otherwise it copies the host's own programs plus every shared
library they load (as ldd(1) lists them). Either way the tree holds what a container's `/` needs:
/bin/sh, /etc/passwd, /etc/hosts, empty /proc, /dev, /sys and /tmp to mount on, and a page for
httpd at /var/www/index.html. `pycontain rootfs` prints its path, building it first (lesson 02);
lesson 05 makes it a container's root.

The tree records how it was built in /etc/pycontain-rootfs.json (the recipe version and the
busybox or host programs it came from), written last. `status()` compares that record with what
a build would use now: a tree built from host programs before busybox was installed, by an older
recipe, or without a record, is stale, and `ensure()` builds it again. A build happens beside
the tree, under flock(2) on the parent directory (two checkouts may build at once), and is swapped
into place with renameat2(RENAME_EXCHANGE): a reader finds the old tree or the new one, whole.

See also: busybox(1), ldd(1), flock(2), renameat2(2), `rootfs` (which re-exports these names).
Left out: images from a registry or a tarball (lesson 06).
"""

from __future__ import annotations

import os
from collections import namedtuple

from pycontain import settings

# Every container's first process imports `rootfs`, which imports this module: the build-time
# modules (pathlib, shutil, subprocess, tempfile: ~10 ms in a fresh interpreter) are imported
# inside the functions that build.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

#: host programs copied when there is no static busybox
HOST_PROGRAMS = (
    "sh", "ls", "cat", "echo", "hostname", "true", "false", "sleep", "id", "uname", "env",
    "ps", "mkdir", "rm", "touch", "grep", "readlink", "stat", "head", "wc", "kill", "date",
    "mount", "umount", "sed", "cut", "sort", "ln", "cp", "mv", "chmod", "whoami", "pwd", "tr",
)

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

#: what the tree holds and how it is laid out; raise it when `build()` changes, so that trees
#: built before are rebuilt (2: the manifest and /var/www)
RECIPE = 2
#: the record of how the tree was built, inside it: /etc keeps the container's / listing as is
MANIFEST = "etc/pycontain-rootfs.json"
#: the page busybox's httpd serves with `httpd -f -p 80 -h /var/www` (README)
INDEX_HTML = ("<!doctype html>\n<title>pycontain</title>\n"
              "<h1>Hello from a pycontain container</h1>\n"
              "<p>busybox httpd serves this page from /var/www inside the container.</p>\n")


def default_path() -> Path:
    """Where the embedded rootfs lives: $PYCONTAIN_ROOTFS, else a system or per-user cache."""
    from pathlib import Path

    configured = settings.rootfs_dir()
    if configured is not None:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/lib/pycontain/rootfs")
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pycontain/rootfs"


def find_busybox() -> str | None:
    """The host's busybox binary, if one is installed."""
    return next((p for p in BUSYBOX_CANDIDATES if os.path.isfile(p)), None)


def shared_libraries(binary: str) -> list[str]:
    """The shared libraries `binary` loads, loader included (empty for a static binary)."""
    import subprocess

    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    return parse_ldd(out)


def parse_ldd(text: str) -> list[str]:
    """The absolute library paths in ldd(1) output.

    >>> parse_ldd('''\\tlinux-vdso.so.1 (0x00007ffd)
    ... \\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)
    ... \\t/lib64/ld-linux-x86-64.so.2 (0x00007f)''')
    ['/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']
    >>> parse_ldd("\\tnot a dynamic executable")
    []
    """
    paths = []
    for line in text.splitlines():
        words = line.split()
        if "=>" in words and len(words) > words.index("=>") + 1:
            words = words[words.index("=>") + 1:]
        if words and words[0].startswith("/"):
            paths.append(words[0])
    return paths


def _copy_in(root: Path, host_path: str, inside: str | None = None) -> None:
    """Copy a host file's content (following links) to the same path, or `inside`, in root."""
    import shutil

    target = root / (inside or host_path).lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copy2(os.path.realpath(host_path), target)


def _populate_common(root: Path, origin: str) -> None:
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "proc", "sys", "dev", "tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                     "nobody:x:65534:65534:nobody:/:/bin/false\n")
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost\n")
    (root / "etc/os-release").write_text(
        f'NAME="pycontain embedded rootfs"\nID=pycontain\nBUILT_FROM="{origin}"\n'
    )
    (root / "var/www").mkdir(parents=True)
    (root / "var/www/index.html").write_text(INDEX_HTML)


def _install_busybox(root: Path, busybox: str) -> None:
    import subprocess

    _copy_in(root, busybox, "/bin/busybox")
    for lib in shared_libraries(busybox):  # none for busybox-static
        _copy_in(root, lib)
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    for name in applets.stdout.split():
        link = root / "bin" / name
        if name != "busybox" and not link.exists():
            link.symlink_to("busybox")


def _install_host_programs(root: Path) -> None:
    import shutil

    for name in HOST_PROGRAMS:
        found = shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
        if not found:
            continue
        _copy_in(root, found, f"/bin/{name}")
        for lib in shared_libraries(found):
            _copy_in(root, lib)


def origin(use_busybox: bool = True) -> dict[str, Any]:
    """What a build would copy in now: busybox (its path, size and mtime) or the host programs.

    Two origins are equal when the build would make the same tree; the manifest holds one.
    """
    import shutil

    busybox = find_busybox() if use_busybox else None
    if busybox:
        st = os.stat(busybox)
        return {"from": "busybox", "busybox": busybox, "size": st.st_size,
                "mtime_ns": st.st_mtime_ns}
    found = {name: shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
             for name in HOST_PROGRAMS}
    return {"from": "host binaries", "programs": {k: v for k, v in found.items() if v}}


class Status(namedtuple("Status", "state why manifest", defaults=(None,))):
    """What `status()` found at a path: `state` is "ready", "missing", "stale" or "foreign";
    `why` says it in words; `manifest` is the build record (None without one)."""

    __slots__ = ()


def status(path: str | os.PathLike[str] | None = None) -> Status:
    """Whether the tree at `path` (default: `default_path()`) is the one a build makes now.

    "missing": nothing there, or an empty directory. "stale": pycontain built it, but by another
    recipe, from host programs while busybox is installed now, from a busybox that has changed
    since, or it lost /bin/sh. "foreign": files pycontain did not build, never replaced.
    A busybox tree stays ready when busybox is uninstalled: it carries its own copy.
    """
    import json
    from pathlib import Path

    root = Path(path) if path is not None else default_path()
    if not root.exists() or (root.is_dir() and not any(root.iterdir())):
        return Status("missing", f"not built yet at {root}")
    if not root.is_dir():
        return Status("foreign", f"{root} is a file, not a directory")
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        if (root / "etc/os-release").is_file() and \
                "ID=pycontain" in (root / "etc/os-release").read_text(errors="replace"):
            return Status("stale", "built by an older pycontain, with no record of how")
        return Status("foreign", f"{root} holds files that pycontain did not build")
    built = manifest.get("origin", {})
    if manifest.get("recipe") != RECIPE:
        return Status("stale", f"built by recipe {manifest.get('recipe')}, this pycontain "
                               f"builds recipe {RECIPE}", manifest)
    if not os.path.lexists(root / "bin/sh"):  # an applet link points inside the tree
        return Status("stale", "incomplete: it has no /bin/sh", manifest)
    now = origin()
    if built.get("from") == "busybox" and now["from"] == "host binaries":
        pass  # busybox was uninstalled: the tree's own copy still works
    elif built.get("from") != now["from"]:
        return Status("stale", f"built from {built.get('from')}, but busybox "
                               f"({now['busybox']}) is installed now", manifest)
    elif built != now:
        changed = "busybox" if now["from"] == "busybox" else "the host programs"
        return Status("stale", f"{changed} changed since it was built", manifest)
    return Status("ready", f"{root} ({manifest.get('version') or built.get('from')})", manifest)


def build(dest: str | os.PathLike[str] | None = None, *, use_busybox: bool = True,
          force: bool = True) -> Path:
    """Build the embedded rootfs at `dest` (default: `default_path()`), offline. Returns its path.

    The tree is built next to `dest` and swapped into place whole. With `force=False` nothing
    is built when the tree there is ready: another process may have built it while this one
    waited for the lock.

    Raises:
        SpecError: `dest` holds files pycontain did not build (they are never replaced).
    """
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from pycontain.errors import SpecError

    dest = Path(dest) if dest is not None else default_path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _Locked(dest.parent):
        found = status(dest)
        if found.state == "ready" and not force:
            return dest
        if found.state == "foreign":
            raise SpecError("rootfs", "an empty or new directory, or a rootfs pycontain built",
                            str(dest), hint=f"{found.why}, so it is not replaced: unset "
                            "PYCONTAIN_ROOTFS or point it at a new directory (lesson 00)")
        for crashed in dest.parent.glob(f".{dest.name}.new-*"):  # we hold the lock: not live
            shutil.rmtree(crashed, ignore_errors=True)
        made = origin(use_busybox)
        work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.new-", dir=dest.parent))
        try:
            busybox = made.get("busybox")
            _populate_common(work, f"busybox {busybox}" if busybox else "host binaries")
            if busybox:
                _install_busybox(work, busybox)
            else:
                _install_host_programs(work)
            manifest = {"recipe": RECIPE, "origin": made, "version": _version(busybox)}
            (work / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")  # last
            work.chmod(0o755)
            _swap(work, dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)  # after the swap: the tree it replaced
    return dest


def _version(busybox: str | None) -> str:
    """busybox's version line ("BusyBox v1.35.0 (Debian 1:1.35.0-4+b3)"), for people to read."""
    import subprocess

    if busybox is None:
        return "host binaries"
    out = subprocess.run([busybox], capture_output=True, text=True).stdout
    return out.partition(" multi-call")[0].strip() or "busybox"


class _Locked:
    """flock(2) on a directory: one builder at a time beside it, and no lock file left over."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __enter__(self) -> None:
        import fcntl

        self.fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing the last descriptor releases the lock


def _swap(new: Path, dest: Path) -> None:
    """Put the tree `new` at `dest`; when `dest` existed, its old tree ends up at `new`.

    RENAME_EXCHANGE swaps the two names in one step, so a container starting meanwhile looks
    up `dest` and finds a whole tree, old or new, never none. Filesystems without it (EINVAL:
    some network and shared-folder ones) get two renames, with `dest` missing in between.
    """
    import errno

    from pycontain import syscalls
    from pycontain.errors import SyscallError

    if not dest.exists():
        os.rename(new, dest)
        return
    try:
        syscalls.renameat2(syscalls.AT_FDCWD, str(new), syscalls.AT_FDCWD, str(dest),
                           syscalls.RenameFlag.RENAME_EXCHANGE)
    except SyscallError as e:
        if e.errno not in (errno.EINVAL, errno.ENOSYS):
            raise
        old = new.with_name(new.name + "-old")
        os.rename(dest, old)
        os.rename(new, dest)
        os.rename(old, new)


def ensure(dest: str | os.PathLike[str] | None = None) -> Path:
    """The embedded rootfs, built first when missing or stale (see `status()`).

    A tree pycontain did not build is returned as it is, when it has a /bin/sh: it is what
    $PYCONTAIN_ROOTFS asked for.
    """
    from pathlib import Path

    path = Path(dest) if dest is not None else default_path()
    found = status(path)
    if found.state == "ready" or (found.state == "foreign" and os.path.lexists(path / "bin/sh")):
        return path
    return build(path, force=False)
