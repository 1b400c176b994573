"""Watching a cgroup: sample its files on a clock, and sleep until the kernel reports an event.

A cgroup is observed through its files. There are two ways to read them (lesson 14):

- **Sampling.** Numbers such as `memory.current` or `pids.current` change all the time and say
  nothing when they do: read them every 1/hz seconds. A `Monitor` opens each file once and
  re-reads it with pread(2) at offset 0 (a cgroup file is generated afresh by every read from
  its start), on a fixed clock, in a background thread, keeping a bounded history. At 20 Hz this
  costs well under 1 % of one core (bench/monitor_overhead.py). A thread is fine in a notebook
  kernel: it only reads files, it never unshares or forks.
- **Events.** Some cgroup v2 files *notify*: the kernel wakes an inotify watch when
  `cgroup.events`, `memory.events` or `pids.events` change. `wait_for_count` sleeps until the
  OOM killer (or the pids limit) has struck, through `pycontain.cgroups.events.wait_for`: the
  one wait pycontain has, which the cgroup managers use too (and which samples where the kernel
  does not notify: cgroup v1).

See also: cgroups(7), pread(2); the kernel's cgroup-v2.rst and psi.rst.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque, namedtuple
from collections.abc import Callable, Iterable, Sequence

from pycontain.cgroups import controllers, events
from pycontain.errors import CgroupError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pycontain.cgroups.base import Cgroup
    from pycontain.cgroups.controllers.field import Counter

Parser = Callable[[str], float]

#: bytes read per file per sample; the flat-keyed files pycontain samples are far smaller
READ_SIZE = 4096


def integer(text: str) -> float:
    """A single-value file: `memory.current`, `pids.current`; "max" (no limit) is infinity.

    >>> integer("1048576\\n"), integer("max\\n")
    (1048576.0, inf)
    """
    text = text.strip()
    return math.inf if text == "max" else float(int(text))


def keyed(key: str) -> Parser:
    """A parser for one line of a flat-keyed file (`memory.events`, `memory.stat`,
    `cgroup.events`, v1's `memory.oom_control`): the value after `key`.

    >>> keyed("oom_kill")("low 0\\nhigh 12\\nmax 3\\noom 1\\noom_kill 1\\n")
    1.0
    """
    def parse(text: str) -> float:
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return integer(value)
        raise ValueError(f"no line {key!r} in {text!r}")

    parse.__name__ = f"keyed({key!r})"
    return parse


def pressure(line: str = "some", field: str = "avg10") -> Parser:
    """A parser for a PSI file (`memory.pressure`): one field of the `some` or `full` line.
    `avgN` is the share of wall time, in %, that tasks stalled over the last N seconds;
    `total` the stall time in µs (Documentation/accounting/psi.rst).

    >>> pressure("full", "total")("some avg10=1.50 avg60=0.30 avg300=0.06 total=912\\n"
    ...                           "full avg10=1.20 avg60=0.25 avg300=0.05 total=801\\n")
    801.0
    """
    def parse(text: str) -> float:
        for row in text.splitlines():
            kind, *pairs = row.split()
            if kind == line:
                return float(dict(p.split("=", 1) for p in pairs)[field])
        raise ValueError(f"no {line!r} line in {text!r}")

    parse.__name__ = f"pressure({line!r}, {field!r})"
    return parse


class Probe(namedtuple("Probe", "name path parse", defaults=(integer,))):
    """One thing to sample: a `name` for the series, the file's `path`, and how to `parse` it."""

    __slots__ = ()


def scaled(parse: Parser, factor: float) -> Parser:
    """`parse`, its number multiplied by `factor` (v1's nanoseconds as v2's microseconds).

    >>> scaled(integer, 1 / 1000)("2500000\\n")
    2500.0
    """
    if factor == 1:
        return parse

    def scaled_parse(text: str) -> float:
        return parse(text) * factor

    scaled_parse.__name__ = f"{getattr(parse, '__name__', 'parse')} x{factor:g}"
    return scaled_parse


def counters(cgroup: Cgroup) -> list[Probe]:
    """A probe for every number `cgroup`'s controllers count (their `COUNTERS`: cpu time and
    throttling, memory, tasks...), named the same on v1 and v2 and in v2's units, for those
    whose file this cgroup has (a v1 cgroup has only the hierarchies its limits asked for).

    On v2 a counter is a line of a v2 file (`cpu.stat` usage_usec, io.stat's wbytes over every
    device); on v1 the file and line v1 keeps it in, scaled (`cpuacct.usage`, in ns).
    `Monitor(counters(cgroup))` samples them all.
    """
    probes = []
    for counter in controllers.counters():
        if cgroup.version == 2:
            path, key, factor = cgroup.file(counter.file), counter.key, 1.0
        elif counter.v1_file is None:
            continue
        else:
            try:
                path = cgroup.v1_path(counter.v1_file)  # type: ignore[attr-defined]
            except CgroupError:  # no directory in that hierarchy: its limits did not ask
                continue
            key, factor = counter.v1_key, counter.v1_scale
        if os.path.exists(path):
            probes.append(Probe(counter.name, path, scaled(_parser(counter, key), factor)))
    return probes


def _parser(counter: Counter, key: str | None) -> Parser:
    """How to read `counter`'s `key`: the whole file, a line of a flat keyed file, or as its
    controller sums a nested one (io.stat's lines per device: `io.read_counter`)."""
    module = controllers.MODULES[controllers.controller_of(counter.file)]
    nested = getattr(module, "read_counter", None)
    if key is None:
        return integer
    if nested is None:
        return keyed(key)

    def parse(text: str) -> float:
        return float(nested(text, key))

    parse.__name__ = f"{counter.name}({key!r})"
    return parse


class Monitor:
    """Sample `probes` every 1/`hz` seconds in a background thread; keep the last `keep` samples.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w") as f:
    ...     _ = f.write("42\\n"); f.flush()
    ...     with Monitor([Probe("answer", f.name)], hz=50) as m:
    ...         _ = m.wait_samples(3)
    ...     m.series()["answer"][:3]
    [42.0, 42.0, 42.0]

    A file that disappears (its cgroup was removed: reads fail with ENODEV) gives NaN from then
    on; when every file is gone the monitor stops by itself. Ticks that come too late are
    skipped, not bunched up, and counted in `missed`: the clock stays fixed.
    """

    def __init__(self, probes: Iterable[Probe], *, hz: float = 20.0, keep: int = 12_000) -> None:
        self.probes = tuple(probes)
        if not self.probes:
            raise ValueError("`probes` must name at least one file to sample")
        if not 0 < hz <= 1000:
            raise ValueError(f"`hz` must be in (0, 1000], got {hz!r}")
        self.period_s = 1.0 / hz
        self.missed = 0
        self._samples: deque[tuple[float, tuple[float, ...]]] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._new = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._fds: list[int | None] = []
        self.started_at = 0.0  # time.monotonic() of the first tick

    def open(self) -> Monitor:
        """Open the files, for `sample()` on the caller's own clock, without the thread
        (`observe.stats` reads many containers' files once a second); `close()` closes them.
        A missing file raises FileNotFoundError here."""
        self._fds = [os.open(p.path, os.O_RDONLY | os.O_CLOEXEC) for p in self.probes]
        return self

    def close(self) -> None:
        """Close the files `open()` opened (a running monitor closes its own when stopped)."""
        for fd in self._fds:
            if fd is not None:
                os.close(fd)
        self._fds = [None] * len(self.probes)

    def start(self) -> Monitor:
        """Open the files and start sampling. A missing file raises FileNotFoundError here."""
        if self._thread is not None:
            raise RuntimeError("a Monitor starts once; make a new one to sample again")
        self.open()
        self._thread = threading.Thread(target=self._run, name="pycontain-monitor", daemon=True)
        self.started_at = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling and close the files; safe to call twice or from any thread."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Monitor:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sample(self) -> tuple[float, ...]:
        """Read every file once, now (NaN for a file that is gone)."""
        values = []
        for i, (probe, fd) in enumerate(zip(self.probes, self._fds, strict=True)):
            if fd is None:
                values.append(math.nan)
                continue
            try:
                values.append(probe.parse(os.pread(fd, READ_SIZE, 0).decode()))
            except OSError:  # ENODEV: the cgroup was removed under us
                os.close(fd)
                self._fds[i] = None
                values.append(math.nan)
            except ValueError:  # not what the parser expects (a file being rewritten): a gap
                values.append(math.nan)
        return tuple(values)

    def _run(self) -> None:
        try:
            tick = 0
            while not self._stop.is_set() and any(fd is not None for fd in self._fds):
                due = self.started_at + tick * self.period_s
                delay = due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                taken_s = time.monotonic() - self.started_at
                values = self.sample()
                with self._new:
                    self._samples.append((taken_s, values))
                    self._new.notify_all()
                # the next tick still to come: a late sample does not shift the clock
                behind = int((time.monotonic() - self.started_at) / self.period_s)
                self.missed += max(0, behind - tick - 1)
                tick = max(tick + 1, behind)
        finally:
            self.close()
            with self._new:
                self._new.notify_all()

    def wait_samples(self, count: int, timeout_s: float = 10.0) -> int:
        """Block until at least `count` samples are kept (or the monitor stopped); how many."""
        deadline = time.monotonic() + timeout_s
        with self._new:
            while len(self._samples) < count and self.running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._new.wait(remaining)
            return len(self._samples)

    def times_s(self) -> list[float]:
        """The time of each sample kept, in seconds since the monitor started."""
        with self._lock:
            return [t for t, _ in self._samples]

    def series(self) -> dict[str, list[float]]:
        """Each probe's name -> its values, one per time in `times_s()`."""
        with self._lock:
            rows = list(self._samples)
        return {p.name: [values[i] for _, values in rows] for i, p in enumerate(self.probes)}

    def latest(self) -> dict[str, float]:
        """The most recent sample, by probe name (empty before the first one)."""
        with self._lock:
            if not self._samples:
                return {}
            return dict(zip((p.name for p in self.probes), self._samples[-1][1], strict=True))

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (f"<Monitor {state} {1 / self.period_s:g} Hz, {len(self._samples)} samples of "
                f"{', '.join(p.name for p in self.probes)}>")


def wait_for_count(path: str, key: str, *, above: float = 0, timeout_s: float = 10.0) -> int:
    """Sleep until the counter `key` of the flat-keyed file `path` exceeds `above`; return it.

    `wait_for_count(".../memory.events", "oom_kill")` wakes when the OOM killer has struck.
    A count is a whole number: it is returned as an int (1 kill, not 1.0).
    """
    parse = keyed(key)
    return int(parse(events.wait_for(path, lambda text: parse(text) > above,
                                     timeout_s=timeout_s)))


def rises(times_s: Sequence[float], counts: Sequence[float], start: float = 0) -> list[float]:
    """The sample times at which a counter that was `start` went up: the first sample in which
    the kernel had counted each new event (an OOM kill in `memory.events`). The event itself
    happened in the sampling period before; gaps (NaN: the file was gone) are skipped.

    >>> rises([0.0, 0.01, 0.02, 0.03, 0.04], [0, 0, 1, float("nan"), 2])
    [0.02, 0.04]
    """
    found = []
    for when, count in zip(times_s, counts, strict=True):
        if count == count and count > start:  # not NaN, and up
            found.append(when)
            start = count
    return found


def rates(times_s: Sequence[float], values: Sequence[float]) -> list[float]:
    """The change per second between consecutive samples (the first one is 0): turns a growing
    counter, or `memory.current` while a hog allocates, into a speed.

    >>> rates([0, 0.5, 1.0], [0, 10, 10])
    [0.0, 20.0, 0.0]
    """
    out = [0.0]
    for i in range(1, len(times_s)):
        dt = times_s[i] - times_s[i - 1]
        out.append((values[i] - values[i - 1]) / dt if dt > 0 else 0.0)
    return out


#: the statistics of a network link (Documentation/ABI/testing/sysfs-class-net-statistics)
LINK_STATISTICS = "/sys/class/net/{link}/statistics/{counter}"


def link_bytes(veth: str) -> list[Probe]:
    """Probes for the bytes a container on the bridge has sent and received (lesson 17),
    counted by the kernel on the host's end of its veth, `veth` (`box.network.veth`).

    What the container *sends* arrives at the host through the veth: it is the host end's
    `rx_bytes`, the probe `sent_bytes`; what it receives is the host end's `tx_bytes`,
    `received_bytes`. Counted where a packet enters the link, before any shaping: a packet an
    egress rate drops later, and that TCP sends again, counts twice. `Monitor(link_bytes(veth))`
    samples them; `rates()` makes them bytes per second.

    >>> [(p.name, p.path) for p in link_bytes("pycontain-ab12c")]  # doctest: +NORMALIZE_WHITESPACE
    [('sent_bytes', '/sys/class/net/pycontain-ab12c/statistics/rx_bytes'),
     ('received_bytes', '/sys/class/net/pycontain-ab12c/statistics/tx_bytes')]
    """
    return [Probe(name, LINK_STATISTICS.format(link=veth, counter=counter))
            for name, counter in (("sent_bytes", "rx_bytes"), ("received_bytes", "tx_bytes"))]
