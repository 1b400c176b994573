"""Probes: which namespaces a process is in, read from outside or tried from inside (lesson 01).

Reading: `namespace_table(pids)` lists the namespaces of some processes (`/proc/<pid>/ns/*`, via
`procfs`), and `sharing(pids)` groups the processes that are in the same namespace, type by type.
Starting: `start(argv)` runs a plain helper process (`sleep`, or `unshare --uts sleep`) with
`subprocess`, waiting until it has exec'd its final program, because a namespace read before
unshare(1) has called unshare(2) would still be the parent's.
Trying: `unshare_with_threads` is an experiment that changes the calling process; run it with
`helper.in_fresh_process`, which calls a pycontain function in a brand-new interpreter and hands
back its result or its error, so that the notebook's kernel is never touched (lesson 02).

See also: namespaces(7), proc(5), unshare(1), unshare(2).
Left out: ioctl_ns(2) (namespace parents and owners), nsenter(1).
"""

from __future__ import annotations

import html
import os
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pycontain import procfs
from pycontain.procfs import NAMESPACE_TYPES, NamespaceId


@dataclass(frozen=True)
class ProcessNamespaces:
    """One process and the namespace of each type it is in."""

    pid: int
    command: str
    namespaces: dict[str, NamespaceId] = field(hash=False)


@dataclass(frozen=True)
class NamespaceTable:
    """Processes × namespace types; shows as a table in a notebook, the first row in plain type
    and every namespace that differs from the first row's in bold."""

    rows: tuple[ProcessNamespaces, ...]
    types: tuple[str, ...] = NAMESPACE_TYPES

    def __iter__(self) -> Any:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def _cells(self) -> list[list[tuple[str, bool]]]:
        """(text, differs from the first row) for every cell."""
        first = self.rows[0].namespaces if self.rows else {}
        out = []
        for row in self.rows:
            cells = [(str(row.pid), False), (row.command, False)]
            for t in self.types:
                ns = row.namespaces.get(t)
                cells.append((str(ns.inode) if ns else "-", ns != first.get(t)))
            out.append(cells)
        return out

    def __repr__(self) -> str:
        """
        >>> a = ProcessNamespaces(1, "init", {"uts": NamespaceId("uts", 10)})
        >>> b = ProcessNamespaces(2, "sleep", {"uts": NamespaceId("uts", 11)})
        >>> print(NamespaceTable((a, b), ("uts",)))
        pid  command  uts
        1    init     10
        2    sleep    11*
        (* differs from the first row)
        """
        header = ["pid", "command", *self.types]
        body = [[t + ("*" if differs else "") for t, differs in r] for r in self._cells()]
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                 for r in [header, *body]]
        return "\n".join([*lines, "(* differs from the first row)"])

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ["pid", "command", *self.types])
        rows = "".join(
            "<tr>" + "".join(f"<td>{'<b>' if d else ''}{html.escape(t)}{'</b>' if d else ''}</td>"
                             for t, d in r) + "</tr>"
            for r in self._cells())
        return (f"<table><tr>{head}</tr>{rows}</table>"
                "<small>nsfs inode numbers; <b>bold</b>: differs from the first row</small>")


def describe(pid: int | str, label: str | None = None) -> ProcessNamespaces | None:
    """The namespaces of one process, or None when it is gone (or not ours to read).

    `label` names it in tables and figures; default: its command name (`/proc/<pid>/comm`).
    """
    try:
        status = procfs.status(pid)
        found = procfs.namespaces(pid)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return ProcessNamespaces(status.pid, label or status.name, found) if found else None


def namespace_table(pids: Iterable[int | str] | Mapping[int | str, str]) -> NamespaceTable:
    """The namespaces of each process in `pids`, in order; processes that ended are left out.

    `pids` may map each PID to a label, such as `{os.getpid(): "this notebook"}`.
    """
    labels = pids if isinstance(pids, Mapping) else {}
    rows = (describe(pid, labels.get(pid)) for pid in pids)
    return NamespaceTable(tuple(row for row in rows if row is not None))


