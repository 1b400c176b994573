"""PID namespaces: processes numbered from one, and the duties of PID 1 (lesson 03).

A PID namespace isolates the numbers the kernel hands out to processes. The first process
created in a new one is PID 1 there, while its parent's namespace still knows it by an ordinary
number: a process has one PID in each namespace from its own up to the host's, and the `NSpid`
line of /proc/<pid>/status lists them, outermost first. A process sees only the processes of
its own namespace and of the namespaces nested below it; `/proc` shows the namespace of the proc
filesystem mounted there, which is why a container mounts a fresh one (needs its own mount
namespace, lesson 04).

PID 1 of a namespace is its init, and the kernel treats it as such:

- orphans re-parent to it: a process whose parent exits gets PID 1 as its new parent;
- it must reap them: a child that has ended stays a zombie (state Z) until its parent calls
  wait(2), and a PID 1 that never waits collects zombies until the PID space runs out;
- it ignores every signal it has no handler for, even SIGTERM; only SIGKILL and SIGSTOP sent
  from an ancestor namespace get through (the kernel marks it SIGNAL_UNKILLABLE);
- when it exits, the kernel SIGKILLs every other process in the namespace, and fork(2) there
  fails with ENOMEM from then on.

A command written for a terminal (`sleep`, `python app.py`) does none of this, so runtimes can put
a minimal init in front of it: `docker run --init` runs tini, and `pycontain run --init` runs
`reap_until` below in the Python process that built the container (the command is PID 2).

Two ways into a new PID namespace (CURRICULUM, lesson 03)::

    clone(2)                                     unshare(2) + fork(2)  (what pycontain does)
    ------------------------------------------   -----------------------------------------------
    pid = clone(child_main, stack_top,           unshare(CLONE_NEWPID | CLONE_NEWUTS | ...);
                CLONE_NEWPID | CLONE_NEWUTS |    pid = fork();  /* the child is PID 1 */
                ... | SIGCHLD, arg);             if (pid == 0) { ...; execve(...); }
    /* the child starts in the new namespaces,   /* the caller moved into every new namespace
       PID 1 there; the caller moves nowhere */     but PID: unshare(CLONE_NEWPID) changes only
                                                    its ns/pid_for_children, never its own PID */
    one call; runc's C helper (nsexec) and       two calls; works from any language that can
    crun do this                                 fork, which is why unshare(1) has --fork

CPython cannot safely run Python code in a raw clone(2) child (no stack of its own, no
after-fork bookkeeping), so pycontain uses the second way, as `unshare --pid --fork` does.

See also: pid_namespaces(7), namespaces(7), clone(2), unshare(2), wait(2), proc_pid_status(5)
("NSpid"), signal(7); tini (https://github.com/krallin/tini).
Left out: nested PID namespaces beyond one level, setns(2) into a PID namespace (it too applies
to children only), /proc/sys/kernel/ns_last_pid, PR_SET_CHILD_SUBREAPER (a reaper that is not
PID 1; tini -s uses it).
"""

from __future__ import annotations

# Keep these imports light and complete: `pycontain.init` imports this module before it pivots
# the root (after that the interpreter's library is out of reach), and `reap_until` runs there.
# _signal is the C half of `signal`, without building its enums (see pycontain.init).
import _signal as signal
import os
import time
from collections import namedtuple

from pycontain import syscalls
from pycontain.syscalls import CloneFlag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from pycontain import procfs

#: the signals a minimal init passes on to its child, the set tini forwards
FORWARDED_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM,
                     signal.SIGUSR1, signal.SIGUSR2)


# --- PID 1's duties ---------------------------------------------------------------------------

def reap_until(child: int) -> int:
    """Be a minimal init: forward signals to `child`, reap every child that ends, and return
    `child`'s wait status once it has ended.

    Orphans of the namespace re-parent to PID 1, so `waitpid(-1, 0)` (any child) reaps them
    too; stopping at `child` alone would leave them zombies. Python runs the handlers between
    two waits and restarts an interrupted waitpid(2) by itself (PEP 475). The caller may block
    the signals before it forks `child` (`init.become_init` does): until a handler exists, the
    kernel drops them at PID 1, but it keeps blocked ones pending, and they arrive here.
    """
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass  # it has ended: the next waitpid returns it

    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == child:
            return status


