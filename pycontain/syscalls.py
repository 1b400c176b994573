"""The kernel boundary: every system call pycontain makes goes through this module.

No other module touches ctypes, `os.unshare` or `os.setns`. Names, argument order and flag names
are the kernel's own, so you can grep from here to the man page. Flags and options are
`pycontain.kernel_names` constants that print the way the C headers spell them (`MS_BIND|MS_REC`).

Failures raise `SyscallError` (an `OSError`) carrying the call, its arguments and the errno;
`pycontain.errors` adds a hint from its table (lesson 02).

Tests and lessons can swap the kernel for a recording double: every function here is also a method
of `Syscalls`, and `LINUX` is the instance that talks to the real kernel. `KERNEL_CALLS` lists
them all: `use()` routes them, `pycontain.testing.RecordingSyscalls` records each one, and
`pycontain.tracing` prints each one when a container runs with `trace=True`.

See also: unshare(2), setns(2), mount(2), umount2(2), pivot_root(2), sethostname(2), prctl(2);
capget(2), capset(2) (lesson 20: the capability sets, version 3, 64 bits); seccomp(2)
(lesson 21: a filter);
fork(2), setsid(2) (a detached container's supervisor), ioctl(2) (a terminal for
`pycontain exec -t`, tty_ioctl(4)), setgroups(2), setresuid(2),
setresgid(2) (lesson 09), sigaction(2), close_range(2),
execve(2); openat(2), write(2), close(2) (a kernel file, through `kernfs.write_once`);
shmget(2), shmctl(2), shmat(2), mq_open(3), mq_unlink(3) (lesson 07).
inotify_init1(2), inotify_add_watch(2) (lesson 14: waiting for cgroup events).
renameat2(2) (swapping a rebuilt root filesystem into place in one step).
Left out: clone3(2) (CPython cannot continue safely in a raw clone child; we re-exec instead).
"""

from __future__ import annotations

# _signal is the C half of `signal`, without its enums (see pycontain.init).
import _signal
import ctypes
import os

from pycontain.errors import SyscallError, flag_names  # noqa: F401  (flag_names: re-exported)
from pycontain.kernel_names import Flag, Option

# Every container's first process imports this module, so it imports only what the calls need:
# os.uname() instead of `platform` and libc's sethostname instead of `socket` (each a few ms), and
# kernel_names' constants instead of `enum` (4-5 ms).


class CloneFlag(Flag):
    """The CLONE_NEW* flags of unshare(2) and setns(2), from <linux/sched.h>."""

    CLONE_NEWTIME = 0x00000080
    CLONE_NEWNS = 0x00020000
    CLONE_NEWCGROUP = 0x02000000
    CLONE_NEWUTS = 0x04000000
    CLONE_NEWIPC = 0x08000000
    CLONE_NEWUSER = 0x10000000
    CLONE_NEWPID = 0x20000000
    CLONE_NEWNET = 0x40000000


class MountFlag(Flag):
    """mount(2) flags, from <linux/mount.h>."""

    MS_RDONLY = 1
    MS_NOSUID = 2
    MS_NODEV = 4
    MS_NOEXEC = 8
    MS_REMOUNT = 32
    MS_BIND = 4096
    MS_MOVE = 8192
    MS_REC = 16384
    MS_UNBINDABLE = 1 << 17
    MS_PRIVATE = 1 << 18
    MS_SLAVE = 1 << 19
    MS_SHARED = 1 << 20


class UmountFlag(Flag):
    """umount2(2) flags."""

    MNT_FORCE = 1
    MNT_DETACH = 2
    MNT_EXPIRE = 4
    UMOUNT_NOFOLLOW = 8


class PrctlOption(Option):
    """The prctl(2) options pycontain uses."""

    PR_SET_PDEATHSIG = 1
    PR_GET_PDEATHSIG = 2
    PR_GET_DUMPABLE = 3
    PR_SET_DUMPABLE = 4
    PR_SET_KEEPCAPS = 8
    PR_CAPBSET_READ = 23
    PR_CAPBSET_DROP = 24
    PR_SET_CHILD_SUBREAPER = 36
    PR_SET_NO_NEW_PRIVS = 38
    PR_GET_NO_NEW_PRIVS = 39
    PR_CAP_AMBIENT = 47


