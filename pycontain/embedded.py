"""The embedded root filesystem: a small one built offline, with nothing to download.

`build()` makes it from a static busybox (Debian's busybox-static) when installed: one binary and
a symlink for each of its applets. Otherwise it copies the host's own programs plus every shared
library they load (as ldd(1) lists them). Either way the tree holds what a container's `/` needs:
/bin/sh, /etc/passwd, /etc/hosts and empty /proc, /dev, /sys and /tmp to mount on. `pycontain
rootfs` prints its path, building it first (lesson 02); lesson 05 makes it a container's root.

See also: busybox(1), ldd(1), `rootfs` (which re-exports these names).
Left out: images from a registry or a tarball (lesson 06).
"""

from __future__ import annotations

import os

# Every container's first process imports `rootfs`, which imports this module: the build-time
# modules (pathlib, shutil, subprocess, tempfile: ~10 ms in a fresh interpreter) are imported
# inside the functions that build.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

#: host programs copied when there is no static busybox
HOST_PROGRAMS = (
    "sh", "ls", "cat", "echo", "hostname", "true", "false", "sleep", "id", "uname", "env",
    "ps", "mkdir", "rm", "touch", "grep", "readlink", "stat", "head", "wc", "kill", "date",
    "mount", "umount", "sed", "cut", "sort", "ln", "cp", "mv", "chmod", "whoami", "pwd", "tr",
)

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


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
