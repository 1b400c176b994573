"""The root filesystem: check a directory tree, then make it a container's `/` (lesson 05).

A container's files are just a directory tree; `build()` and `ensure()` (from
`pycontain.fs.embedded`, re-exported here) make a small one offline. `validate()` refuses a tree
that cannot be a root before anything is created. `enter()` makes a directory the root of the
calling process's mount namespace, the way runc does it: bind it onto itself (pivot_root(2)
needs a mount point), mount a fresh `/proc`, a minimal `/dev` (six device nodes, a private
devpts, a tmpfs for shared memory), a read-only `/sys` with the container's own cgroups
read-only at `/sys/fs/cgroup` (`mount_cgroups`), and a tmpfs `/tmp`, then pivot_root(".", ".")
and detach the old root, and verify the working directory is inside the new root. chroot(2)
alone would change only where "/" starts for this process, and a program inside can climb out
of it: lesson 05 shows the escape (`pycontain.audit.escape`) and then closes it.

See also: pivot_root(2), chroot(2), mount(2), umount2(2), pts(4), sysfs(5), busybox(1), ldd(1).
Left out: overlay layers and image import (lesson 06), masked and read-only /proc paths
(`security.paths`, lesson 20), device cgroups, user-namespace mounts (lesson 09).
"""

from __future__ import annotations

import os

from pycontain import syscalls
from pycontain.errors import HINTS, CommandNotFoundError, SpecError
from pycontain.fs.embedded import (  # noqa: F401  (re-exported: `rootfs.build()` and friends)
    BUSYBOX_CANDIDATES,
    HOST_PROGRAMS,
    MANIFEST,
    RECIPE,
    Status,
    build,
    default_path,
    ensure,
    find_busybox,
    origin,
    parse_ldd,
    shared_libraries,
    status,
)
from pycontain.syscalls import MountFlag, UmountFlag

# Every container's first process imports this module for `enter()`, which needs only `os`:
# what only the notebook needs (`record`'s test double) is imported inside the function.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

