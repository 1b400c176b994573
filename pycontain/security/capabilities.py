"""Capabilities: root's powers in pieces, and which of them a container keeps (lesson 20).

The kernel splits root's privilege into capabilities (`CAP_CHOWN`, `CAP_SYS_ADMIN`, ...;
capabilities(7)), numbered in <linux/capability.h> up to /proc/sys/kernel/cap_last_cap. Each
process has five sets of them, which /proc/<pid>/status shows as hex masks (bit N: capability N):
permitted (CapPrm, what it may use), effective (CapEff, what it uses now), inheritable (CapInh),
bounding (CapBnd, the most any execve(2) can give it) and ambient (CapAmb, kept across an
execve of a program without file capabilities). In a user namespace they count in that
namespace only (lesson 09).

A container keeps a few: Docker's default set (`DEFAULT`), without CAP_MKNOD, since pycontain has
no device controller to stop a node once made. `init` applies them last before the exec, in
runc's order: drop the bounding set first (prctl PR_CAPBSET_DROP needs CAP_SETPCAP, still held
then), set permitted, effective and inheritable with capset(2), clear the ambient set, then
PR_SET_NO_NEW_PRIVS, so that no setuid program or file capability can give back what was dropped.
runc also sets PR_SET_KEEPCAPS around its change to the container's user, which would otherwise
clear the sets; a pycontain container always runs as root of its namespace (lesson 09's change
of uid is to 0, which keeps them, capabilities(7), "Effect of user ID changes"), so init has no
such change after the sets are chosen, and no keep-caps (tests/unit/test_setup_order.py).

Run as root without a user namespace, what execve gives the command is the bounding set (plus
the inheritable, empty here): so the bounding set is what root inside can ever have.

A program file may carry capabilities of its own, in its `security.capability` extended
attribute (`setcap cap_net_raw+ep ping`): execve gives them to whoever runs it, within the
bounding set, unless no_new_privs is set or the file is on a nosuid mount. `file_capability`
writes that attribute's bytes (struct vfs_cap_data, revision 2), `set_file_capability` sets it.

See also: capabilities(7), capget(2), capset(2), prctl(2) (PR_CAPBSET_DROP, PR_CAP_AMBIENT,
PR_SET_NO_NEW_PRIVS), proc_pid_status(5), setcap(8), xattr(7), docker-run(1) (--cap-add,
--cap-drop, --privileged, --security-opt), moby's oci/caps (TweakCapabilities).
"""

from __future__ import annotations

import os
from collections import namedtuple

from pycontain import syscalls
from pycontain.errors import SpecError
from pycontain.kernel_names import Option
from pycontain.syscalls import CapAmbient, PrctlOption

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection, Iterable
    from typing import TypedDict

    class CapabilitiesWire(TypedDict):
        """What init applies: the capability numbers kept (bounding, permitted and effective
        alike; inheritable and ambient stay empty) and the highest this kernel has."""

        keep: list[int]
        last_cap: int

#: every capability <linux/capability.h> names, in number order (CAP_CHOWN is 0)
NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
#: name -> number
NUMBERS = {name: number for number, name in enumerate(NAMES)}
#: the numbers with their names, as a trace shows them (`prctl(PR_CAPBSET_DROP, CAP_MKNOD)`)
Capability = type("Capability", (Option,), {"__module__": __name__, **NUMBERS})

#: what `pycontain run` keeps: Docker's default set (moby oci/caps/defaults.go) without
#: CAP_MKNOD: Docker may grant it because its device cgroup then refuses every node but a few;
#: pycontain has no device controller, so root inside could make and open /dev/sda's node
DEFAULT = frozenset({
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE", "CAP_NET_RAW",
})

#: the accepted form of a capability name, as errors say it
FORM = "capability names such as CHOWN or CAP_NET_RAW (any case), or ALL"

Sets = namedtuple("Sets", "permitted effective inheritable bounding ambient")
#: the field of /proc/<pid>/status that holds each set
STATUS_FIELDS = Sets("CapPrm", "CapEff", "CapInh", "CapBnd", "CapAmb")


