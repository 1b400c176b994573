"""What detached containers use, read from their cgroups and veths: `pycontain stats` (lesson 22).

`docker stats` is no more than the counters the lessons met, read once a second for every
running container and shown side by side:

| column | read from (v2; v1) | lesson |
|---|---|---|
| CPU % | `cpu.stat` usage_usec; `cpuacct.usage` (ns), else the unified tree's `cpu.stat` | 15 |
| MEM USAGE / LIMIT | `memory.current` / `memory.max`; v1 `usage_in_bytes` / `limit_in_bytes` | 14 |
| NET I/O | the host end of the veth: `rx_bytes` is what it sent, `tx_bytes` what it received | 17 |
| BLOCK I/O | `io.stat` rbytes, wbytes; `blkio.throttle.io_service_bytes` | 16 |
| PIDS | `pids.current` | 13 |

CPU % is a rate: the cpu time used between two readings over the wall time between them, so
100 % is one core busy, 200 % two (docker's convention). One reading says nothing; `sample()`
takes two, `interval_s` apart. Every counter is a monitor's probe (`monitor.counters`, the
controllers' `COUNTERS`), read with pread(2) from files opened once (`Monitor.open`), so ten
containers once a second cost far below 1 % of a core (bench/stats_overhead.py).

What the kernel did *to* a container shows as it happens: an OOM kill (`memory.events`
oom_kill; v1 `memory.oom_control`) and CPU throttling (`cpu.stat` nr_throttled, with a
`cpu.max`) are counters too, and `changes()` turns a rise between two readings into a line.

A counter a container's cgroup lacks is None, shown `--`: on v1 a cgroup has only the
hierarchies its limits asked for (no blkio without an io limit), and a container without
`--network bridge` has no veth. See also: docker-stats(1), the kernel's cgroup-v2.rst.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from pycontain.observe import monitor

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pycontain.state import Record

#: the columns of the table, as docker names them
COLUMNS = ("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
           "BLOCK I/O", "PIDS")


class Usage(NamedTuple):
    """One container's usage over one interval (None: this container's cgroup lacks it)."""

    id: str
    name: str
    cpu_percent: float | None
    memory_bytes: float | None
    memory_limit_bytes: float | None
    memory_percent: float | None
    net_received_bytes: float | None
    net_sent_bytes: float | None
    block_read_bytes: float | None
    block_written_bytes: float | None
    pids: float | None
    oom_kills: float | None
    throttled: float | None  # cpu.stat nr_throttled: periods in which cpu.max stopped it


def host_memory_bytes() -> int:
    """MemTotal: what docker shows as the limit of a container without one."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


class Watched:
    """The files of one container, opened once: its cgroup's counters and its veth's."""

    def __init__(self, record: Record) -> None:
        from pycontain import state

        self.id, self.name = record["id"], record.get("name") or ""
        cgroup = state.cgroup_of(record)
        probes = monitor.counters(cgroup) if cgroup is not None else []
        unified = (cgroup.dirs.get("unified") if cgroup is not None else None)
        if unified and not any(p.name == "cpu_usage_usec" for p in probes):
            # a v1 cgroup without cpuacct: the hybrid host's cgroup2 directory still counts
            # cpu time in its core file cpu.stat (every cgroup2 directory has it)
            probes.append(monitor.Probe("cpu_usage_usec", os.path.join(unified, "cpu.stat"),
                                        monitor.keyed("usage_usec")))
        network = record.get("network") or {}
        if network.get("veth"):
            probes += monitor.link_bytes(network["veth"])
        self.limit_bytes: float = math.inf
        if cgroup is not None:
            try:
                self.limit_bytes = monitor.integer(cgroup.read("memory.max"))
            except OSError:
                pass
        if math.isinf(self.limit_bytes):
            self.limit_bytes = host_memory_bytes()
        self.files = monitor.Monitor(probes).open() if probes else None

    def read(self) -> tuple[float, dict[str, float]]:
        """When (time.monotonic()) and what every counter says now (NaN: the file is gone)."""
        taken = time.monotonic()
        if self.files is None:
            return taken, {}
        names = (p.name for p in self.files.probes)
        return taken, dict(zip(names, self.files.sample(), strict=True))

    def close(self) -> None:
        if self.files is not None:
            self.files.close()


