"""IPC namespace: private System V IPC objects and POSIX message queues (lesson 07).

Processes can talk through objects the kernel keeps outside any filesystem: System V
shared-memory segments, message queues and semaphore sets, found by a numeric *key*, and POSIX
message queues, found by a *name* such as `/pycontain-q`. An IPC namespace gives a process its own
set of all of them: its own keys, its own ids, its own names, its own limits
(/proc/sys/kernel/shm*, /proc/sys/fs/mqueue). Two containers may both create key 0x70630001
without a clash, and a segment id from one namespace means nothing in another. The objects
belong to the namespace, not to a process: a segment outlives its creator, and goes with its
namespace when the last process leaves.

Where to see them: /proc/sysvipc/{shm,msg,sem} list the objects of the *reader's* IPC namespace
(ipcs(1) reads those files). POSIX queues appear as files in an mqueue filesystem, and a mount
of it shows the queues of the IPC namespace of the process that mounted it (mq_overview(7)).
So `view()` mounts a fresh one, in a private mount namespace of its own: it must run in a
throw-away process, which `command()` and `run_in()` start. pycontain names what it creates
so that `pycontain cleanup` can find it: segment keys 0x7063xxxx ("pc"), queues `/pycontain-…`.

See also: ipc_namespaces(7), sysvipc(7), shmget(2), shmat(2), shmctl(2), mq_overview(7),
mq_open(3), ipcs(1), nsenter(1).
Left out: POSIX shared memory (shm_open(3)) is a file in the tmpfs at /dev/shm, isolated by the
mount namespace, not this one; SysV message queues and semaphores are listed, never created.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from pycontain import helper, syscalls
from pycontain.errors import PycontainError, SpecError
from pycontain.settings import QUEUE_PREFIX
from pycontain.syscalls import CloneFlag, IpcCmd, IpcFlag, MountFlag, OpenFlag

#: every SysV key pycontain uses is 0x7063xxxx ("pc"), easy to spot in `ipcs` and to clean up
KEY_BASE = 0x70630000
KEYS = range(KEY_BASE, KEY_BASE + 0x10000)
NAME_MAX = 255  # a queue name is "/" and at most NAME_MAX more bytes (mq_overview(7))
MAX_SEGMENT_BYTES = 256 << 20  # ours, to keep experiments small; the kernel's is shmmax
#: where `queues()` puts a private tmpfs for its mqueue mount, in its own mount namespace
MQUEUE_BASE = "/tmp"
#: where systemd mounts an mqueue filesystem: the queues of the IPC namespace that mounted it
MQUEUE_MOUNT = "/dev/mqueue"


class Segment(NamedTuple):
    """One line of /proc/sysvipc/shm: a System V shared-memory segment."""

    key: int
    shmid: int
    size_bytes: int
    nattch: int  # how many attachments it has now

    @property
    def label(self) -> str:
        return f"shm {self.key:#010x}"

    def __repr__(self) -> str:
        """
        >>> Segment(0x70630001, 3, 4096, 0)
        Segment(key=0x70630001, shmid=3, size_bytes=4096, nattch=0)
        """
        return (f"Segment(key={self.key:#010x}, shmid={self.shmid}, "
                f"size_bytes={self.size_bytes}, nattch={self.nattch})")


def validate_key(key: int) -> int:
    """A key pycontain may create a segment with: one in `KEYS`.

    >>> validate_key(0x70630007) == 0x70630007
    True
    """
    if not isinstance(key, int) or key not in KEYS:
        raise SpecError("key", f"an int in {KEYS.start:#x}-{KEYS.stop - 1:#x}", key,
                        hint="pycontain's keys are 0x7063xxxx so that cleanup can find them; "
                             "take one from ipc.new_key() (lesson 07)")
    return key


def validate_queue_name(name: str, *, ours: bool = True) -> str:
    """A POSIX queue name: '/', then 1-255 bytes without '/' (and `/pycontain-…` when `ours`).

    >>> validate_queue_name("/pycontain-q")
    '/pycontain-q'
    """
    size = len(name.encode()) if isinstance(name, str) else 0
    if not (size > 1 and name[0] == "/" and "/" not in name[1:] and "\0" not in name
            and size <= NAME_MAX + 1 and (name.startswith(QUEUE_PREFIX) or not ours)):
        accepted = f"'{QUEUE_PREFIX}…'" if ours else "'/' and 1-255 bytes"
        raise SpecError("name", f"{accepted} without a further '/'", name,
                        hint="mq_open(3) takes '/name'; pycontain's queues start with "
                             f"{QUEUE_PREFIX!r} so that cleanup can find them (lesson 07)")
    return name


def new_key() -> int:
    """A key in `KEYS` that no segment of this IPC namespace uses yet."""
    used = {s.key for s in segments()}
    while (key := KEY_BASE + secrets.randbelow(len(KEYS))) in used:
        pass
    return key


def new_queue_name(tag: str = "q") -> str:
    """A fresh queue name such as `/pycontain-q-1f2e3d4c`."""
    return validate_queue_name(f"{QUEUE_PREFIX}{tag}-{secrets.token_hex(4)}")


# --- creating, using and removing objects in the caller's IPC namespace ------------------------

def create_segment(key: int, size_bytes: int = 4096, fill: bool = False) -> int:
    """shmget(2) with IPC_CREAT|IPC_EXCL, mode 0600: a new segment; return its id.

    `fill` writes every byte once, so that the kernel really allocates the memory (counted in
    /proc/meminfo `Shmem` until the segment is removed).
    """
    validate_key(key)
    if not isinstance(size_bytes, int) or not 0 < size_bytes <= MAX_SEGMENT_BYTES:
        raise SpecError("size_bytes", f"1-{MAX_SEGMENT_BYTES} bytes", size_bytes)
    shmid = syscalls.shmget(key, size_bytes, IpcFlag.IPC_CREAT | IpcFlag.IPC_EXCL | 0o600)
    if fill:
        fill_segment(shmid, size_bytes)
    return shmid


def fill_segment(shmid: int, size_bytes: int) -> None:
    """Attach the segment, write `size_bytes` to it, detach (shmat(2), shmdt(2))."""
    address = syscalls.shmat(shmid)
    try:
        # Python cannot store to an address without ctypes; /proc/self/mem is this process's
        # memory as a file (proc(5)), so a write at `address` lands in the segment.
        with open("/proc/self/mem", "r+b", buffering=0) as memory:
            chunk = b"\x01" * (1 << 20)
            for offset in range(0, size_bytes, len(chunk)):
                memory.seek(address + offset)
                memory.write(chunk[:size_bytes - offset])
    finally:
        syscalls.shmdt(address)


def attach_segment(shmid: int) -> int:
    """shmat(2) then shmdt(2): EINVAL when `shmid` names no segment in this namespace."""
    syscalls.shmdt(syscalls.shmat(shmid))
    return shmid


def remove_segment(shmid: int | str) -> None:
    """shmctl(2) IPC_RMID: the segment goes as soon as nothing is attached to it."""
    syscalls.shmctl(int(shmid), IpcCmd.IPC_RMID)


def create_queue(name: str) -> str:
    """mq_open(3) with O_CREAT|O_EXCL, mode 0600, default limits; close it; return the name."""
    flags = OpenFlag.O_CREAT | OpenFlag.O_EXCL | OpenFlag.O_RDWR
    syscalls.mq_close(syscalls.mq_open(validate_queue_name(name), flags))
    return name


def open_queue(name: str) -> str:
    """mq_open(3) an existing queue read-only, then close it: ENOENT when it is not here."""
    syscalls.mq_close(syscalls.mq_open(validate_queue_name(name, ours=False)))
    return name


def remove_queue(name: str) -> None:
    """mq_unlink(3)."""
    syscalls.mq_unlink(validate_queue_name(name, ours=False))


# --- what an IPC namespace holds ---------------------------------------------------------------

def _table(path: str) -> list[list[int]]:
    """The numeric rows of a /proc/sysvipc file (the first line is a header); none without
    CONFIG_SYSVIPC."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()[1:]
    except FileNotFoundError:
        return []
    return [[int(v) for v in line.split()] for line in lines if line]