def exit_status(wait_status: int) -> int:
    """The shell's view of a wait status: the exit code, or 128 + N when signal N killed it.

    PID 1 cannot pass a child's death by signal on by dying of the same signal (it ignores its
    own signals, see above), so it exits with 128 + N, as tini and `docker run --init` do.

    >>> exit_status(7 << 8), exit_status(15)
    (7, 143)
    """
    code = os.waitstatus_to_exitcode(wait_status)
    return code if code >= 0 else 128 - code


def fork_after_init_exited() -> int:
    """Create a PID namespace whose PID 1 exits at once, then try to fork(2) into it.

    Meant for `helper.in_fresh_process`: it moves the calling process's children into a new PID
    namespace. The second fork fails with ENOMEM: once its init has gone, a namespace accepts
    no new process (pid_namespaces(7)). Returns the PID of that second child if it ever succeeds.
    """
    syscalls.unshare(CloneFlag.CLONE_NEWPID)
    first = syscalls.fork()
    if first == 0:
        os._exit(0)  # PID 1 of the new namespace, and gone
    os.waitpid(first, 0)
    second = syscalls.fork()  # SyscallError ENOMEM: the namespace has no init any more
    if second == 0:
        os._exit(0)
    os.waitpid(second, 0)
    return second


# --- reading PIDs from the host ---------------------------------------------------------------
# procfs is imported where it is used: the module above runs in every `--init` container, and
# procfs pulls in `re` and `dataclasses`, which a container's start-up does not need.

class Process(namedtuple("Process", "host_pid pid ppid state name")):
    """One process of a container: its host PID; its PID and its parent's PID inside (0: the
    parent is outside); its state (R, S, D, Z for zombie, ... as proc_pid_stat(5)); its name."""

    __slots__ = ()

    @property
    def zombie(self) -> bool:
        return self.state == "Z"


class ProcessTable(tuple[Process, ...]):
    """The processes of one container, shown as a table in a notebook (zombies in bold)."""

    __slots__ = ()
    HEADER = ("host PID", "PID inside", "PPID inside", "state", "name")

    def zombies(self) -> ProcessTable:
        return ProcessTable(p for p in self if p.zombie)

    def __repr__(self) -> str:
        """
        >>> print(ProcessTable([Process(4242, 1, 0, "S", "sleep"), Process(4250, 3, 1, "Z", "sh")]))
        host PID  PID inside  PPID inside  state  name
        4242      1           0            S      sleep
        4250      3           1            Z      sh
        """
        rows = [self.HEADER, *(tuple(str(v) for v in p) for p in self)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.HEADER))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                         for r in rows)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in self.HEADER)
        body = "".join("<tr>" + "".join(f"<td>{'<b>' if p.zombie else ''}{v}"
                                        f"{'</b>' if p.zombie else ''}</td>" for v in p) + "</tr>"
                       for p in self)
        return f"<table><tr>{head}</tr>{body}</table><small>state Z (bold): zombie</small>"


def nspid(host_pid: int | str = "self") -> tuple[int, ...]:
    """A process's PID in each PID namespace it is in, outermost (the host's) first."""
    from pycontain import procfs

    return procfs.status(host_pid).nspid


def pid_inside(host_pid: int) -> int:
    """The PID a process has in its own (innermost) PID namespace: 1 for a container's init."""
    return nspid(host_pid)[-1]


def pid_for_children(host_pid: int | str = "self") -> procfs.NamespaceId:
    """The PID namespace `host_pid`'s next children will be born in (/proc/<pid>/ns/
    pid_for_children). After unshare(CLONE_NEWPID) it differs from the process's own."""
    from pycontain import procfs

    return procfs.parse_ns_link(os.readlink(f"/proc/{host_pid}/ns/pid_for_children"))


