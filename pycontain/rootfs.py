"""The root filesystem: build the embedded one offline, then make it a container's `/`.

A container's files are just a directory tree. `build()` makes a small one without any download:
from a static busybox (Debian's busybox-static) when installed, otherwise from the host's own
binaries plus every shared library they load (as `ldd` lists them). `enter()` makes a directory
the root of the calling process's mount namespace: bind it onto itself (pivot_root(2) needs a
mount point), mount `/proc` and a minimal `/dev`, then pivot_root(".", ".") and detach the old
root, the way runc does it. Lesson 05 takes this apart step by step.

See also: pivot_root(2), mount(2), chroot(2), busybox(1), ldd(1).
Left out (lesson 05 and 06): devpts, read-only /sys, overlay layers, image import.
"""

from __future__ import annotations

import os

from pycontain import syscalls
from pycontain.errors import CommandNotFoundError, SpecError
from pycontain.syscalls import MountFlag, UmountFlag

# Every container's first process imports this module for `enter()`, which needs only `os`. The
# build-time modules (pathlib, shutil, subprocess, tempfile: ~10 ms in a fresh interpreter) are
# imported inside the functions that build.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

#: PATH inside a container, as in most images
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: host programs copied when there is no static busybox
HOST_PROGRAMS = (
    "sh", "ls", "cat", "echo", "hostname", "true", "false", "sleep", "id", "uname", "env",
    "ps", "mkdir", "rm", "touch", "grep", "readlink", "stat", "head", "wc", "kill", "date",
    "mount", "umount", "sed", "cut", "sort", "ln", "cp", "mv", "chmod", "whoami", "pwd", "tr",
)

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

#: device files bind-mounted from the host into the container's /dev
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def default_path() -> Path:
    """Where the embedded rootfs lives: $PYCONTAIN_ROOTFS, else a system or per-user cache."""
    from pathlib import Path

    if os.environ.get("PYCONTAIN_ROOTFS"):
        return Path(os.environ["PYCONTAIN_ROOTFS"])
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


def build(dest: str | os.PathLike[str] | None = None, *, use_busybox: bool = True) -> Path:
    """Build the embedded rootfs at `dest` (default: `default_path()`), offline. Returns its path.

    The tree is built next to `dest` and renamed into place, so a reader never sees half of it.
    """
    import shutil
    import tempfile
    from pathlib import Path

    dest = Path(dest) if dest is not None else default_path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    busybox = find_busybox() if use_busybox else None
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=dest.parent))
    try:
        _populate_common(work, f"busybox {busybox}" if busybox else "host binaries")
        if busybox:
            _install_busybox(work, busybox)
        else:
            _install_host_programs(work)
        work.chmod(0o755)
        work.rename(dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return dest


def ensure(dest: str | os.PathLike[str] | None = None) -> Path:
    """The embedded rootfs, built first when missing."""
    from pathlib import Path

    path = Path(dest) if dest is not None else default_path()
    return path if (path / "bin/sh").exists() else build(path)


def find_command(command: str, root: str = "/", path: str = CONTAINER_PATH) -> str | None:
    """Where `command` would be found by execvp(3) inside `root`, as a path inside it.

    Symlinks are not followed: a busybox applet link points inside the rootfs, not the host.
    """
    if "/" in command:
        return command if os.path.lexists(os.path.join(root, command.lstrip("/"))) else None
    for directory in path.split(":"):
        candidate = os.path.join(directory, command)
        if os.path.lexists(os.path.join(root, candidate.lstrip("/"))):
            return candidate
    return None


def validate(rootfs: str) -> str:
    """Check that `rootfs` is an existing directory; return its absolute real path."""
    if not os.path.exists(rootfs):
        raise SpecError("rootfs", "an existing directory", rootfs,
                        hint="build the embedded one with `pycontain rootfs` (lesson 02)")
    if not os.path.isdir(rootfs):
        raise SpecError("rootfs", "a directory, not a file", rootfs)
    return os.path.realpath(rootfs)


def resolve_command(command: str, root: str | None = None, path: str = CONTAINER_PATH) -> str:
    """The path, inside the container, of the program `command` names; raise when there is none.

    The runtime looks it up before the container exists, as runc does (its LookPath), so that
    "not found" is reported before anything is created and init can call execve(2) directly.
    """
    found = find_command(command, root or "/", path)
    if found is not None:
        return found
    if root is None:
        raise CommandNotFoundError("command", f"a program on the container's PATH ({path}) or "
                                   "a path", command)
    raise CommandNotFoundError(
        "command", f"a program inside the rootfs {root!r} (PATH={path})", command,
        hint="the container sees only the files under its rootfs; "
             "`ls` that directory to see what it holds (lesson 02)")


def enter(rootfs: str, *, mount_proc: bool) -> None:
    """Make `rootfs` the root of the calling process's (private) mount namespace."""
    root = os.path.realpath(rootfs)
    flags = MountFlag
    syscalls.mount(root, root, None, flags.MS_BIND | flags.MS_REC)  # pivot_root needs a mount
    for d in ("proc", "dev"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    if mount_proc:
        syscalls.mount("proc", f"{root}/proc", "proc",
                       flags.MS_NOSUID | flags.MS_NODEV | flags.MS_NOEXEC)
    syscalls.mount("tmpfs", f"{root}/dev", "tmpfs", flags.MS_NOSUID | flags.MS_NOEXEC,
                   "mode=755,size=64k")
    for name in DEVICES:
        target = f"{root}/dev/{name}"
        open(target, "w").close()  # a bind mount needs an existing file to cover
        syscalls.mount(f"/dev/{name}", target, None, flags.MS_BIND)
    for name, fd in (("stdin", 0), ("stdout", 1), ("stderr", 2)):
        os.symlink(f"/proc/self/fd/{fd}", f"{root}/dev/{name}")
    os.symlink("/proc/self/fd", f"{root}/dev/fd")
    # pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only
    # the new root. No put_old directory is needed inside the image (runc does the same).
    syscalls.chdir(root)
    syscalls.pivot_root(".", ".")
    syscalls.umount2(".", UmountFlag.MNT_DETACH)
    syscalls.chdir("/")