class CapAmbient(Option):
    """The second argument of prctl(PR_CAP_AMBIENT, ...), from <linux/prctl.h>."""

    PR_CAP_AMBIENT_IS_SET = 1
    PR_CAP_AMBIENT_RAISE = 2
    PR_CAP_AMBIENT_LOWER = 3
    PR_CAP_AMBIENT_CLEAR_ALL = 4


class IpcFlag(Flag):
    """shmget(2) flags, from <bits/ipc.h>; the low 9 bits are the permissions (0o600)."""

    IPC_CREAT = 0o1000
    IPC_EXCL = 0o2000


class IpcCmd(Option):
    """shmctl(2) commands, from <bits/ipc.h>."""

    IPC_RMID = 0


class OpenFlag(Flag):
    """open(2) flags that openat(2) and mq_open(3) take, from <fcntl.h> (O_RDONLY is 0, so it
    never shows)."""

    O_WRONLY = os.O_WRONLY
    O_RDWR = os.O_RDWR
    O_CREAT = os.O_CREAT
    O_EXCL = os.O_EXCL
    O_CLOEXEC = os.O_CLOEXEC


class InotifyFlag(Flag):
    """inotify_init1(2) flags and the inotify(7) event bits pycontain uses, from <sys/inotify.h>.

    The kernel signals a change of a cgroup v2 `*.events` file as IN_MODIFY (cgroup-v2.rst).
    """

    IN_MODIFY = 0x00000002
    IN_DELETE_SELF = 0x00000400
    IN_IGNORED = 0x00008000
    IN_NONBLOCK = os.O_NONBLOCK
    IN_CLOEXEC = os.O_CLOEXEC


class IoctlRequest(Option):
    """The ioctl(2) requests pycontain makes: on a terminal, from <asm/ioctls.h>
    (tty_ioctl(4)), and on a namespace file, from <linux/nsfs.h> (ioctl_ns(2))."""

    TIOCSCTTY = 0x540E  # make the terminal the caller's controlling terminal
    TIOCGWINSZ = 0x5413  # read its window size (struct winsize)
    TIOCSWINSZ = 0x5414  # set it: the process in front gets SIGWINCH
    NS_GET_NSTYPE = 0xB703  # the CLONE_NEW* type of the namespace an nsfs file refers to


class RenameFlag(Flag):
    """renameat2(2) flags, from <linux/fs.h>."""

    RENAME_NOREPLACE = 1
    RENAME_EXCHANGE = 2


#: the dirfd that means "relative to the working directory" (<fcntl.h>)
AT_FDCWD = -100
#: the largest handle name_to_handle_at(2) gives (<fcntl.h>, MAX_HANDLE_SZ)
MAX_HANDLE_SZ = 128

#: namespace name as in /proc/<pid>/ns/<name> -> its clone flag (a CloneFlag)
NAMESPACE_FLAGS: dict[str, int] = {
    "cgroup": CloneFlag.CLONE_NEWCGROUP,
    "ipc": CloneFlag.CLONE_NEWIPC,
    "mnt": CloneFlag.CLONE_NEWNS,
    "net": CloneFlag.CLONE_NEWNET,
    "pid": CloneFlag.CLONE_NEWPID,
    "time": CloneFlag.CLONE_NEWTIME,
    "user": CloneFlag.CLONE_NEWUSER,
    "uts": CloneFlag.CLONE_NEWUTS,
}

#: capget(2)/capset(2)'s header version with two 32-bit words per set (<linux/capability.h>)
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


# pivot_root and seccomp have no glibc wrapper: called by number (asm/unistd_64.h,
# asm-generic/unistd.h).
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41, "ppc64le": 203}
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277, "arm64": 277, "riscv64": 277, "ppc64le": 358}