def usage(watched: Watched, before: tuple[float, dict[str, float]],
          after: tuple[float, dict[str, float]]) -> Usage:
    """The usage between two readings of `watched` (`Watched.read`).

    >>> w = Watched.__new__(Watched); w.id, w.name, w.limit_bytes = "ab" * 32, "web", 1 << 26
    >>> u = usage(w, (10.0, {"cpu_usage_usec": 0}),
    ...              (10.5, {"cpu_usage_usec": 250_000, "memory_current": 1 << 25}))
    >>> u.cpu_percent, u.memory_percent, u.pids
    (50.0, 50.0, None)
    """
    t0, old = before
    t1, new = after

    def now(name: str) -> float | None:
        value = new.get(name)
        return None if value is None or math.isnan(value) else value

    cpu = None
    used_then, used_now = old.get("cpu_usage_usec"), now("cpu_usage_usec")
    if used_then is not None and used_now is not None and t1 > t0:
        cpu = max(0.0, (used_now - used_then) / ((t1 - t0) * 1e6) * 100)
    memory = now("memory_current")
    return Usage(watched.id, watched.name, cpu, memory, watched.limit_bytes,
                 None if memory is None else 100 * memory / watched.limit_bytes,
                 now("received_bytes"), now("sent_bytes"), now("io_rbytes"), now("io_wbytes"),
                 now("pids_current"), now("memory_oom_kill"), now("cpu_nr_throttled"))


def running() -> list[Record]:
    """The state of every running or paused detached container, oldest first."""
    from pycontain import state

    found = []
    for container_id in state.ids():
        try:
            record = state.current(state.read(container_id))
        except (FileNotFoundError, ValueError):  # removed meanwhile, or half-made
            continue
        if record["status"] in ("running", "paused"):
            found.append(record)
    return found


class Sampler:
    """Usage of containers, one interval per `next()`: the files of each are opened once and
    kept while it runs. `references` (ids, prefixes or names) picks containers; none: every
    running one, looked up again at each step, as `docker stats` follows new ones."""

    def __init__(self, references: Sequence[str] = ()) -> None:
        from pycontain import state

        self.ids = [state.find(r) for r in references]  # refuses an unknown one, now
        self.watched: dict[str, Watched] = {}
        self.last: dict[str, tuple[float, dict[str, float]]] = {}

    def records(self) -> list[Record]:
        from pycontain import state

        if not self.ids:
            return running()
        found = []
        for container_id in self.ids:
            try:
                found.append(state.current(state.read(container_id)))
            except FileNotFoundError:  # removed since: nothing more to show
                continue
        return found

    def read(self) -> None:
        """Read every container's counters now, keeping the reading for the next interval."""
        records = {r["id"]: r for r in self.records()
                   if r["status"] in ("running", "paused")}
        for gone in set(self.watched) - set(records):
            self.watched.pop(gone).close()
            self.last.pop(gone, None)
        for container_id, record in records.items():
            if container_id not in self.watched:
                try:
                    self.watched[container_id] = Watched(record)
                except OSError:  # ended between the state and its files: not running now
                    continue
            self.last[container_id] = self.watched[container_id].read()

    def next(self) -> list[Usage]:
        """Each container's usage since the previous `read()` or `next()`, read now."""
        before = dict(self.last)
        self.read()
        return [usage(self.watched[i], before.get(i, self.last[i]), self.last[i])
                for i in self.watched if i in self.last]

    def close(self) -> None:
        for watched in self.watched.values():
            watched.close()
        self.watched.clear()

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sample(references: Sequence[str] = (), interval_s: float = 0.5) -> list[Usage]:
    """One usage of each container (`--no-stream`): two readings `interval_s` apart."""
    with Sampler(references) as sampler:
        sampler.read()
        time.sleep(interval_s)  # CPU % is a rate: it needs a second reading, later
        return sampler.next()