#: PATH inside a container, as in most images
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: device files bind-mounted from the host into the container's /dev
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
#: symbolic links in the container's /dev, as runc makes them: name -> target
DEV_LINKS = {"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
             "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
#: directories that get a mount of their own: a symlink there would carry the mount elsewhere
MOUNT_POINTS = ("proc", "dev", "sys", "tmp")
#: the ways `enter()` can make the directory the root (a list of recorded calls is the third)
SWITCHES = ("pivot_root", "chroot")
#: the calls a recorded root switch may replay (`record()`)
SWITCH_CALLS = ("mount", "umount2", "chdir", "chroot", "pivot_root")


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


def require_tools(root: str | os.PathLike[str], *tools: str) -> str:
    """Return `root` as a string when each of `tools` is a program inside it; else say which
    are missing and where to get them (busybox-static has every tool the lessons use)."""
    where = str(root)
    missing = [tool for tool in tools if find_command(tool, where) is None]
    if missing:
        get = ("busybox is installed: `pycontain rootfs` rebuilds the embedded rootfs from it"
               if find_busybox() else "busybox has them: `apt-get install "
               "busybox-static`, then `pycontain rootfs` rebuilds the embedded rootfs from it")
        raise SpecError("rootfs", f"a root filesystem with {', '.join(tools)}", where,
                        hint=f"it has no {', '.join(missing)}; {get} (lesson 05)")
    return where


def validate(rootfs: str) -> str:
    """Check `rootfs` before anything is created; return its absolute real path.

    Refused: a missing path or a file; a tree without `/bin/sh` (not a root filesystem, or an
    empty directory by mistake); `/proc`, `/dev`, `/sys` or `/tmp` as symlinks, because mount(2)
    follows a symlink in its target: a link to `/` would mount the container's /proc over the
    host's own (runc refuses them too, CVE-2019-19921).
    """
    build_it = "build the embedded one with `pycontain rootfs` (lesson 05)"
    if not os.path.exists(rootfs):
        raise SpecError("rootfs", "an existing directory", rootfs, hint=build_it)
    if not os.path.isdir(rootfs):
        raise SpecError("rootfs", "a directory, not a file", rootfs, hint=build_it)
    root = os.path.realpath(rootfs)
    if not os.path.lexists(os.path.join(root, "bin/sh")):
        raise SpecError("rootfs", "a root filesystem with a shell at /bin/sh", rootfs,
                        hint=f"{root!r} has no bin/sh; {build_it}, or export an image "
                             "(lesson 06)")
    for name in MOUNT_POINTS:
        path = os.path.join(root, name)
        if os.path.islink(path):
            raise SpecError("rootfs", f"a tree whose /{name} is a directory, not a symlink",
                            f"{path} -> {os.readlink(path)}",
                            hint=f"a mount on /{name} would follow the link, maybe out of the "
                                 f"rootfs: replace the link by an empty directory (lesson 05)")
    return root


def validate_switch(switch: object) -> str | list[list[object]]:
    """Check a root switch: "pivot_root", "chroot", or calls recorded by `record()`."""
    if isinstance(switch, str):
        if switch not in SWITCHES:
            raise SpecError("root_switch", _SWITCH_ACCEPTED, switch)
        return switch
    if not isinstance(switch, list | tuple):
        raise SpecError("root_switch", _SWITCH_ACCEPTED, switch)
    return [_plain_step(step) for step in switch]


_SWITCH_ACCEPTED = (f"one of {', '.join(map(repr, SWITCHES))} or a list of calls from "
                    "record()")


def _plain_step(step: object) -> list[object]:
    """One recorded call as [name, [args]], its flags as plain ints (they cross a pipe)."""
    if isinstance(step, list | tuple) and len(step) == 2 and step[0] in SWITCH_CALLS \
            and isinstance(step[1], list | tuple) \
            and all(a is None or isinstance(a, str | int) for a in step[1]):
        return [step[0], [a if a is None or isinstance(a, str) else int(a) for a in step[1]]]
    raise SpecError("root_switch", _SWITCH_ACCEPTED, step,
                    hint=f"a recorded call is (name, args) with name among "
                         f"{', '.join(SWITCH_CALLS)} (lesson 05)")


def record(switch: Callable[[str], object], root: str) -> list[list[object]]:
    """The system calls `switch(root)` makes through `pycontain.syscalls`, without making them.

    A container replays them in place of pivot_root when given as `root_switch` (lesson 05):
    the notebook never mounts anything itself, the container's first process does.
    """
    from pycontain.testing import recorded

    if getattr(switch, "__self__", None) is syscalls.LINUX:  # bound to the real kernel already
        raise SpecError("switch", "a function that calls syscalls.<name>(...) itself",
                        switch, hint="wrap it: `lambda root: syscalls.chroot(root)` (lesson 05)")
    with recorded() as kernel:
        switch(root)
    steps = validate_switch(kernel.calls)
    assert isinstance(steps, list)
    return steps


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
                                   "a path", command, hint=HINTS[("execvp", "ENOENT")])
    raise CommandNotFoundError(
        "command", f"a program inside the rootfs {root!r} (PATH={path})", command,
        hint=HINTS[("execvp rootfs", "ENOENT")])


