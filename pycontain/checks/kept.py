"""What a learner's function may not change in the notebook's own process, put back by the check.

A Try-it function runs in the notebook kernel. Lessons 02 and 04 show functions that move their
*caller* into new namespaces (`uts.isolate_hostname`, unshare(2)); called there, they move the
kernel's current thread, since namespaces belong to threads (lesson 02), and the notebook stays
moved until it restarts. `thread_namespaces_kept` notices and moves the thread back with
setns(2), through descriptors of the thread's own namespaces held from the start, so the check
can name the wrong turn instead of leaving the notebook changed.

See also: setns(2), unshare(2), namespaces(7).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from pycontain import procfs, syscalls
from pycontain.syscalls import CloneFlag

#: the flag setns(2) takes for each type a check guards
_FLAGS = {"uts": CloneFlag.CLONE_NEWUTS, "mnt": CloneFlag.CLONE_NEWNS}


@contextmanager
def thread_namespaces_kept(*ns_types: str) -> Iterator[list[str]]:
    """Run the body, then move this thread back into the namespaces of `ns_types` it was in
    before (a mount namespace also gets its working directory back: setns(2) moves it to the
    root). Yields a list that receives one sentence per namespace moved back; an exception of
    the body goes through, after the repair."""
    home = {t: os.open(f"/proc/thread-self/ns/{t}", os.O_RDONLY) for t in ns_types}
    before = {t: procfs.namespace("thread-self", t) for t in ns_types}
    cwd = os.getcwd()
    moved: list[str] = []
    try:
        yield moved
    finally:
        for ns_type, fd in home.items():
            now = procfs.namespace("thread-self", ns_type)
            if now != before[ns_type]:
                syscalls.setns(fd, _FLAGS[ns_type])
                moved.append(f"this notebook's own thread was moved into a new {ns_type} "
                             f"namespace ({now}): the check moved it back with setns(2)")
            os.close(fd)
        try:
            moved_away = os.getcwd() != cwd
        except FileNotFoundError:  # a working directory the namespace moved back lacks
            moved_away = True
        if moved_away:
            os.chdir(cwd)