def changes(before: Iterable[Usage], after: Iterable[Usage]) -> list[str]:
    """What the kernel did to a container between two samples, one line each: an OOM kill, or
    CPU throttling (cpu.max), which the counters show as they rise.

    >>> old = Usage("ab" * 32, "web", *[0.0] * 11)
    >>> for line in changes([old], [old._replace(oom_kills=1.0, throttled=12.0)]):
    ...     print(line)
    web: the OOM killer killed a process (1 OOM kill in all)
    web: throttled in 12 cpu.max periods (12 in all)
    """
    earlier = {u.id: u for u in before}
    lines = []
    for u in after:
        old = earlier.get(u.id)
        who = u.name or u.id[:12]
        if old is None:
            continue
        if u.oom_kills is not None and old.oom_kills is not None and u.oom_kills > old.oom_kills:
            kills = int(u.oom_kills - old.oom_kills)
            lines.append(f"{who}: the OOM killer killed {'a process' if kills == 1 else kills} "
                         f"({int(u.oom_kills)} OOM kill{'s' * (u.oom_kills != 1)} in all)")
        if u.throttled is not None and old.throttled is not None and u.throttled > old.throttled:
            lines.append(f"{who}: throttled in {int(u.throttled - old.throttled)} cpu.max "
                         f"periods ({int(u.throttled)} in all)")
    return lines


# --- how docker writes them -------------------------------------------------------------------

def human(n_bytes: float | None, *, binary: bool) -> str:
    """A size as docker stats writes it: memory in KiB, MiB, GiB; network and disk in kB, MB.

    >>> human(1536, binary=True), human(64 << 20, binary=True), human(1500, binary=False)
    ('1.5KiB', '64MiB', '1.5kB')
    >>> human(0, binary=False), human(None, binary=True)
    ('0B', '--')
    """
    if n_bytes is None:
        return "--"
    base, units = (1024.0, ("B", "KiB", "MiB", "GiB", "TiB")) if binary else \
        (1000.0, ("B", "kB", "MB", "GB", "TB"))
    value, unit = float(n_bytes), units[0]
    for unit in units:
        if value < base or unit == units[-1]:
            break
        value /= base
    return f"{value:.3g}{unit}" if unit != "B" else f"{int(value)}B"


def _percent(value: float | None) -> str:
    return "--" if value is None else f"{value:.2f}%"


def table(usages: Sequence[Usage]) -> str:
    """docker stats' table.

    >>> print(table([Usage("ab" * 32, "web", 12.5, 1 << 20, 64 << 20, 1.5625, 1500, 700,
    ...                    0, 4096, 3, 0, 0)]))  # doctest: +NORMALIZE_WHITESPACE
    CONTAINER ID   NAME   CPU %    MEM USAGE / LIMIT   MEM %   NET I/O         BLOCK I/O     PIDS
    abababababab   web    12.50%   1MiB / 64MiB        1.56%   1.5kB / 700B    0B / 4.1kB    3
    """
    rows = [COLUMNS]
    for u in usages:
        rows.append((u.id[:12], u.name or "--", _percent(u.cpu_percent),
                     f"{human(u.memory_bytes, binary=True)} / "
                     f"{human(u.memory_limit_bytes, binary=True)}",
                     _percent(u.memory_percent),
                     f"{human(u.net_received_bytes, binary=False)} / "
                     f"{human(u.net_sent_bytes, binary=False)}",
                     f"{human(u.block_read_bytes, binary=False)} / "
                     f"{human(u.block_written_bytes, binary=False)}",
                     "--" if u.pids is None else str(int(u.pids))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def to_json(usages: Sequence[Usage]) -> list[dict[str, Any]]:
    """`--format json`: each usage as a dict of numbers (bytes, percent; None: not counted).

    >>> to_json([Usage("ab" * 32, "web", 1.0, 2, 3, 4.0, None, None, 5, 6, 7, 0, 0)])[0]["pids"]
    7
    """
    found = []
    for u in usages:
        row: dict[str, Any] = {}
        for key, value in u._asdict().items():
            whole = isinstance(value, float) and value.is_integer() and "percent" not in key
            row[key] = int(value) if whole else value
        found.append(row)
    return found