def enter(rootfs: str, *, mount_proc: bool, own_net: bool = False, read_only: bool = False,
          cgroups: dict[str, str] | None = None,
          switch: str | list[list[object]] = "pivot_root") -> None:
    """Make `rootfs` the root of the calling process's (private) mount namespace.

    Args:
        mount_proc: mount a fresh /proc (the caller is in a new PID namespace).
        own_net: the caller has its own network namespace, so sysfs may be mounted afresh;
            otherwise the host's /sys is bound read-only.
        read_only: make the root itself read-only (`pycontain run --read-only`); /tmp, /dev
            and /proc keep their own mounts.
        cgroups: the container's own cgroup directories to show read-only at /sys/fs/cgroup,
            as `Cgroup.view()` names them (lesson 20); None or empty: none.
        switch: "pivot_root"; "chroot" only to show its escape (lesson 05); or recorded calls.
    """
    root = os.path.realpath(rootfs)
    syscalls.mount(root, root, None, MountFlag.MS_BIND | MountFlag.MS_REC)  # a mount point
    for name in MOUNT_POINTS:  # an image may lack them; validate() refused symlinks
        os.makedirs(os.path.join(root, name), exist_ok=True)
    if mount_proc:
        syscalls.mount("proc", f"{root}/proc", "proc", _NOSUID_NODEV_NOEXEC)
    mount_dev(f"{root}/dev")
    mount_sys(f"{root}/sys", own_net=own_net)
    if cgroups:
        mount_cgroups(f"{root}/sys/fs/cgroup", cgroups)
    syscalls.mount("tmpfs", f"{root}/tmp", "tmpfs", MountFlag.MS_NOSUID | MountFlag.MS_NODEV,
                   "mode=1777")
    if read_only:  # a bind mount's own flag: the mounts on top of it stay writable
        syscalls.mount(None, root, None,
                       MountFlag.MS_REMOUNT | MountFlag.MS_BIND | MountFlag.MS_RDONLY)
    if switch == "pivot_root":
        pivot(root)
    elif switch == "chroot":  # what NOT to do: the old root stays in the namespace (lesson 05)
        syscalls.chdir(root)
        syscalls.chroot(".")
    elif isinstance(switch, list):
        replay(switch)
    else:
        raise SpecError("root_switch", _SWITCH_ACCEPTED, switch)
    verify_cwd_inside_root()


_NOSUID_NODEV_NOEXEC = MountFlag.MS_NOSUID | MountFlag.MS_NODEV | MountFlag.MS_NOEXEC


def pivot(root: str) -> None:
    """Make `root`, a mount point, the root of the mount namespace for good (lesson 05).

    pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only
    the new root. No put_old directory is needed inside the image (runc does this).
    """
    syscalls.chdir(root)
    syscalls.pivot_root(".", ".")
    syscalls.umount2(".", UmountFlag.MNT_DETACH)
    syscalls.chdir("/")


def mount_dev(dev: str) -> None:
    """A minimal /dev at `dev`: a small tmpfs holding six host devices, devpts, shm, links.

    Device nodes are bind-mounted from the host rather than made with mknod(2), as runc does
    when it cannot create them; nothing else of the host's /dev (disks, kmsg, mem) is there.
    """
    syscalls.mount("tmpfs", dev, "tmpfs", MountFlag.MS_NOSUID | MountFlag.MS_NOEXEC,
                   "mode=755,size=64k")
    for name in DEVICES:
        open(f"{dev}/{name}", "w").close()  # a bind mount needs an existing file to cover
        syscalls.mount(f"/dev/{name}", f"{dev}/{name}", None, MountFlag.MS_BIND)
    for name in ("pts", "shm"):
        os.mkdir(f"{dev}/{name}")
    # newinstance: the container's terminals are numbered apart from the host's (pts(4))
    syscalls.mount("devpts", f"{dev}/pts", "devpts", MountFlag.MS_NOSUID | MountFlag.MS_NOEXEC,
                   "newinstance,ptmxmode=0666,mode=0620")
    syscalls.mount("shm", f"{dev}/shm", "tmpfs", _NOSUID_NODEV_NOEXEC, "mode=1777,size=65536k")
    for name, target in DEV_LINKS.items():
        os.symlink(target, f"{dev}/{name}")


