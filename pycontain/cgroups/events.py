"""Waiting on a cgroup: sleep until the kernel reports a change, or poll where it reports none
(lessons 12 and 14).

Some cgroup v2 files *notify*: when `cgroup.events` (`populated`, `frozen`), `memory.events`
(`low`, `high`, `max`, `oom`, `oom_kill`) or `pids.events` change, the kernel generates an
inotify IN_MODIFY event on the file (Documentation/admin-guide/cgroup-v2.rst, "populated ...
modified event"). `wait_for` sleeps in poll(2) on an inotify descriptor, so it wakes when the
container ends or the OOM killer strikes, not at the next tick of a loop.

cgroup v1 files never notify. v1's own mechanism, an eventfd registered through
`cgroup.event_control` for `memory.oom_control`, is left out: on v1 `wait_for` samples the file
every `poll_s` instead (20 Hz by default) and says so in `notifies()`. On a hybrid host the
cgroup2 mount at /sys/fs/cgroup/unified has `cgroup.events` for every cgroup, so "the container
ended" is an event there too.

`populated()` and `wait_until_empty()` are the one way pycontain asks whether a cgroup is empty
and waits until it is: `Cgroup.remove()`, `pycontain cleanup` and the lessons' monitor all use
them.

See also: cgroups(7), inotify(7), poll(2); the kernel's cgroup-v2.rst ("Core Interface Files").
"""

from __future__ import annotations

import math
import os
import select
import time
from collections.abc import Callable

from pycontain import syscalls
from pycontain.cgroups.files import _read_text, procs, walk_up
from pycontain.syscalls import InotifyFlag

#: cgroup v2 files whose changes the kernel reports with inotify IN_MODIFY (cgroup-v2.rst)
NOTIFYING_FILES = frozenset({"cgroup.events", "memory.events", "memory.events.local",
                             "memory.swap.events", "pids.events", "pids.events.local",
                             "hugetlb.events", "misc.events"})


def notifies(path: str) -> bool:
    """Whether the kernel reports changes of `path` with inotify: a notifying file of a cgroup
    v2 directory (only v2 directories have `cgroup.controllers`)."""
    directory, name = os.path.split(path)
    return name in NOTIFYING_FILES and os.path.exists(os.path.join(directory, "cgroup.controllers"))


def read_text(path: str) -> str:
    with open(path) as f:
        return f.read()


def wait_for(path: str, condition: Callable[[str], bool], *, timeout_s: float,
             poll_s: float = 0.05) -> str:
    """Sleep until `condition(contents of path)` holds; return those contents.

    For a file that `notifies()`, this blocks in poll(2) on an inotify descriptor that the
    kernel wakes at each change; otherwise (cgroup v1) it re-reads the file every `poll_s`.

    Raises:
        TimeoutError: `timeout_s` passed first; the message shows the file's last contents.
        FileNotFoundError: the file (its cgroup) does not exist, or was removed while waiting.
    """
    deadline = time.monotonic() + timeout_s
    fd = None
    if notifies(path):
        fd = syscalls.inotify_init1(InotifyFlag.IN_NONBLOCK | InotifyFlag.IN_CLOEXEC)
    try:
        poller = select.poll()
        if fd is not None:
            # watch first, read second: a change between the two still wakes us
            syscalls.inotify_add_watch(fd, path, InotifyFlag.IN_MODIFY | InotifyFlag.IN_DELETE_SELF)
            poller.register(fd, select.POLLIN)
        while True:
            text = read_text(path)
            if condition(text):
                return text
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{path} did not change as awaited within {timeout_s} s; "
                                   f"it reads {text.strip()!r}")
            wait_s = remaining if fd is not None else min(remaining, poll_s)
            if poller.poll(math.ceil(wait_s * 1000)) and fd is not None:
                os.read(fd, 4096)  # drain the events; the file itself says what changed
    finally:
        if fd is not None:
            os.close(fd)


def _says_populated(events_text: str) -> bool:
    """
    >>> _says_populated("populated 1\\nfrozen 0\\n"), _says_populated("populated 0\\nfrozen 0\\n")
    (True, False)
    """
    return "populated 1" in events_text.splitlines()


def populated(directory: str) -> bool:
    """Whether any process is in the cgroup `directory` or below it.

    v2 (and the hybrid host's unified mount): `cgroup.events` says `populated 1`. v1 has no such
    file: a PID in the `cgroup.procs` of the directory or of any directory below it.
    """
    events = os.path.join(directory, "cgroup.events")
    if os.path.exists(events):
        return _says_populated(_read_text(events))
    return any(procs(d) for d in walk_up(directory))


def wait_until_empty(directory: str, *, timeout_s: float = 10.0, poll_s: float = 0.05) -> None:
    """Sleep until no process is left in the cgroup `directory` or below it.

    v2 (and the hybrid host's unified mount): until `cgroup.events` reads `populated 0`, an
    event. v1: `populated()` asked again every `poll_s`.

    Raises:
        TimeoutError: processes were still there after `timeout_s`; the message lists them.
        FileNotFoundError: there is no cgroup `directory`.
    """
    events = os.path.join(directory, "cgroup.events")
    if os.path.exists(events):
        wait_for(events, lambda text: not _says_populated(text), timeout_s=timeout_s,
                 poll_s=poll_s)
        return
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"no cgroup {directory}")
    deadline = time.monotonic() + timeout_s
    while populated(directory):
        if time.monotonic() >= deadline:
            left = sorted({p for d in walk_up(directory) for p in procs(d)})
            raise TimeoutError(f"{directory} still holds processes {left} after {timeout_s} s")
        time.sleep(poll_s)