def processes(init_pid: int) -> ProcessTable:
    """Every process in the PID namespace of `init_pid` (a host PID), zombies included, read
    from the host's /proc: those whose /proc/<pid>/ns/pid is that namespace."""
    from pycontain import procfs

    target = os.readlink(f"/proc/{init_pid}/ns/pid")
    level = len(procfs.status(init_pid).nspid) - 1  # the container's entry in every NSpid
    found: dict[int, procfs.Status] = {}
    for host_pid in procfs.pids():
        try:
            if os.readlink(f"/proc/{host_pid}/ns/pid") == target:
                found[host_pid] = procfs.status(host_pid)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # it ended (and was reaped) while we looked, or is not ours to read
    rows = []
    for host_pid, status in found.items():
        parent = found.get(status.ppid)
        rows.append(Process(host_pid, status.nspid[level],
                            parent.nspid[level] if parent else 0, status.state[:1], status.name))
    return ProcessTable(sorted(rows, key=lambda p: p.pid))


def zombies(init_pid: int) -> ProcessTable:
    """The zombies in the PID namespace of `init_pid`: ended, never waited for."""
    try:
        return processes(init_pid).zombies()
    except (FileNotFoundError, ProcessLookupError):
        return ProcessTable()  # the whole namespace has gone


def wait_for_processes(init_pid: int, count: int, *, name: str | None = None,
                       state: str | None = None, ppid: int | None = None,
                       timeout_s: float = 5.0) -> ProcessTable:
    """`processes(init_pid)` once at least `count` of them have this `name`, `state` and
    parent PID inside (each left out: any), such as 3 `sleep`s, or 10 zombies (`state="Z"`).

    Raises:
        TimeoutError: there were fewer after `timeout_s`.
    """
    def matches(p: Process) -> bool:
        return name in (None, p.name) and state in (None, p.state) and ppid in (None, p.ppid)

    deadline = time.monotonic() + timeout_s
    while sum(map(matches, table := processes(init_pid))) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the container of PID {init_pid} did not hold {count} processes "
                               f"(name {name}, state {state}, ppid {ppid}) within {timeout_s} s:"
                               f"\n{table!r}")
        time.sleep(0.01)
    return table


# --- a bounded demo workload and what to watch it with ----------------------------------------

def orphan_maker(count: int = 20, interval_s: float = 0.1, then: str = "sleep 60") -> list[str]:
    """A container command that leaves `count` orphans behind, one every `interval_s`, then
    runs `then` as the container's command (PID 1, or PID 2 under `--init`).

    Each orphan is `true` started in the background by a subshell that exits at once, so it
    re-parents to PID 1 and ends a moment later: a zombie unless PID 1 waits for it.
    """
    if not (isinstance(count, int) and 0 < count <= 1000 and 0 < interval_s <= 10):
        raise ValueError(f"`count` must be 1-1000 and `interval_s` in (0, 10], "
                         f"got {count!r}, {interval_s!r}")
    maker = (f"i=0; while [ $i -lt {count} ]; do (/bin/true &); i=$((i + 1)); "
             f"sleep {interval_s}; done; sleep 60")
    return ["sh", "-c", f"sh -c '{maker}' & exec {then}"]


def zombie_timeline(init_pids: Mapping[str, int], *, duration_s: float = 3.0,
                    interval_s: float = 0.1) -> tuple[list[float], dict[str, list[int]]]:
    """Count the zombies of several containers every `interval_s` for `duration_s`.

    Args:
        init_pids: a label for each container -> the host PID of its PID 1.
    Returns:
        the sample times in seconds since the start, and for each label its zombie counts.
    """
    times: list[float] = []
    counts: dict[str, list[int]] = {label: [] for label in init_pids}
    start = time.monotonic()
    while (now := time.monotonic() - start) <= duration_s:
        times.append(now)
        for label, init_pid in init_pids.items():
            counts[label].append(len(zombies(init_pid)))
        time.sleep(max(0.0, start + len(times) * interval_s - time.monotonic()))
    return times, counts


def alive(processes: Iterable[Process | int]) -> list[int]:
    """The host PIDs of those `processes` (rows or host PIDs) that still exist, zombies too."""
    pids = [p.host_pid if isinstance(p, Process) else p for p in processes]
    return [p for p in pids if os.path.exists(f"/proc/{p}")]