class _SockFprog(ctypes.Structure):
    """struct sock_fprog (<linux/filter.h>): a classic-BPF program's length and instructions."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


#: clone(2)'s flag that gives the child our own parent, and the signal its end sends that parent
CLONE_PARENT, _SIGCHLD = 0x00008000, 17
#: clone(2)'s number (<asm/unistd.h>): with no stack and no TLS its argument order does not matter
_CLONE_NUMBERS = {"x86_64": 56, "aarch64": 220}


class Syscalls:
    """The real kernel. Subclass it (or use `pycontain.testing`) to record calls instead."""

    def __init__(self) -> None:
        self._libc: ctypes.CDLL | None = None

    @property
    def libc(self) -> ctypes.CDLL:
        # CDLL(None) reuses the libc already loaded; find_library("c") would run ldconfig (~9 ms).
        if self._libc is None:
            self._libc = ctypes.CDLL(None, use_errno=True)
        return self._libc

    def _check(self, result: int, call: str, args: tuple[object, ...]) -> int:
        if result == -1:
            raise SyscallError(call, args, ctypes.get_errno())
        return result

    def unshare(self, flags: CloneFlag | int) -> None:
        """unshare(2): move the calling process into new namespaces."""
        args = (CloneFlag(flags),)
        if hasattr(os, "unshare"):  # Python >= 3.12
            try:
                os.unshare(int(flags))
            except OSError as e:
                raise SyscallError("unshare", args, e.errno or 0) from None
            return
        self._check(self.libc.unshare(ctypes.c_int(int(flags))), "unshare", args)

    def setns(self, fd: int, nstype: CloneFlag | int = 0) -> None:
        """setns(2): join the namespace that `fd` (an open /proc/<pid>/ns/* file) refers to."""
        args = (fd, CloneFlag(nstype))
        if hasattr(os, "setns"):  # Python >= 3.12
            try:
                os.setns(fd, int(nstype))
            except OSError as e:
                raise SyscallError("setns", args, e.errno or 0) from None
            return
        self._check(self.libc.setns(ctypes.c_int(fd), ctypes.c_int(int(nstype))), "setns", args)

    def mount(
        self,
        source: str | None,
        target: str,
        fstype: str | None,
        flags: MountFlag | int = 0,
        data: str | None = None,
    ) -> None:
        """mount(2), with the kernel's argument order."""
        args = (source, target, fstype, MountFlag(flags), data)

        def enc(s: str | None) -> bytes | None:
            return None if s is None else os.fsencode(s)

        result = self.libc.mount(
            enc(source), enc(target), enc(fstype), ctypes.c_ulong(int(flags)), enc(data)
        )
        self._check(result, "mount", args)

    def umount2(self, target: str, flags: UmountFlag | int = 0) -> None:
        """umount2(2)."""
        args = (target, UmountFlag(flags))
        result = self.libc.umount2(os.fsencode(target), ctypes.c_int(int(flags)))
        self._check(result, "umount2", args)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        """pivot_root(2): make `new_root` the root mount; the old root moves to `put_old`."""
        number = _SYS_PIVOT_ROOT.get(os.uname().machine)
        if number is None:
            raise SyscallError("pivot_root", (new_root, put_old), 38)  # ENOSYS
        result = self.libc.syscall(
            ctypes.c_long(number), os.fsencode(new_root), os.fsencode(put_old)
        )
        self._check(result, "pivot_root", (new_root, put_old))

    def sethostname(self, name: str) -> None:
        """sethostname(2): set the hostname of the caller's UTS namespace."""
        encoded = os.fsencode(name)
        if b"\0" in encoded:
            raise ValueError("embedded null byte")  # as socket.sethostname and os.* say it
        result = self.libc.sethostname(encoded, ctypes.c_size_t(len(encoded)))
        self._check(result, "sethostname", (name,))

    def prctl(self, option: PrctlOption | int, arg2: int = 0, arg3: int = 0) -> int:
        """prctl(2) with up to two arguments (the rest 0, as the kernel requires of most
        options); returns the kernel's result."""
        args = (PrctlOption(option), arg2, arg3)
        result = self.libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2),
                                 ctypes.c_ulong(arg3), ctypes.c_ulong(0), ctypes.c_ulong(0))
        return self._check(result, "prctl", args)

    def capget(self, pid: int = 0) -> tuple[int, int, int]:
        """capget(2): the (effective, permitted, inheritable) sets of `pid` (0: the caller),
        each a 64-bit mask, bit N for capability N."""
        header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
        data = (_CapData * 2)()
        self._check(self.libc.capget(ctypes.byref(header), data), "capget", (pid,))
        low, high = data
        return (low.effective | high.effective << 32, low.permitted | high.permitted << 32,
                low.inheritable | high.inheritable << 32)

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        """capset(2) on the calling thread: its effective, permitted and inheritable sets,
        64-bit masks. A process may lower them; it may raise only effective, within permitted."""
        header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
        data = (_CapData * 2)()
        for word in (0, 1):
            data[word].effective = effective >> (32 * word) & 0xFFFFFFFF
            data[word].permitted = permitted >> (32 * word) & 0xFFFFFFFF
            data[word].inheritable = inheritable >> (32 * word) & 0xFFFFFFFF
        self._check(self.libc.capset(ctypes.byref(header), data), "capset",
                    (effective, permitted, inheritable))

    def seccomp(self, operation: int, flags: int, program: bytes) -> None:
        """seccomp(2) with a filter: `program` is an array of 8-byte `struct sock_filter`
        (lesson 21: `security.seccomp` assembles it)."""
        args = (operation, flags, f"<{len(program) // 8} instructions>")
        number = _SYS_SECCOMP.get(os.uname().machine)
        if number is None:
            raise SyscallError("seccomp", args, 38)  # ENOSYS
        code = ctypes.create_string_buffer(program, len(program))
        prog = _SockFprog(len(program) // 8, ctypes.cast(code, ctypes.c_void_p))
        result = self.libc.syscall(ctypes.c_long(number), ctypes.c_uint(operation),
                                   ctypes.c_uint(flags), ctypes.byref(prog))
        self._check(result, "seccomp", args)

    def chdir(self, path: str) -> None:
        """chdir(2)."""
        try:
            os.chdir(path)
        except OSError as e:
            raise SyscallError("chdir", (path,), e.errno or 0) from None

    def chroot(self, path: str) -> None:
        """chroot(2): change the root directory only (lesson 05 shows why that is not enough)."""
        try:
            os.chroot(path)
        except OSError as e:
            raise SyscallError("chroot", (path,), e.errno or 0) from None

    def execve(self, path: str, argv: list[str], env: dict[str, str]) -> None:
        """execve(2): replace this process with the program at `path`. Returns only on failure.

        No PATH search here: the runtime resolves the path before the container exists (and
        Python's os.execvpe imports a module on first use, which fails after pivot_root has
        put the interpreter's library out of reach).
        """
        try:
            os.execve(path, argv, env)
        except OSError as e:
            raise SyscallError("execve", (path, argv), e.errno or 0) from None

    def renameat2(self, olddirfd: int, oldpath: str, newdirfd: int, newpath: str,
                  flags: RenameFlag | int = 0) -> None:
        """renameat2(2): rename(2) with flags; RENAME_EXCHANGE swaps two existing paths."""
        args = (olddirfd, oldpath, newdirfd, newpath, RenameFlag(flags))
        result = self.libc.renameat2(ctypes.c_int(olddirfd), os.fsencode(oldpath),
                                     ctypes.c_int(newdirfd), os.fsencode(newpath),
                                     ctypes.c_uint(int(flags)))
        self._check(result, "renameat2", args)

    def fork(self) -> int:
        """fork(2): 0 in the child, the child's PID in the parent. Only from one thread."""
        try:
            return os.fork()
        except OSError as e:
            raise SyscallError("fork", (), e.errno or 0) from None

    def clone_parent(self) -> int:
        """clone(2) with CLONE_PARENT: a fork(2) whose child is our parent's child, not ours
        (`forkserver`: the container is the notebook's own child, which waits for it).

        Made as os.fork() makes fork(2): the interpreter's fork hooks around the raw call, all
        with the GIL held, from the one thread of a single-threaded process. 0 in the child.
        """
        number = _CLONE_NUMBERS.get(os.uname().machine)
        if number is None:
            raise SyscallError("clone", (), 38)  # ENOSYS: no number known for this machine
        api = ctypes.PyDLL(None, use_errno=True)  # PyDLL: the GIL stays held, as in os.fork
        api.PyOS_BeforeFork()
        pid = api.syscall(ctypes.c_long(number), ctypes.c_long(CLONE_PARENT | _SIGCHLD),
                          *(ctypes.c_long(0),) * 4)
        if pid == 0:
            api.PyOS_AfterFork_Child()
        else:
            api.PyOS_AfterFork_Parent()
        if pid == -1:
            raise SyscallError("clone", ("CLONE_PARENT|SIGCHLD",), ctypes.get_errno())
        return int(pid)

    def setsid(self) -> None:
        """setsid(2): a new session and process group, without a controlling terminal: how a
        detached container's supervisor leaves the command that started it (supervisor.py)."""
        try:
            os.setsid()
        except OSError as e:
            raise SyscallError("setsid", (), e.errno or 0) from None

    def ioctl(self, fd: int, request: IoctlRequest | int, arg: bytes | int = 0) -> bytes | int:
        """ioctl(2) on a terminal: `arg` an int, or the bytes of the struct the request reads
        or fills (returned filled)."""
        import fcntl

        try:
            result: bytes | int = fcntl.ioctl(fd, int(request), arg)
        except OSError as e:
            raise SyscallError("ioctl", (fd, IoctlRequest(request), arg), e.errno or 0) from None
        return result

    def setgroups(self, groups: list[int]) -> None:
        """setgroups(2): set the supplementary groups ([] drops them all)."""
        try:
            os.setgroups(groups)
        except OSError as e:
            raise SyscallError("setgroups", (groups,), e.errno or 0) from None

    def setrlimit(self, resource: int, soft: int, hard: int) -> None:
        """setrlimit(2): the soft and hard limit of `resource` (RLIMIT_NOFILE = 7, ...); raising
        a hard limit needs CAP_SYS_RESOURCE. -1 is RLIM_INFINITY."""
        limits = (ctypes.c_ulong * 2)(soft & 0xFFFFFFFFFFFFFFFF, hard & 0xFFFFFFFFFFFFFFFF)
        self._check(self.libc.setrlimit(ctypes.c_int(resource), limits), "setrlimit",
                    (resource, soft, hard))

    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        """setresuid(2): set the real, effective and saved user ids."""
        try:
            os.setresuid(ruid, euid, suid)
        except OSError as e:
            raise SyscallError("setresuid", (ruid, euid, suid), e.errno or 0) from None

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        """setresgid(2): set the real, effective and saved group ids."""
        try:
            os.setresgid(rgid, egid, sgid)
        except OSError as e:
            raise SyscallError("setresgid", (rgid, egid, sgid), e.errno or 0) from None

    def sigaction(self, signum: int, handler: int) -> None:
        """sigaction(2) with SIG_DFL (0) or SIG_IGN (1), as signal.signal() makes it."""
        try:
            _signal.signal(signum, handler)
        except OSError as e:
            raise SyscallError("sigaction", (signum, handler), e.errno or 0) from None

    def close_range(self, first: int, last: int) -> None:
        """close_range(2): close every descriptor from `first` to `last`, both included."""
        os.closerange(first, last + 1)  # close_range(2) itself where the kernel has it

    def openat(self, dirfd: int, pathname: str, flags: OpenFlag | int, mode: int = 0) -> int:
        """openat(2): open `pathname` (relative to `dirfd`, or AT_FDCWD); a descriptor."""
        try:
            return os.open(pathname, int(flags), mode,
                           dir_fd=None if dirfd == AT_FDCWD else dirfd)
        except OSError as e:
            raise SyscallError("openat", (dirfd, pathname, OpenFlag(flags)),
                               e.errno or 0) from None

    def write(self, fd: int, data: bytes) -> int:
        """write(2): write `data` to `fd` in one call; how many bytes were taken."""
        try:
            return os.write(fd, data)
        except OSError as e:
            raise SyscallError("write", (fd, data), e.errno or 0) from None

    def close(self, fd: int) -> None:
        """close(2)."""
        try:
            os.close(fd)
        except OSError as e:
            raise SyscallError("close", (fd,), e.errno or 0) from None

    # System V shared memory and POSIX message queues (lesson 07): objects of an IPC namespace.

    def shmget(self, key: int, size: int, shmflg: IpcFlag | int = 0) -> int:
        """shmget(2): the id of the shared-memory segment with `key`, created with IPC_CREAT."""
        args = (key, size, IpcFlag(shmflg))
        result = self.libc.shmget(ctypes.c_int(key), ctypes.c_size_t(size), ctypes.c_int(shmflg))
        return self._check(result, "shmget", args)

    def shmctl(self, shmid: int, cmd: IpcCmd | int) -> None:
        """shmctl(2) without a buffer: the one command pycontain needs is IPC_RMID."""
        result = self.libc.shmctl(ctypes.c_int(shmid), ctypes.c_int(cmd), None)
        self._check(result, "shmctl", (shmid, IpcCmd(cmd)))

    def shmat(self, shmid: int, shmflg: int = 0) -> int:
        """shmat(2): attach the segment where the kernel chooses; return its address."""
        self.libc.shmat.restype = ctypes.c_void_p
        address = self.libc.shmat(ctypes.c_int(shmid), None, ctypes.c_int(shmflg))
        if address == ctypes.c_void_p(-1).value:  # (void *) -1 means failure
            raise SyscallError("shmat", (shmid, shmflg), ctypes.get_errno())
        return int(address or 0)

    def shmdt(self, address: int) -> None:
        """shmdt(2): detach the segment attached at `address`."""
        self._check(self.libc.shmdt(ctypes.c_void_p(address)), "shmdt", (hex(address),))

    def mq_open(self, name: str, oflag: OpenFlag | int = 0, mode: int = 0o600) -> int:
        """mq_open(3): open (with O_CREAT: create) the POSIX message queue `name`; a descriptor.

        Default attributes (attr NULL): the limits in /proc/sys/fs/mqueue (mq_overview(7)).
        """
        result = self.libc.mq_open(os.fsencode(name), ctypes.c_int(oflag),
                                   ctypes.c_uint(mode), None)
        return self._check(result, "mq_open", (name, OpenFlag(oflag)))

    def mq_close(self, mqdes: int) -> None:
        """mq_close(3)."""
        self._check(self.libc.mq_close(ctypes.c_int(mqdes)), "mq_close", (mqdes,))

    def mq_unlink(self, name: str) -> None:
        """mq_unlink(3): remove the queue `name` (it goes when the last descriptor closes)."""
        self._check(self.libc.mq_unlink(os.fsencode(name)), "mq_unlink", (name,))

    # file handles (lesson 23): a file named by the kernel's own handle, no path walked

    def name_to_handle_at(self, dirfd: int, pathname: str, flags: int = 0) -> bytes:
        """name_to_handle_at(2): the handle of `pathname`, as the bytes of its struct
        file_handle (handle_bytes, handle_type, f_handle), which open_by_handle_at(2) takes."""
        size = MAX_HANDLE_SZ
        buffer = ctypes.create_string_buffer(8 + size)
        ctypes.c_uint.from_buffer(buffer).value = size
        mount_id = ctypes.c_int()
        result = self.libc.name_to_handle_at(ctypes.c_int(dirfd), os.fsencode(pathname), buffer,
                                             ctypes.byref(mount_id), ctypes.c_int(flags))
        self._check(result, "name_to_handle_at", (dirfd, pathname, flags))
        used = ctypes.c_uint.from_buffer(buffer).value
        return buffer.raw[:8 + used]

    # inotify (lesson 14): the kernel tells us when a cgroup's events file changes.

    def inotify_init1(self, flags: InotifyFlag | int = 0) -> int:
        """inotify_init1(2): a new inotify instance; returns its file descriptor."""
        result = self.libc.inotify_init1(ctypes.c_int(int(flags)))
        return self._check(result, "inotify_init1", (InotifyFlag(flags),))

    def inotify_add_watch(self, fd: int, pathname: str, mask: InotifyFlag | int) -> int:
        """inotify_add_watch(2): watch `pathname` for the events in `mask`; a watch descriptor."""
        result = self.libc.inotify_add_watch(ctypes.c_int(fd), os.fsencode(pathname),
                                             ctypes.c_uint32(int(mask)))
        return self._check(result, "inotify_add_watch", (fd, pathname, InotifyFlag(mask)))


#: the instance that talks to the real kernel
LINUX = Syscalls()

#: every system call of `Syscalls`, each also a module function (`syscalls.mount(...)`) bound to
#: the kernel in use; `use()` routes them, `testing.RecordingSyscalls` records them and
#: `tracing.Tracer` prints them, all from this list (tests/unit/test_syscalls.py: it is whole)
KERNEL_CALLS = (
    "unshare", "setns", "mount", "umount2", "pivot_root", "sethostname", "prctl", "capget",
    "capset", "seccomp", "chdir",
    "chroot", "fork", "clone_parent", "setsid", "ioctl", "setgroups", "setrlimit", "setresuid",
    "setresgid", "sigaction", "close_range",
    "execve",
    "renameat2", "openat", "write", "close", "shmget", "shmctl", "shmat", "shmdt", "mq_open",
    "mq_close", "mq_unlink", "inotify_init1", "inotify_add_watch", "name_to_handle_at",
)

_in_use: Syscalls = LINUX


def use(kernel: Syscalls) -> Syscalls:
    """Route the module functions to `kernel`; return the one they used before.

    `pycontain.testing.recorded()` uses this to record calls instead of making them, and
    `pycontain.tracing` to print them as they are made.
    """
    global _in_use
    previous, _in_use = _in_use, kernel
    for name in KERNEL_CALLS:
        globals()[name] = getattr(kernel, name)
    return previous


def in_use() -> Syscalls:
    """The kernel the module functions call now: `LINUX`, or a double routed by `use()`."""
    return _in_use


unshare = LINUX.unshare
setns = LINUX.setns
mount = LINUX.mount
umount2 = LINUX.umount2
pivot_root = LINUX.pivot_root
sethostname = LINUX.sethostname
prctl = LINUX.prctl
capget = LINUX.capget
capset = LINUX.capset
seccomp = LINUX.seccomp
chdir = LINUX.chdir
chroot = LINUX.chroot
fork = LINUX.fork
clone_parent = LINUX.clone_parent
setsid = LINUX.setsid
ioctl = LINUX.ioctl
setgroups = LINUX.setgroups
setrlimit = LINUX.setrlimit
setresuid = LINUX.setresuid
setresgid = LINUX.setresgid
sigaction = LINUX.sigaction
close_range = LINUX.close_range
name_to_handle_at = LINUX.name_to_handle_at
execve = LINUX.execve
renameat2 = LINUX.renameat2
openat = LINUX.openat
write = LINUX.write
close = LINUX.close
shmget = LINUX.shmget
shmctl = LINUX.shmctl
shmat = LINUX.shmat
shmdt = LINUX.shmdt
mq_open = LINUX.mq_open
mq_close = LINUX.mq_close
mq_unlink = LINUX.mq_unlink
inotify_init1 = LINUX.inotify_init1
inotify_add_watch = LINUX.inotify_add_watch