def last_cap() -> int:
    """The highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap)."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def known(last: int | None = None) -> tuple[str, ...]:
    """The names this kernel has: those of <linux/capability.h> up to `last` (cap_last_cap).

    >>> known(37)[-1], len(known(40))
    ('CAP_AUDIT_READ', 41)
    """
    return NAMES[:(last_cap() if last is None else last) + 1]


def names(mask: int) -> frozenset[str]:
    """The names of the capabilities set in a mask, as /proc/<pid>/status shows it.

    >>> sorted(names(0x00000000a80425fb)) == sorted(DEFAULT | {"CAP_MKNOD"})  # docker's CapEff
    True
    >>> names(1 << 50)
    frozenset({'CAP_50'})
    """
    return frozenset(NAMES[n] if n < len(NAMES) else f"CAP_{n}"
                     for n in range(mask.bit_length()) if mask >> n & 1)


def mask(chosen: Iterable[str]) -> int:
    """The mask of a set of names (the inverse of `names`).

    >>> hex(mask(["CAP_CHOWN", "CAP_SYS_ADMIN"]))
    '0x200001'
    """
    return sum(1 << NUMBERS[name] for name in set(chosen))


def parse_status(text: str) -> Sets:
    """The five sets from the text of /proc/<pid>/status.

    >>> sets = parse_status("Name:\\tsh\\nCapInh:\\t0\\nCapPrm:\\t00000000000000a0\\n"
    ...                     "CapEff:\\t0000000000000080\\nCapBnd:\\t00000000000000a0\\n"
    ...                     "CapAmb:\\t0000000000000000\\n")
    >>> sorted(sets.permitted), sorted(sets.effective), sets.ambient
    (['CAP_KILL', 'CAP_SETUID'], ['CAP_SETUID'], frozenset())
    """
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return Sets(*(names(int(fields[key], 16)) for key in STATUS_FIELDS))


def read(pid: int | str = "self") -> Sets:
    """The five capability sets of a process, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as f:
        return parse_status(f.read())


def parse(parameter: str, given: str | Collection[str], last: int | None = None
          ) -> frozenset[str]:
    """Capability names as the kernel spells them, from names with or without `CAP_`, in any
    case, one by one or in comma lists; `ALL` is every one this kernel has. `parameter` names
    what was given, for the error.

    >>> sorted(parse("capabilities", ["chown", "CAP_KILL,net_raw"]))
    ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_RAW']
    >>> parse("capabilities", "all", last=40) == frozenset(NAMES)
    True
    >>> parse("capabilities", ["CAP_CHOWN", "MAKE_COFFEE"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pycontain.errors.SpecError: `capabilities` must be capability names ..., got 'MAKE_COFFEE'
      hint: the names are those of capabilities(7) ...
    """
    if not isinstance(given, str) and not all(isinstance(word, str) for word in given):
        raise SpecError(parameter, FORM, given)
    have = known(last)
    chosen: set[str] = set()
    for word in _words(given):
        name = word.upper() if word.upper().startswith("CAP_") else f"CAP_{word.upper()}"
        if name == "CAP_ALL":
            chosen.update(have)
        elif name in have:
            chosen.add(name)
        else:
            raise SpecError(parameter, FORM, word,
                            hint=f"the names are those of capabilities(7) and "
                                 f"<linux/capability.h>: {_why_unknown(name, have)} (lesson 20)")
    return frozenset(chosen)


def _why_unknown(name: str, have: tuple[str, ...]) -> str:
    """Why `name` is not one of `have`: newer than the kernel, or a misspelling of the nearest.

    >>> _why_unknown("CAP_SYS_ADMINN", NAMES)
    'did you mean CAP_SYS_ADMIN?'
    >>> _why_unknown("CAP_MAKE_COFFEE", NAMES)
    'names from CAP_CHOWN to CAP_CHECKPOINT_RESTORE'
    """
    import difflib

    if name in NUMBERS:
        return f"{name} is newer than this kernel (cap_last_cap {len(have) - 1})"
    nearest = difflib.get_close_matches(name, have, n=1, cutoff=0.8)
    return f"did you mean {nearest[0]}?" if nearest else f"names from CAP_CHOWN to {have[-1]}"


def resolve(add: Collection[str], drop: Collection[str], last: int | None = None
            ) -> frozenset[str]:
    """What `--cap-add` and `--cap-drop` leave of `DEFAULT`, the way Docker decides it: ALL added
    is every capability but those dropped; ALL dropped is only those added; else the default,
    less those dropped, plus those added (moby oci/caps, TweakCapabilities).

    >>> sorted(resolve(["sys_admin"], ["ALL"], last=40))
    ['CAP_SYS_ADMIN']
    >>> "CAP_CHOWN" in resolve([], ["chown"], last=40), "CAP_MKNOD" in resolve(["ALL"], [], 40)
    (False, True)
    """
    adding = parse("capabilities['add']", add, last)
    dropping = parse("capabilities['drop']", drop, last)
    if _says_all(add):
        return frozenset(known(last)) - dropping
    if _says_all(drop):
        return adding
    return DEFAULT - dropping | adding


def _words(given: str | Collection[str]) -> list[str]:
    """The names in `given`, one by one or in comma lists, as written."""
    return [w.strip() for line in ([given] if isinstance(given, str) else given)
            for w in line.split(",")]


def _says_all(given: Collection[str]) -> bool:
    return any(word.upper() in ("ALL", "CAP_ALL") for word in _words(given))