def group(rows: Iterable[ProcessNamespaces]) -> dict[str, dict[NamespaceId, list[int]]]:
    """For each namespace type: each namespace seen, and the PIDs inside it.

    >>> a = ProcessNamespaces(1, "init", {"uts": NamespaceId("uts", 10)})
    >>> b = ProcessNamespaces(2, "sh", {"uts": NamespaceId("uts", 10)})
    >>> c = ProcessNamespaces(3, "box", {"uts": NamespaceId("uts", 11)})
    >>> group([a, b, c])["uts"]
    {NamespaceId(type='uts', inode=10): [1, 2], NamespaceId(type='uts', inode=11): [3]}
    """
    out: dict[str, dict[NamespaceId, list[int]]] = {}
    for row in rows:
        for ns_type, ns in row.namespaces.items():
            out.setdefault(ns_type, {}).setdefault(ns, []).append(row.pid)
    return out


def sharing(pids: Iterable[int | str]) -> dict[str, dict[NamespaceId, list[int]]]:
    """Which of `pids` share which namespace: `{type: {namespace: [pid, ...]}}`."""
    return group(namespace_table(pids))


def start(argv: Sequence[str], *, wait_for: str | None = None, timeout_s: float = 5.0,
          lab: Any = None) -> subprocess.Popen[bytes]:
    """Start a helper process with `subprocess`, outside any container.

    Args:
        argv: the command, such as `["unshare", "--uts", "sleep", "300"]`.
        wait_for: return only once the process's name (`/proc/<pid>/comm`) is this, i.e. once
            it has exec'd that program. Default: the program itself, or for `unshare [--flag...]
            PROGRAM` the program unshare(1) execs after calling unshare(2).
        timeout_s: how long to wait for that.
        lab: a `pycontain.lab.Lab`; when given, `lab.close()` stops the process.
    """
    if wait_for is None:
        program = argv[0]
        if os.path.basename(program) == "unshare":
            program = next(a for a in argv[1:] if not a.startswith("-"))
        wait_for = os.path.basename(program)
    process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL)
    if lab is not None:
        lab.defer(lambda: stop(process), f"stop {' '.join(argv)!r} (pid {process.pid})")
    deadline = time.monotonic() + timeout_s
    while _comm(process.pid) != wait_for[:15]:
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            from pycontain.errors import ProcessError

            raise ProcessError(f"{' '.join(argv)!r} did not become {wait_for!r} "
                               f"within {timeout_s} s (exit status {process.returncode})",
                               hint="an exit status means it ended first (a typo in the "
                                    "command, or a missing program); None means it was still "
                                    "starting: pass a longer timeout_s")
        time.sleep(0.005)
    return process


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


class _Stoppable(Protocol):
    def kill(self) -> None: ...
    def wait(self) -> object: ...


def stop(process: _Stoppable) -> None:
    """Kill a process (a `subprocess.Popen` or a `Container`) and reap it."""
    try:
        process.kill()
    except ProcessLookupError:
        pass
    process.wait()


# --- an experiment for a fresh process (helper.in_fresh_process) -------------------------------

def unshare_with_threads(flags: int, threads: int) -> None:
    """Call unshare(2) with `flags` while this process runs `threads` threads (lesson 02).

    Meant for `helper.in_fresh_process`: with CLONE_NEWUSER and more than one thread the kernel
    answers EINVAL, because all threads of a process must stay in one user namespace (unshare(2)).
    """
    from pycontain import syscalls

    stop_threads = threading.Event()
    for _ in range(threads - 1):
        threading.Thread(target=stop_threads.wait, daemon=True).start()
    try:
        syscalls.unshare(syscalls.CloneFlag(flags))
    finally:
        stop_threads.set()
