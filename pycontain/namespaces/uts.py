"""UTS namespace: a private hostname (lesson 02).

The UTS namespace isolates the two strings uname(2) reports as `nodename` and `domainname`.
Nothing else changes, which makes it the safest place to meet unshare(2): a process that calls
`unshare(CLONE_NEWUTS)` gets a copy of its parent's names, and sethostname(2) afterwards changes
only the copy. The name "UTS" is historical: UNIX Time-sharing System, the struct utsname.

See also: uts_namespaces(7), unshare(2), sethostname(2), uname(2).
Left out: setdomainname(2) (NIS domain names; the same namespace, rarely used).
"""

from __future__ import annotations

from pycontain import syscalls
from pycontain.errors import SpecError
from pycontain.syscalls import CloneFlag

HOST_NAME_MAX = 64  # bytes, from <limits.h>; sethostname(2) rejects longer names
HOSTNAME_HINT = (
    f"sethostname(2) takes 1-{HOST_NAME_MAX} bytes (HOST_NAME_MAX) and would fail with EINVAL; "
    "non-ASCII characters take 2-4 bytes each; pick a shorter name (lesson 02)"
)
# sethostname(2) itself takes a length of 0; pycontain refuses it because an empty name reads as
# "no hostname set" to the programs inside, and is almost always a forgotten argument
EMPTY_HOSTNAME_HINT = (
    "the name is empty: type at least one character; a hostname is 1-"
    f"{HOST_NAME_MAX} bytes (HOST_NAME_MAX) (lesson 02)"
)
NUL_HOSTNAME_HINT = (
    "a NUL character ends a C string, so the kernel would keep only what comes before it; "
    "remove it (lesson 02)"
)


def validate_hostname(hostname: str) -> str:
    """Return `hostname` if sethostname(2) will take it; raise SpecError otherwise.

    >>> validate_hostname("box-1")
    'box-1'
    >>> validate_hostname("")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pycontain.errors.SpecError: `hostname` must be 1-64 bytes without NUL, got ''
      hint: the name is empty: type at least one character; a hostname is 1-64 bytes ...
    """
    if not isinstance(hostname, str) or not 0 < len(hostname.encode()) <= HOST_NAME_MAX:
        hint = EMPTY_HOSTNAME_HINT if hostname == "" else HOSTNAME_HINT
    elif "\0" in hostname:
        hint = NUL_HOSTNAME_HINT
    else:
        return hostname
    raise SpecError("hostname", f"1-{HOST_NAME_MAX} bytes without NUL", hostname, hint=hint)


def set_hostname(hostname: str) -> None:
    """sethostname(2) in the caller's UTS namespace (which must already be private)."""
    syscalls.sethostname(validate_hostname(hostname))


def isolate_hostname(hostname: str) -> None:
    """Move the calling process into a new UTS namespace and set its hostname there.

    Raises:
        SpecError: `hostname` is empty or longer than 64 bytes; nothing was changed.
        SyscallError: unshare(2) or sethostname(2) failed; EPERM means no CAP_SYS_ADMIN.
    """
    validate_hostname(hostname)
    syscalls.unshare(CloneFlag.CLONE_NEWUTS)
    syscalls.sethostname(hostname)