def segments(path: str = "/proc/sysvipc/shm") -> list[Segment]:
    """The shared-memory segments of the reading process's IPC namespace."""
    return [Segment(r[0], r[1], r[3], r[6]) for r in _table(path)]


def shmem_bytes() -> int:
    """`Shmem` of /proc/meminfo: memory held by shared memory, in every namespace together."""
    with open("/proc/meminfo") as f:
        line = next(x for x in f if x.startswith("Shmem:"))
    return int(line.split()[1]) * 1024


def queues() -> list[str]:
    """The POSIX queues of this process's IPC namespace, read from a fresh mqueue mount.

    The mount goes into a new mount namespace of this process, so nothing else sees it; that is
    why this refuses to run in a multi-threaded process such as a notebook (use `run_in`).
    """
    if len(os.listdir("/proc/self/task")) > 1:
        raise PycontainError("ipc.queues() changes its process's mount namespace; run it in a "
                             "fresh process: ipc.run_in(None, 'view') (lesson 07)")
    syscalls.unshare(CloneFlag.CLONE_NEWNS)
    syscalls.mount(None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE)
    # A directory of our own on a private tmpfs: /dev/mqueue may already hold this very IPC
    # namespace's mqueue filesystem (systemd mounts it), and the kernel refuses to mount the same
    # filesystem twice on one mount point (EBUSY).
    syscalls.mount("tmpfs", MQUEUE_BASE, "tmpfs", MountFlag.MS_NOSUID, "size=16k")
    where = os.path.join(MQUEUE_BASE, "mqueue")
    os.mkdir(where)
    syscalls.mount("mqueue", where, "mqueue", MountFlag.MS_NOSUID | MountFlag.MS_NODEV
                   | MountFlag.MS_NOEXEC)
    return sorted("/" + entry for entry in os.listdir(where))



