"""The kernel's log, read from /dev/kmsg: what the kernel said while an experiment ran (lesson 21).

Some decisions the kernel tells only there. A seccomp filter's SCMP_ACT_LOG, and the kills it
orders, become audit records (type 1326, AUDIT_SECCOMP): with an audit daemon running they go
to its log (/var/log/audit/audit.log); with none, kauditd prints them to the kernel's log, as
`audit: type=1326 audit(…): … pid=8707 comm="mkdir" … sig=0 arch=c000003e syscall=83 …
code=0x7ffc0000`. Which actions are logged is /proc/sys/kernel/seccomp/actions_logged; an
ERRNO is not, unless the filter was installed with SECCOMP_FILTER_FLAG_LOG.

`KernelLog()` opens /dev/kmsg at its end, so that it reads only what comes after; `seccomp()`
returns the records written since, parsed, waiting for one of a given pid if asked. Reading
needs root (or kernel.dmesg_restrict = 0); where it cannot read, `readable` is False and it
returns nothing, so that a lesson can say so.

    >>> parse_seccomp('5,1156,185671318,-;audit: type=1326 audit(1796407131.389:1): '
    ...     'auid=4294967295 uid=0 gid=0 ses=4294967295 pid=8707 comm="mkdir" '
    ...     'exe="/usr/bin/mkdir" sig=0 arch=c000003e syscall=83 compat=0 ip=0x7f2dab847f37 '
    ...     'code=0x7ffc0000')
    SeccompRecord(pid=8707, comm='mkdir', syscall=83, signal=0, action='LOG')

See also: dmesg(1), the kernel's Documentation/ABI/testing/dev-kmsg, auditd(8), seccomp(2)
(SECCOMP_RET_LOG, SECCOMP_FILTER_FLAG_LOG), proc(5) /proc/sys/kernel/seccomp/actions_logged.
"""

from __future__ import annotations

import errno
import os
import re
import select
import time
from collections import namedtuple

from pycontain.security.seccomp import action_name

KMSG = "/dev/kmsg"
#: the audit record type of a seccomp decision (<linux/audit.h>, AUDIT_SECCOMP)
AUDIT_SECCOMP = 1326


class SeccompRecord(namedtuple("SeccompRecord", "pid comm syscall signal action")):
    """One seccomp audit record: the process (its PID as the host sees it, and its name), the
    call's number, the signal that killed it (0: none) and the filter's action."""

    __slots__ = ()


def parse_seccomp(line: str) -> SeccompRecord | None:
    """The seccomp record a kernel log line holds, or None if it holds none."""
    if f"type={AUDIT_SECCOMP} " not in line:
        return None
    fields = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line.split(";", 1)[-1]))
    try:
        return SeccompRecord(int(fields["pid"]), fields.get("comm", "").strip('"'),
                             int(fields["syscall"]), int(fields.get("sig", "0")),
                             action_name(int(fields["code"], 16)))
    except (KeyError, ValueError):
        return None


class KernelLog:
    """The kernel log from now on. Use it as a context manager, or `close()` it."""

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open(KMSG, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            self._fd = None  # no /dev/kmsg, or not allowed to read it (dmesg_restrict)
        else:
            os.lseek(self._fd, 0, os.SEEK_END)  # only what the kernel writes from now on
        self._seen: list[SeccompRecord] = []

    @property
    def readable(self) -> bool:
        """Whether this process can read the kernel's log at all."""
        return self._fd is not None

    def _read(self) -> None:
        while self._fd is not None:
            try:
                record = os.read(self._fd, 8192).decode(errors="replace")
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EPIPE:  # overwritten before we read it: go on
                    continue
                raise
            found = parse_seccomp(record)
            if found is not None:
                self._seen.append(found)

    def seccomp(self, pid: int | None = None, *, wait_s: float = 0.0) -> list[SeccompRecord]:
        """The seccomp records logged since this log was opened (of `pid` only, if given),
        waiting up to `wait_s` for a first one: kauditd prints them a moment after the call."""
        deadline = time.monotonic() + wait_s
        while True:
            self._read()
            found = [r for r in self._seen if pid is None or r.pid == pid]
            left = deadline - time.monotonic()
            if found or left <= 0 or self._fd is None:
                return found
            select.select([self._fd], [], [], left)  # /dev/kmsg wakes us when a record comes

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> KernelLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