def mount_sys(sys_dir: str, *, own_net: bool) -> None:
    """A read-only /sys at `sys_dir`: a fresh sysfs, or the host's bound when sharing its net.

    sysfs shows the network devices of the namespace that mounts it, so runc mounts a fresh
    one only for a container with its own network namespace, and binds the host's otherwise.
    """
    if own_net:
        syscalls.mount("sysfs", sys_dir, "sysfs", _NOSUID_NODEV_NOEXEC | MountFlag.MS_RDONLY)
        return
    bind_read_only("/sys", sys_dir)  # not recursive: none of the host's cgroupfs below


def mount_cgroups(target: str, view: dict[str, str]) -> None:
    """The container's own cgroups at `target` (its /sys/fs/cgroup), read-only, so that a
    process can read its own limits (`memory.max`, `pids.max`) and usage and change none.

    `view` maps a name under /sys/fs/cgroup to a host directory (`Cgroup.view()`): on cgroup
    v2 the one directory ('') becomes /sys/fs/cgroup itself; on v1 and hybrid each hierarchy's
    directory is bound at its name (`memory`, `pids`, `unified`, ...) on a small tmpfs, made
    read-only after. The container sees its own cgroup as the top of each tree, what runc
    shows a container on v1 and a cgroup namespace shows on v2 (lesson 10).
    """
    if "" in view:
        bind_read_only(view[""], target)
        return
    syscalls.mount("tmpfs", target, "tmpfs", _NOSUID_NODEV_NOEXEC, "mode=755,size=64k")
    for name, source in sorted(view.items()):
        os.mkdir(f"{target}/{name}")
        bind_read_only(source, f"{target}/{name}")
    syscalls.mount(None, target, None, _NOSUID_NODEV_NOEXEC | MountFlag.MS_REMOUNT
                   | MountFlag.MS_RDONLY)


def bind_read_only(source: str, target: str, *, recursive: bool = False) -> None:
    """Bind `source` at `target`, then make that bind read-only, nosuid, nodev, noexec: a
    bind mount takes its flags only from a remount of its own (mount(2), "Creating a bind
    mount")."""
    syscalls.mount(source, target, None,
                   MountFlag.MS_BIND | (MountFlag.MS_REC if recursive else MountFlag(0)))
    syscalls.mount(None, target, None, _NOSUID_NODEV_NOEXEC | MountFlag.MS_REMOUNT
                   | MountFlag.MS_BIND | MountFlag.MS_RDONLY)


def replay(steps: list[list[object]]) -> None:
    """Make the calls `record()` wrote down, with their flags as the kernel names them."""
    for name, args in steps:
        assert isinstance(name, str) and isinstance(args, list)
        if name == "mount" and len(args) > 3:
            args = [*args[:3], MountFlag(args[3]), *args[4:]]
        elif name == "umount2" and len(args) > 1:
            args = [args[0], UmountFlag(args[1])]
        getattr(syscalls, name)(*args)


def verify_cwd_inside_root(parameter: str = "root_switch") -> None:
    """Raise unless the working directory can be reached from the (new) root.

    getcwd(3) fails with ENOENT when it cannot (the kernel's getcwd(2) would prefix the path
    with "(unreachable)"): a process left there could climb out with "..", as runc guards
    against since CVE-2024-21626. `parameter` is what put it there: the switch of the root
    (lesson 05) or the working directory asked for (`cwd`, lesson 23).
    """
    try:
        cwd = os.getcwd()
    except FileNotFoundError:
        cwd = "(unreachable)"
    if cwd.startswith("/"):
        return
    if parameter == "cwd":
        raise SpecError("cwd", "a directory inside the container's root", cwd,
                        hint="the working directory resolved outside the root, through a "
                             "descriptor left open (/proc/self/fd/N, CVE-2024-21626): name a "
                             "directory of the rootfs (lesson 23)")
    raise SpecError(parameter, "calls that leave the working directory inside the "
                    "new root", cwd,
                    hint="after chroot(2) or pivot_root(2), chdir('/'): a working "
                         "directory outside the root lets '..' climb out (lesson 05)")
