"""A container's processes as the host sees them: `pycontain top` (docker top).

Inside a PID namespace the container numbers its processes from 1 (lesson 03); the host knows
each by its own number too. Which processes are the container's? Those in its cgroup: the
kernel lists them in `cgroup.procs` (lesson 12), the first process, its children and every
`pycontain exec`'d one alike, wherever they moved in the namespaces. Each row is read from
/proc/<pid>: the real uid from `status` (named from the host's /etc/passwd, as ps on the host
names it), the CPU time (utime + stime, fields 14 and 15 of `stat`, in clock ticks) and the
command line (`cmdline`, or the name in brackets for a kernel thread or a zombie).

See also: proc_pid_stat(5), proc_pid_status(5), proc_pid_cmdline(5), ps(1), docker-top(1).
"""

from __future__ import annotations

import os

from pycontain import state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def pids(record: state.Record) -> list[int]:
    """The host pids in the container's cgroup, in order; none once it has ended."""
    cgroup = state.cgroup_of(record)
    if cgroup is None:
        return []
    found: set[int] = set()
    for directory in cgroup.dirs.values():  # v1: the same processes in each hierarchy
        try:
            with open(os.path.join(directory, "cgroup.procs")) as f:
                found.update(int(line) for line in f.read().split())
        except FileNotFoundError:
            continue
    return sorted(found)


def _user_names() -> dict[int, str]:
    names: dict[int, str] = {}
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.split(":")
                if len(fields) > 2 and fields[2].isdigit():
                    names.setdefault(int(fields[2]), fields[0])
    except FileNotFoundError:
        pass
    return names


def clock(ticks: int, per_second: int) -> str:
    """CPU time as ps(1) prints it.

    >>> clock(0, 100), clock(367_500, 100)
    ('00:00:00', '01:01:15')
    """
    seconds = ticks // per_second
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def row(pid: int, names: dict[int, str], per_second: int) -> dict[str, Any] | None:
    """One process's PID, USER, TIME and CMD, or None when it has gone meanwhile."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/status") as f:
            uid = int(next(line for line in f if line.startswith("Uid:")).split()[1])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().rstrip(b"\0").split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    command = " ".join(a.decode(errors="replace") for a in argv if a)
    if not command:
        command = f"[{stat.partition('(')[2].rpartition(')')[0]}]"
    return {"PID": pid, "USER": names.get(uid, str(uid)), "TIME": clock(ticks, per_second),
            "CMD": command}


def table(record: state.Record) -> str:
    """docker top's table for the container `record` describes."""
    names = _user_names()
    per_second = os.sysconf("SC_CLK_TCK")
    return render([r for pid in pids(record) if (r := row(pid, names, per_second))])


def render(rows: list[dict[str, Any]]) -> str:
    """The rows as a table, the command last and not padded.

    >>> print(render([{"PID": 7, "USER": "root", "TIME": "00:00:00", "CMD": "sleep 60"}]))
    PID   USER   TIME       CMD
    7     root   00:00:00   sleep 60
    """
    header = ("PID", "USER", "TIME", "CMD")
    cells = [header] + [tuple(str(r[key]) for key in header) for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header) - 1)]
    return "\n".join("   ".join([*(c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)),
                                 line[-1]]) for line in cells)
