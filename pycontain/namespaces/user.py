"""User namespace: be root inside without being root outside (lesson 09).

A user namespace renumbers users and groups. Its `uid_map` and `gid_map` say which ids outside
stand for which ids inside, each line `INSIDE OUTSIDE COUNT`: `0 100000 65536` makes uid 0
inside the kernel's uid 100000, uid 1 inside 100001, and so on. The process that unshares
CLONE_NEWUSER gets every capability *in the new namespace*, and so may create the other
namespaces it owns; towards the rest of the machine it is only its outside uid.

The maps are written once, from outside, by the parent, while the child waits (the "userns" sync
step of `pycontain.init`): the child cannot map itself to an id it does not own, and a map,
once written, can never change. An unprivileged writer must first write `deny` to
/proc/<pid>/setgroups, or a mapped process could drop a group that denies it access.
Ids that no line maps show up as the overflow id 65534, "nobody".
Without root, only the caller's own ids can be mapped: `pycontain.namespaces.rootless`.

See also: user_namespaces(7), newuidmap(1), subuid(5), capabilities(7).
Left out: /etc/subuid delegation with the setuid helpers newuidmap/newgidmap (rootless Docker
and Podman use them to map more than one's own uid).
"""

from __future__ import annotations

import os
from collections import namedtuple
from collections.abc import Iterable

from pycontain import syscalls
from pycontain.errors import SpecError, SyscallError
from pycontain.kernfs import write_once

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: the kernel's limit on lines in one map (since Linux 4.15; 5 before)
MAX_LINES = 340
#: ids are 32-bit; (uid_t)-1 means "no change" to the set*id calls and can never be mapped
ID_LIMIT = 2**32 - 1
#: what an unmapped id looks like inside: /proc/sys/kernel/overflowuid
OVERFLOW_ID = 65534
#: the default: root and 65535 more ids inside are 100000-165535 outside, as in /etc/subuid
DEFAULT_MAP = ((0, 100000, 65536),)

IdMap = namedtuple("IdMap", "inside outside count")
MAP_FORM = "a list of (inside, outside, count) with count > 0, such as [(0, 100000, 65536)]"


def validate_map(name: str, mapping: object) -> tuple[IdMap, ...]:
    """Return `mapping` as IdMaps if the kernel will take it; raise SpecError otherwise.

    >>> validate_map("uid_map", [(0, 100000, 65536)])
    (IdMap(inside=0, outside=100000, count=65536),)
    >>> validate_map("uid_map", [(0, 100000, 10), (5, 200000, 10)])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pycontain.errors.SpecError: `uid_map` must be ranges that do not overlap, got ...
      hint: inside ids 5-14 overlap 0-9: each id may be mapped once (lesson 09)
    """
    if isinstance(mapping, (str, bytes)) or not isinstance(mapping, Iterable):
        raise SpecError(name, MAP_FORM, mapping)
    lines = []
    for line in mapping:
        if (not isinstance(line, (tuple, list)) or len(line) != 3
                or not all(isinstance(n, int) and not isinstance(n, bool) for n in line)):
            raise SpecError(name, MAP_FORM, line)
        inside, outside, count = line
        if count <= 0:
            raise SpecError(name, "ranges of at least one id", tuple(line),
                            hint="a zero-length line maps nothing, and the kernel refuses it "
                                 "with EINVAL (lesson 09)")
        for side, start in (("inside", inside), ("outside", outside)):
            if start < 0 or start + count > ID_LIMIT:
                raise SpecError(name, f"ids from 0 to {ID_LIMIT - 1}", tuple(line),
                                hint=f"the {side} range {start}-{start + count - 1} leaves the "
                                     f"32-bit ids; {ID_LIMIT} is (uid_t)-1 and never mapped "
                                     "(lesson 09)")
        lines.append(IdMap(inside, outside, count))
    if not lines:
        raise SpecError(name, MAP_FORM, mapping, hint="an empty map maps nobody (lesson 09)")
    if len(lines) > MAX_LINES:
        raise SpecError(name, f"at most {MAX_LINES} lines", f"{len(lines)} lines",
                        hint=f"the kernel takes at most {MAX_LINES} lines per map (lesson 09)")
    for side in ("inside", "outside"):
        ranges = sorted((getattr(m, side), getattr(m, side) + m.count - 1) for m in lines)
        for (a, b), (c, d) in zip(ranges, ranges[1:], strict=False):
            if c <= b:
                raise SpecError(name, "ranges that do not overlap", [tuple(m) for m in lines],
                                hint=f"{side} ids {c}-{d} overlap {a}-{b}: each id may be "
                                     "mapped once (lesson 09)")
    return tuple(lines)


def map_text(mapping: Iterable[tuple[int, int, int]]) -> str:
    """The text the kernel expects in uid_map or gid_map.

    >>> map_text([(0, 100000, 65536)])
    '0 100000 65536\\n'
    """
    return "".join(f"{a} {b} {c}\n" for a, b, c in mapping)


