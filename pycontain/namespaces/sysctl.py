"""Kernel parameters a container may set for itself: the namespaced sysctls (lesson 24).

Most files of /proc/sys are the host's, whatever namespace reads them: writing one from a
container changes the machine. A few belong to a namespace, and a fresh namespace gets its own
copy: `net.*` to the network namespace, the System V IPC limits (`kernel.shm*`, `kernel.msg*`,
`kernel.sem`) and `fs.mqueue.*` to the IPC namespace, `kernel.hostname` and
`kernel.domainname` to the UTS namespace. Only those are accepted, and only when the container
has that namespace of its own, as runc and Docker decide (`docker run --sysctl`). Init writes
them in its fresh /proc/sys, before the read-only paths freeze it.

See also: sysctl(8), proc(5) (/proc/sys), network_namespaces(7), ipc_namespaces(7).
"""

from __future__ import annotations

from pycontain import kernfs
from pycontain.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

#: the exactly-named namespaced parameters, and the namespace that owns each
EXACT = {"kernel.msgmax": "ipc", "kernel.msgmnb": "ipc", "kernel.msgmni": "ipc",
         "kernel.sem": "ipc", "kernel.shmall": "ipc", "kernel.shmmax": "ipc",
         "kernel.shmmni": "ipc", "kernel.shm_rmid_forced": "ipc",
         "kernel.hostname": "uts", "kernel.domainname": "uts"}
#: prefixes of whole namespaced subtrees
PREFIXES = {"fs.mqueue.": "ipc", "net.": "net"}


def owner(name: str) -> str | None:
    """The namespace that owns the parameter `name`, or None for the host's own.

    >>> owner("net.ipv4.ping_group_range"), owner("kernel.shmmax"), owner("vm.swappiness")
    ('net', 'ipc', None)
    """
    if name in EXACT:
        return EXACT[name]
    return next((ns for prefix, ns in PREFIXES.items() if name.startswith(prefix)), None)


def validate(given: Mapping[str, str], namespaces: frozenset[str]) -> dict[str, str]:
    """`given` checked: each name namespaced, its namespace among `namespaces`; values as str.

    >>> validate({"net.ipv4.ip_forward": "1"}, frozenset({"net"}))
    {'net.ipv4.ip_forward': '1'}
    >>> validate({"vm.swappiness": "10"}, frozenset({"net"}))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pycontain.errors.SpecError: `sysctl` must be namespaced kernel parameters ...
    """
    checked = {}
    for name, value in given.items():
        if not isinstance(name, str) or "/" in name or ".." in name or not isinstance(
                value, (str, int)):
            raise SpecError("sysctl", "{NAME: VALUE} with dotted names such as "
                            "net.ipv4.ip_forward", {name: value})
        ns = owner(name)
        if ns is None:
            raise SpecError("sysctl", "namespaced kernel parameters (net.*, kernel.shm*, "
                            "kernel.msg*, kernel.sem, fs.mqueue.*, kernel.hostname)", name,
                            hint="this one is the host's: a container writing it would change "
                                 "the whole machine (lesson 24)")
        if ns not in namespaces:
            raise SpecError("sysctl", f"set only with '{ns}' among the namespaces", name,
                            hint=f"without its own {ns} namespace the container shares the "
                                 "host's copy of it (lesson 24)")
        checked[name] = str(value)
    return checked


def write(parameters: Mapping[str, str]) -> None:
    """Write each parameter in /proc/sys (`net.ipv4.ip_forward` -> net/ipv4/ip_forward)."""
    for name, value in parameters.items():
        kernfs.write_once("/proc/sys/" + name.replace(".", "/"), value)
