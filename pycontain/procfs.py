"""Reading the kernel's view of a process from /proc: namespaces, status, mounts (lesson 01).

Every process has one namespace of each type. `/proc/<pid>/ns/<type>` is a magic link whose
target, such as `uts:[4026531838]`, names the namespace by the inode number of its nsfs file:
two processes share a namespace exactly when those numbers are equal. This module only reads.

See also: proc(5), namespaces(7) ("The /proc/[pid]/ns/ directory"), proc_pid_status(5),
proc_pid_mountinfo(5). Left out: ioctl_ns(2) (NS_GET_PARENT, NS_GET_USERNS).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

#: the eight namespace types, as /proc/<pid>/ns names them (pid_for_children etc. left out)
NAMESPACE_TYPES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")

_NS_LINK = re.compile(r"^(?P<type>[a-z_]+):\[(?P<inode>\d+)\]$")


@dataclass(frozen=True, order=True)
class NamespaceId:
    """One namespace, identified the way the kernel does: its type and nsfs inode number."""

    type: str
    inode: int

    def __str__(self) -> str:
        return f"{self.type}:[{self.inode}]"


def parse_ns_link(target: str) -> NamespaceId:
    """Parse the target of a /proc/<pid>/ns/* link.

    >>> parse_ns_link("uts:[4026531838]")
    NamespaceId(type='uts', inode=4026531838)
    """
    m = _NS_LINK.match(target)
    if not m:
        raise ValueError(f"not a namespace link target: {target!r}")
    return NamespaceId(m["type"], int(m["inode"]))


def namespace(pid: int | str, ns_type: str, *, proc: str = "/proc") -> NamespaceId:
    """The namespace of type `ns_type` that process `pid` is in ("self" for this process)."""
    if ns_type not in NAMESPACE_TYPES:
        raise ValueError(f"`ns_type` must be one of {', '.join(NAMESPACE_TYPES)}, got {ns_type!r}")
    return parse_ns_link(os.readlink(f"{proc}/{pid}/ns/{ns_type}"))


def namespace_type(path: str) -> str | None:
    """The type of the namespace the file at `path` refers to ("net", "ipc", ...: ioctl
    NS_GET_NSTYPE, ioctl_ns(2)), or None when it is no namespace (or does not exist).

    >>> namespace_type("/proc/self/ns/uts"), namespace_type("/etc/hostname")
    ('uts', None)
    """
    from pycontain import syscalls
    from pycontain.errors import SyscallError

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        kind = syscalls.ioctl(fd, syscalls.IoctlRequest.NS_GET_NSTYPE)
    except SyscallError:  # ENOTTY: not an nsfs file
        return None
    finally:
        os.close(fd)
    return next((name for name, flag in syscalls.NAMESPACE_FLAGS.items() if flag == kind), None)


def namespaces(pid: int | str = "self", *, proc: str = "/proc") -> dict[str, NamespaceId]:
    """All namespaces of a process, keyed by type. Types the kernel lacks are left out."""
    found = {}
    for ns_type in NAMESPACE_TYPES:
        try:
            found[ns_type] = namespace(pid, ns_type, proc=proc)
        except FileNotFoundError:
            continue
    return found


def shared_namespaces(pid_a: int | str, pid_b: int | str, *, proc: str = "/proc") -> set[str]:
    """The namespace types two processes share (equal inode numbers)."""
    a, b = namespaces(pid_a, proc=proc), namespaces(pid_b, proc=proc)
    return {t for t in a if t in b and a[t] == b[t]}


def parse_status(text: str) -> dict[str, str]:
    r"""Parse /proc/<pid>/status into a dict of raw strings (`fields` below types a few).

    >>> parse_status("Name:\tsleep\nNSpid:\t4242\t1\n")["NSpid"]
    '4242\t1'
    """
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key] = value.strip()
    return out


@dataclass(frozen=True)
class Status:
    """The fields of /proc/<pid>/status the lessons use."""

    name: str
    pid: int
    ppid: int
    state: str
    nspid: tuple[int, ...]  # this process's PID in each nested PID namespace, outermost first
    uid: tuple[int, ...]  # real, effective, saved, filesystem
    threads: int

    @classmethod
    def parse(cls, text: str) -> Status:
        r"""Parse a status file.

        >>> s = Status.parse("Name:\tsh\nState:\tS (sleeping)\nPid:\t4242\nPPid:\t7\n"
        ...                  "Uid:\t0\t0\t0\t0\nThreads:\t1\nNSpid:\t4242\t1\n")
        >>> s.nspid, s.pid, s.state
        ((4242, 1), 4242, 'S (sleeping)')
        """
        f = parse_status(text)
        pid = int(f["Pid"])
        return cls(
            name=f.get("Name", ""),
            pid=pid,
            ppid=int(f.get("PPid", "0")),
            state=f.get("State", ""),
            nspid=tuple(int(x) for x in f.get("NSpid", str(pid)).split()),
            uid=tuple(int(x) for x in f.get("Uid", "").split()),
            threads=int(f.get("Threads", "1")),
        )


def status(pid: int | str = "self", *, proc: str = "/proc") -> Status:
    """The parsed /proc/<pid>/status of a process."""
    with open(f"{proc}/{pid}/status") as f:
        return Status.parse(f.read())


def _unescape(field: str) -> str:
    r"""mountinfo escapes space, tab, newline and backslash as octal.

    >>> _unescape(r"/tmp/a\040b")
    '/tmp/a b'
    """
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


@dataclass(frozen=True)
class Mount:
    """One line of /proc/<pid>/mountinfo."""

    mount_id: int
    parent_id: int
    root: str  # the directory of the filesystem that is mounted
    mount_point: str
    options: str
    propagation: tuple[str, ...]  # shared:N, master:N, propagate_from:N, unbindable
    fstype: str
    source: str

    @property
    def shared(self) -> bool:
        return any(p.startswith("shared:") for p in self.propagation)

    @classmethod
    def parse(cls, line: str) -> Mount:
        """Parse one mountinfo line.

        >>> m = Mount.parse("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw")
        >>> m.mount_point, m.root, m.propagation, m.fstype
        ('/mnt2', '/mnt1', ('master:1',), 'ext3')
        """
        left, _, right = line.partition(" - ")
        fields = left.split()
        fstype, source, *_ = right.split() + ["", ""]
        return cls(
            mount_id=int(fields[0]),
            parent_id=int(fields[1]),
            root=_unescape(fields[3]),
            mount_point=_unescape(fields[4]),
            options=fields[5],
            propagation=tuple(fields[6:]),
            fstype=fstype,
            source=_unescape(source),
        )


def mountinfo(pid: int | str = "self", *, proc: str = "/proc") -> list[Mount]:
    """The mounts process `pid` sees, in the kernel's order."""
    with open(f"{proc}/{pid}/mountinfo") as f:
        return [Mount.parse(line) for line in f if line.strip()]


def pids(*, proc: str = "/proc") -> list[int]:
    """Every process ID visible in this /proc."""
    return sorted(int(n) for n in os.listdir(proc) if n.isdigit())


def cmdline(pid: int | str, *, proc: str = "/proc") -> list[str]:
    """A process's argv (empty for kernel threads)."""
    with open(f"{proc}/{pid}/cmdline", "rb") as f:
        return [os.fsdecode(a) for a in f.read().split(b"\0") if a]


# --- lesson 18: where processes run, and how busy each CPU is -----------------------------------

def processor(stat_text: str) -> int:
    """The CPU a process last ran on: field 39 of /proc/<pid>/stat (proc_pid_stat(5)).

    The command, field 2, may hold spaces and parentheses, so the fields are counted from the
    last `)`.

    >>> processor("42 (a b) R " + " ".join(["0"] * 35) + " 1 0 0")
    1
    """
    return int(stat_text[stat_text.rindex(")") + 2:].split()[36])


def cpu_times(text: str | None = None) -> dict[int, tuple[int, int]]:
    """Each CPU's (busy, total) time in clock ticks since boot, from /proc/stat (`text`, or
    the file). Busy is all but idle and iowait; guest time is in user already (proc_stat(5)).

    >>> cpu_times("cpu  9 0 9 90 0 0 0 0 0 0\\ncpu0 5 0 5 40 0 0 0 0 0 0\\n"
    ...           "cpu1 4 0 4 50 2 0 0 0 0 0\\nintr 1\\n")
    {0: (10, 50), 1: (8, 60)}
    """
    if text is None:
        with open("/proc/stat") as f:
            text = f.read()
    found = {}
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name[3:].isdigit():
            ticks = [int(v) for v in rest.split()[:8]]  # user .. steal; guest is within user
            idle = ticks[3] + ticks[4]
            found[int(name[3:])] = (sum(ticks) - idle, sum(ticks))
    return found


def busy_shares(before: dict[int, tuple[int, int]],
                after: dict[int, tuple[int, int]]) -> dict[int, float]:
    """How busy each CPU was between two `cpu_times()`, from 0 (idle) to 1 (busy throughout).

    >>> busy_shares({0: (10, 50), 1: (8, 60)}, {0: (20, 60), 1: (8, 70)})
    {0: 1.0, 1: 0.0}
    """
    return {cpu: (after[cpu][0] - busy) / max(1, after[cpu][1] - total)
            for cpu, (busy, total) in before.items() if cpu in after}