def read_map(pid: int | str, kind: str = "uid") -> tuple[IdMap, ...]:
    """/proc/<pid>/uid_map (or gid_map), as this process's user namespace sees it."""
    with open(f"/proc/{pid}/{kind}_map") as f:
        return tuple(IdMap(*map(int, line.split())) for line in f if line.strip())


def _write(pid: int, name: str, text: str) -> None:
    path = f"/proc/{pid}/{name}"
    try:
        write_once(path, text)  # one write(2): the kernel reads a map in a single call
    except OSError as e:
        raise SyscallError(f"write {name}", (path, text), e.errno or 0) from None


def write_setgroups(pid: int, value: str = "deny") -> None:
    """Write `deny` (or `allow`) to /proc/<pid>/setgroups; only before gid_map is written."""
    _write(pid, "setgroups", value)


def write_maps(pid: int, uid_map: Iterable[tuple[int, int, int]] = DEFAULT_MAP,
               gid_map: Iterable[tuple[int, int, int]] | None = None, *,
               deny_setgroups: bool | None = None) -> None:
    """Write the uid and gid maps of the user namespace `pid` is in: from outside, once.

    `deny_setgroups` (default: when this process is not root) writes `deny` to setgroups
    first, which the kernel requires before an unprivileged process writes a gid_map.
    """
    uids = validate_map("uid_map", uid_map)
    gids = uids if gid_map is None else validate_map("gid_map", gid_map)
    if deny_setgroups is None:
        deny_setgroups = os.geteuid() != 0
    _write(pid, "uid_map", map_text(uids))
    if deny_setgroups:
        write_setgroups(pid, "deny")
    _write(pid, "gid_map", map_text(gids))


def become_root() -> None:
    """In a freshly mapped user namespace: take uid and gid 0 there (set*id(2) inside).

    The caller keeps its outside ids until it asks for the mapped ones; with every capability in
    its namespace, it may. Supplementary groups are dropped first while they still can be.
    """
    syscalls.setresgid(0, 0, 0)  # the group first: a uid change can drop the capabilities it needs
    syscalls.setresuid(0, 0, 0)
    # A change of uid makes a process non-dumpable, and the files of a non-dumpable process's
    # /proc/<pid> belong to the host's root, which is nobody here: dumpable again, they are the
    # mapped root's, so that it can write its own timens_offsets (proc(5), PR_SET_DUMPABLE).
    # execve(2) decides dumpability afresh for the command.
    syscalls.prctl(syscalls.PrctlOption.PR_SET_DUMPABLE, 1)


def drop_groups() -> None:
    """setgroups(2) to none, before unsharing: a host group must not follow into the box."""
    if os.geteuid() == 0:
        syscalls.setgroups([])


def outside_ids(pid: int | str) -> tuple[int, int]:
    """The real uid and gid of `pid` as the caller's user namespace numbers them."""
    uid = gid = -1
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
            elif line.startswith("Gid:"):
                gid = int(line.split()[1])
    return uid, gid


def outside_root(mapping: Iterable[tuple[int, int, int]]) -> int | None:
    """The outside id that stands for 0 inside, or None when 0 is not mapped.

    >>> outside_root([(0, 100000, 65536)])
    100000
    """
    for inside, outside, count in mapping:
        if inside <= 0 < inside + count:
            return outside - inside
    return None


def give_to_root(top: str, paths: Iterable[str], id_maps: Any) -> None:
    """chown `paths` to the container's root as the host numbers it, and let it through `top`."""
    uid, gid = outside_root(id_maps[0]), outside_root(id_maps[1])
    if uid is None or gid is None:
        return
    os.chmod(top, 0o711)
    for path in paths:
        os.chown(path, uid, gid)


def map_self_unprivileged(uid: int = OVERFLOW_ID, *, deny_setgroups: bool) -> tuple[bool, str]:
    """As unprivileged `uid` (setpriv(1)), unshare a user namespace and map oneself to root.

    What `unshare --map-root-user` does: an unprivileged process may map its own uid and gid,
    one line each, and the gid only after `deny` in setgroups. Returns (worked, what it said):
    the ids it then has, or the first line of the kernel's refusal.
    """
    from pycontain import helper

    as_uid = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    try:
        return True, helper.in_fresh_process(_map_self, deny_setgroups, prefix=as_uid)
    except SyscallError as e:
        return False, str(e).splitlines()[0]


def _map_self(deny_setgroups: bool) -> str:
    """In the unprivileged helper: a new user namespace, its maps written by itself."""
    uid, gid = os.geteuid(), os.getegid()
    syscalls.unshare(syscalls.CloneFlag.CLONE_NEWUSER)
    _write(os.getpid(), "uid_map", f"0 {uid} 1\n")
    if deny_setgroups:
        write_setgroups(os.getpid(), "deny")
    _write(os.getpid(), "gid_map", f"0 {gid} 1\n")
    return f"uid {os.getuid()} gid {os.getgid()}"