def validate(given: Collection[str] | str | None, user_namespace: bool) -> frozenset[str] | None:
    """Check `capabilities` for a Spec (None: every capability the caller has, untouched).

    Without a user namespace a process can keep only capabilities it has (CapPrm): one it
    lacks is refused here, before anything is created. In a new user namespace it has them all;
    without either root or one, the preflight refuses the run anyway (it needs root).
    """
    if given is None:
        return None
    chosen = parse("capabilities", given)
    if not user_namespace and os.geteuid() == 0:
        missing = chosen - read().permitted
        if missing:
            raise SpecError("capabilities", "capabilities this process has (CapPrm in "
                            "/proc/self/status)", ",".join(sorted(missing)),
                            hint="a process may give up a capability, never gain one it lacks: "
                                 "leave these out, or add a user namespace, in which the "
                                 "container's root has them all (lesson 20)")
    return chosen


def wire(chosen: frozenset[str] | None) -> CapabilitiesWire | None:
    """What init receives for `chosen`: the numbers to keep and this kernel's last one."""
    if chosen is None:
        return None
    return {"keep": sorted(NUMBERS[name] for name in chosen), "last_cap": last_cap()}


# --- file capabilities: what a program gains at execve --------------------------------------

#: the extended attribute that holds a file's capabilities (XATTR_NAME_CAPS)
XATTR = "security.capability"
#: struct vfs_cap_data's first word: revision 2 (two 32-bit words per set), and the flag that
#: makes execve raise the permitted capabilities into the effective set too (the `e` of `+ep`)
VFS_CAP_REVISION_2, VFS_CAP_FLAGS_EFFECTIVE = 0x02000000, 0x000001


def file_capability(permitted: Iterable[str], effective: bool = True) -> bytes:
    """The `security.capability` bytes that give a program `permitted` (setcap's `+p`; with
    `effective`, `+ep`) and nothing inheritable: struct vfs_cap_data, revision 2, little-endian:
    the revision and flags, then permitted and inheritable, low 32 bits, then high 32 bits.

    >>> file_capability(["CAP_NET_RAW"]).hex()  # what `setcap cap_net_raw+ep FILE` writes
    '0100000200200000000000000000000000000000'
    """
    import struct

    bits = mask(parse("permitted", list(permitted), last=len(NAMES) - 1))
    flags = VFS_CAP_REVISION_2 | (VFS_CAP_FLAGS_EFFECTIVE if effective else 0)
    return struct.pack("<5I", flags, bits & 0xFFFFFFFF, 0, bits >> 32, 0)


def parse_file_capability(data: bytes) -> tuple[frozenset[str], bool]:
    """The permitted names and the effective flag in `security.capability` bytes (revision 2).

    >>> kept, effective = parse_file_capability(file_capability(["NET_RAW", "BPF"], False))
    >>> sorted(kept), effective
    (['CAP_BPF', 'CAP_NET_RAW'], False)
    """
    import struct

    flags, low, _, high, _ = struct.unpack("<5I", data[:20])
    if flags & 0xFF000000 != VFS_CAP_REVISION_2:
        raise ValueError(f"not a revision 2 vfs_cap_data: {data.hex()}")
    return names(high << 32 | low), bool(flags & VFS_CAP_FLAGS_EFFECTIVE)


def set_file_capability(path: str | os.PathLike[str], permitted: Iterable[str],
                        effective: bool = True) -> None:
    """Give the program at `path` file capabilities, as `setcap cap_net_raw+ep PATH` does:
    setxattr(2) of `security.capability`, which needs CAP_SETFCAP. Use it on your own copy of
    a program only: every later execve of that file gains them."""
    os.setxattr(path, XATTR, file_capability(permitted, effective))


# --- in init, last before the exec ------------------------------------------------------------

def drop_bounding(keep: Collection[int], last: int) -> None:
    """prctl(PR_CAPBSET_DROP) for every capability not kept: no execve can give it back. Needs
    CAP_SETPCAP, so it comes before capset(2) gives that up."""
    for number in range(last + 1):
        if number not in keep:
            syscalls.prctl(PrctlOption.PR_CAPBSET_DROP,
                           Capability(number) if number < len(NAMES) else number)


def limit_sets(keep: Collection[int]) -> None:
    """capset(2): permitted and effective become `keep`, inheritable empty; then the ambient set
    cleared (prctl PR_CAP_AMBIENT_CLEAR_ALL), so nothing is carried into the command beyond it."""
    kept = sum(1 << number for number in set(keep))
    syscalls.capset(kept, kept, 0)
    syscalls.prctl(PrctlOption.PR_CAP_AMBIENT, CapAmbient.PR_CAP_AMBIENT_CLEAR_ALL)


def set_no_new_privs() -> None:
    """PR_SET_NO_NEW_PRIVS: from now on no execve grants more than the caller has (a setuid
    program runs with the caller's ids, file capabilities are ignored); it can never be unset,
    and it survives fork and execve."""
    syscalls.prctl(PrctlOption.PR_SET_NO_NEW_PRIVS, 1)