# --- leftovers: what `pycontain cleanup` finds and removes -------------------------------------

def leftover_segments(path: str = "/proc/sysvipc/shm") -> list[str]:
    """The ids of this IPC namespace's segments with a pycontain key (0x7063xxxx)."""
    return [str(s.shmid) for s in segments(path) if s.key in KEYS]


def leftover_queues(directory: str = MQUEUE_MOUNT) -> list[str]:
    """The files of the queues `/pycontain-…` in the mqueue filesystem at `directory`."""
    try:
        names = sorted(n for n in os.listdir(directory) if n.startswith(QUEUE_PREFIX[1:]))
    except FileNotFoundError:  # no mqueue filesystem mounted there
        return []
    return [os.path.join(directory, name) for name in names]


def remove_queue_file(path: str) -> None:
    """Unlink a queue's file in an mqueue filesystem: what mq_unlink(3) does by its name."""
    os.unlink(path)


@dataclass(frozen=True)
class IpcView:
    """What one IPC namespace holds, as a process inside it sees it."""

    namespace: str  # e.g. "ipc:[4026531839]"
    segments: tuple[Segment, ...]
    queues: tuple[str, ...]
    message_queues: tuple[int, ...] = ()  # SysV keys, from /proc/sysvipc/msg
    semaphores: tuple[int, ...] = ()  # SysV keys, from /proc/sysvipc/sem

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> IpcView:
        return cls(wire["namespace"], tuple(Segment(*s) for s in wire["segments"]),
                   tuple(wire["queues"]), tuple(wire["message_queues"]),
                   tuple(wire["semaphores"]))

    def keys(self) -> set[int]:
        return {s.key for s in self.segments}

    def objects(self, only_ours: bool = True) -> dict[str, str]:
        """label -> what identifies it here: `shm 0x…` -> `shmid N`, `mq /name` -> `✓`."""
        found = {s.label: f"shmid {s.shmid}" for s in self.segments
                 if s.key in KEYS or not only_ours}
        found.update({f"mq {q}": "✓" for q in self.queues
                      if q.startswith(QUEUE_PREFIX) or not only_ours})
        return found


def view() -> dict[str, Any]:
    """Everything this process's IPC namespace holds, as plain data (for `IpcView.from_wire`).

    Mounts an mqueue filesystem privately (see `queues`): call it in a throw-away process only.
    """
    return {"namespace": os.readlink("/proc/self/ns/ipc"), "segments": segments(),
            "queues": queues(), "message_queues": [r[0] for r in _table("/proc/sysvipc/msg")],
            "semaphores": [r[0] for r in _table("/proc/sysvipc/sem")]}


class Visibility:
    """Which side sees which pycontain IPC object: one row per object, one column per side."""

    def __init__(self, views: Mapping[str, IpcView], only_ours: bool = True) -> None:
        self.sides = list(views)
        self.seen = {side: v.objects(only_ours) for side, v in views.items()}
        self.labels = sorted({label for objs in self.seen.values() for label in objs})

    def sides_seeing(self, label: str) -> set[str]:
        return {side for side in self.sides if label in self.seen[side]}

    def _rows(self) -> list[list[str]]:
        return [[label, *(self.seen[s].get(label, "–") for s in self.sides)]
                for label in self.labels]

    def __repr__(self) -> str:
        rows = [["object", *self.sides], *self._rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                         for r in rows)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{s}</th>" for s in ["object", *self.sides])
        body = "".join("<tr>" + "".join(f"<td><code>{c}</code></td>" for c in r) + "</tr>"
                       for r in self._rows())
        return (f"<table><tr>{head}</tr>{body}</table><small>shmid: the segment's id in that "
                "namespace; –: invisible there</small>")


# --- the container side: a small program that runs steps inside, and reads back its answer ------

STEPS: dict[str, Callable[..., Any]] = {
    f.__name__: f for f in (create_segment, attach_segment, remove_segment, create_queue,
                            open_queue, remove_queue, view)}


def _plain_steps(steps: tuple[str | tuple[Any, ...], ...]) -> list[list[Any]]:
    plain = [[s] if isinstance(s, str) else list(s) for s in steps]
    for step in plain:
        if not step or step[0] not in STEPS:
            raise SpecError("steps", f"names in {sorted(STEPS)}", step)
    return plain


def command(*steps: str | tuple[Any, ...]) -> list[str]:
    """The argv that runs `steps` in a fresh interpreter, such as `("create_queue", "/p-q")`.

    Run it in a container (`pycontain.run(ipc.command("view"), namespaces={"ipc"})`) and read
    its output with `answer`. Steps are names in `STEPS`; each tuple is (name, *arguments).
    """
    return helper.argv(run_steps, _plain_steps(steps))


def run_steps(steps: list[list[Any]]) -> list[Any]:
    """What `command` runs, in its own process: each step in turn; their results."""
    results = []
    for name, *args in steps:
        try:
            results.append(STEPS[name](*args))
        except Exception as e:
            e.add_note(f"while running {name} in {os.readlink('/proc/self/ns/ipc')}")
            raise
    return results


def answer(done: Any) -> list[Any]:
    """The results of a finished `command` (a `Result` or `CompletedProcess`), `view`s as
    `IpcView`s; an error raised inside is raised here again, same type, call and errno."""
    status = done.returncode if hasattr(done, "returncode") else done.status
    return _views(helper.answer(done.stdout, status, done.stderr, "the IPC steps"))


def _views(results: list[Any]) -> list[Any]:
    return [IpcView.from_wire(r) if isinstance(r, dict) else r for r in results]


def run_in(pid: int | None, *steps: str | tuple[Any, ...], timeout_s: float = 30.0) -> list[Any]:
    """Run `steps` in a fresh process in the IPC namespace of process `pid` (nsenter(1)
    --ipc), or in this process's namespaces when `pid` is None; return `answer`'s results."""
    prefix = [] if pid is None else ["nsenter", f"--target={int(pid)}", "--ipc", "--"]
    return _views(helper.in_fresh_process(run_steps, _plain_steps(steps), prefix=prefix,
                                          timeout_s=timeout_s))


def wait_for_shmem_below(limit_bytes: int, timeout_s: float = 10.0) -> int:
    """Poll `shmem_bytes()` until it drops below `limit_bytes` (the kernel frees a dead
    namespace's objects from a work queue, a moment later); return the last value read."""
    deadline = time.monotonic() + timeout_s
    while (now := shmem_bytes()) >= limit_bytes and time.monotonic() < deadline:
        time.sleep(0.05)
    return now
