"""Measuring what a container sends to the host, interval by interval (lesson 17).

`measure("5mbit")` starts a receiver on the host (`workloads.receive`, on every address and a
free port), then a container on the bridge with that `egress_rate` on its veth
(`network.shaping`) that sends to the host's end of the bridge (`network.options.gateway()`)
for `seconds` (`workloads.send`). The throughput is counted where the bytes arrive, from the
first byte to the last: what a sender has written may still sit in its buffers, and the time a
container takes to start is not the link's. `Throughput` holds the bytes of each interval and
draws them against the rate; `on_sample(partial)` is called after each interval, so a widget
redraws as they come. Both processes are stopped before it returns. `measure_received` is the
other direction: this process sends to a receiver in a container (an `ingress_rate`), and the
container's receiver counts.

See also: tc-tbf(8); socket(7) (SO_SNDBUF); iperf3(1), the tool this imitates in miniature.
"""

from __future__ import annotations

import os
import select
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pycontain import runtime, workloads
from pycontain.errors import ProcessError
from pycontain.network import options, shaping

#: how long the sender may take to start and connect, beyond its seconds of sending
START_S = 60.0


@dataclass
class Throughput:
    """What the receiver counted: `bytes_` in each interval of `every_s`, ending at `times_s`
    (since the first byte), `total_bytes` over `seconds` from the first byte to the last, and
    how the sender's container ended (`result`)."""

    label: str
    rate_bps: int | None
    every_s: float
    times_s: list[float] = field(default_factory=list)
    bytes_: list[int] = field(default_factory=list)
    total_bytes: int = 0
    seconds: float = 0.0
    result: runtime.Result | None = None

    @property
    def mbit(self) -> float:
        """Mbit/s from the first byte to the last (0 before the end).

        >>> Throughput("x", None, 0.1, total_bytes=1_250_000, seconds=2.0).mbit
        5.0
        """
        return self.total_bytes * 8 / self.seconds / 1e6 if self.seconds > 0 else 0.0

    def mbits(self) -> list[float]:
        """Mbit/s in each interval: its bytes over the time since the one before.

        >>> run = Throughput("x", None, 0.1, [0.1, 0.2, 0.25], [125_000, 62_500, 62_500])
        >>> [round(mbit, 6) for mbit in run.mbits()]
        [10.0, 5.0, 10.0]
        """
        starts = [0.0, *self.times_s[:-1]]
        return [n * 8 / (end - start) / 1e6 if end > start else 0.0
                for start, end, n in zip(starts, self.times_s, self.bytes_, strict=True)]

    def figure(self) -> Any:
        return figure([self])

    def _repr_png_(self) -> bytes:
        return bytes(self.figure()._repr_png_())


def figure(runs: list[Throughput], title: str = "") -> Any:
    """The runs' throughput over time, each with a line at the rate it was shaped to."""
    from pycontain.observe import plot

    longest = max(runs, key=lambda r: len(r.times_s))
    series, limits = {}, {}
    for run in runs:  # one time axis: a run's intervals, padded where it ended sooner
        values = [v * 1e6 for v in run.mbits()]
        starts = [0.0, *run.times_s[:-1]]
        if values and run.times_s[-1] - starts[-1] < run.every_s / 2:
            values[-1] = float("nan")  # the last interval ends at the last byte: a few ms of
            # bytes is no rate (one chunk over 2 ms would read as tens of Mbit/s)
        series[f"received, {run.label}"] = values + [float("nan")] * (
            len(longest.times_s) - len(values))
        if run.rate_bps is not None:
            limits[f"{shaping.format_rate(run.rate_bps)} asked"] = float(run.rate_bps)
    return plot.cgroup_timeline(longest.times_s, series, limits=limits, unit="Mbit/s",
                                scale=1e6, ylabel="received", title=title or (
                                    "What the container sent, as the host received it"))


def measure(egress_rate: str | None = None, *, seconds: float = 2.0, every_s: float = 0.1,
            on_sample: Callable[[Throughput], None] | None = None,
            start: Callable[[list[str]], runtime.Container] | None = None,
            on_start: Callable[[runtime.Container], None] | None = None,
            on_end: Callable[[runtime.Container], None] | None = None) -> Throughput:
    """Count what a container on the bridge sends to the host for `seconds`, every `every_s`.

    `start(argv)` starts the sender's container (a check passes the learner's function);
    by default `pycontain.spawn(argv, network="bridge", egress_rate=egress_rate)`.
    `on_start(box)` is called once the sender's container exists (to watch its veth), and
    `on_end(box)` once the receiver has counted everything, while the sender's container and
    its veth still exist: the moment to read the veth's final counters.

    Raises:
        SpecError: `egress_rate` is not a rate in tc's units; nothing was started.
        ProcessError: the sender or the receiver failed (what they printed says why).
    """
    rate_bps = None if egress_rate is None else shaping.parse_rate(egress_rate)
    run = Throughput("no rate" if egress_rate is None else f"egress_rate={egress_rate}",
                     rate_bps, every_s)
    # held: the receiver keeps the connection open after its last line until its stdin ends,
    # so the sender (which waits for that close) and its veth are still there for `on_end`;
    # a sender that ended by itself would have taken its veth with its network namespace
    receiver = subprocess.Popen(workloads.receive_argv(0, every_s, seconds + START_S, hold=True),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
    lines = _Lines(receiver)
    box = None
    try:
        first = lines.next_line() or ""
        if not first.startswith("listening on "):
            raise ProcessError(f"the receiver did not listen: it printed {first!r}")
        port = workloads.listening_port(first)
        argv = workloads.send_argv(options.gateway(), port, seconds)
        if start is not None:
            box = start(argv)
        else:
            box = runtime.spawn(argv, network="bridge", egress_rate=egress_rate)
        if on_start is not None:
            on_start(box)
        while (line := lines.next_line(box)) is not None:
            for end_s, count in workloads.intervals(line):
                run.times_s.append(end_s)
                run.bytes_.append(count)
                if on_sample is not None:
                    on_sample(run)
            if line.startswith("received "):
                break
        if on_end is not None:
            on_end(box)
        _release(receiver)  # the receiver closes; the sender, its last recv() answered, ends
        run.result = box.wait(timeout_s=30)
        if run.result.status != 0 or receiver.wait(timeout=30) != 0:
            raise ProcessError(f"the sender {run.result.reason} ({run.result.stderr.strip()}); "
                               f"the receiver printed {lines.text.strip()!r}")
        run.total_bytes, run.seconds = workloads.received(lines.text)
    finally:  # waiting releases the container's veth and IFB, also when it ended by itself
        if box is not None:
            if box.running:
                box.kill()
            box.wait()
        _release(receiver)
        if receiver.poll() is None:
            receiver.kill()
        receiver.wait()
        if receiver.stdout is not None:
            receiver.stdout.close()
    return run


def _release(receiver: subprocess.Popen[bytes]) -> None:
    """End a held receiver's stdin: it closes the connection and exits (idempotent)."""
    if receiver.stdin is not None and not receiver.stdin.closed:
        try:
            receiver.stdin.close()
        except BrokenPipeError:  # it ended already
            pass


#: the port the receiver of `measure_received` listens on, in the container's own namespace
RECEIVER_PORT = 5201


def measure_received(start: Callable[[list[str]], runtime.Container], *, seconds: float = 2.0,
                     every_s: float = 0.1, timeout_s: float = START_S) -> Throughput:
    """Count what a container on the bridge receives from this process for `seconds`.

    `start(argv)` starts the receiver's container (`workloads.receive` on `RECEIVER_PORT`)
    and returns it running; once its receiver listens, this process connects to the
    container's address and sends (`workloads.send`), and the receiver counts from its
    first byte to its last. The container is stopped before this returns.

    Raises:
        ProcessError: the container ended, or never listened within `timeout_s`.
    """
    import io
    import time

    box = start(workloads.receive_argv(RECEIVER_PORT, every_s, seconds + timeout_s))
    try:
        if box.network is None or box.network.address is None:
            raise ProcessError("the receiver's container is not on the bridge: nothing on "
                               "the host can reach it")
        deadline = time.monotonic() + timeout_s
        while not _listening(box.pid, RECEIVER_PORT):
            if not box.running or time.monotonic() > deadline:
                raise ProcessError(f"the receiver never listened: it {box.wait(1).reason}")
            time.sleep(0.05)
        workloads.send(box.network.address, RECEIVER_PORT, seconds, 256 << 20,
                       out=io.StringIO())
        result = box.wait(timeout_s=timeout_s)
    finally:  # waiting releases the container's veth, also when it ended by itself
        if box.running:
            box.kill()
        result = box.wait()
    run = Throughput("received in the container", None, every_s, result=result)
    for end_s, count in workloads.intervals(result.stdout):
        run.times_s.append(end_s)
        run.bytes_.append(count)
    run.total_bytes, run.seconds = workloads.received(result.stdout)
    return run


def _listening(pid: int, port: int) -> bool:
    """Whether a socket in the network namespace of `pid` listens on TCP `port` (proc(5):
    /proc/PID/net/tcp is that namespace's table; state 0A is LISTEN)."""
    try:
        with open(f"/proc/{pid}/net/tcp") as f:
            return any(row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A"
                       for row in f.readlines()[1:])
    except FileNotFoundError:  # it ended
        return False


class _Lines:
    """The receiver's output, line by line as it comes (os.read: no buffer to hide a line)."""

    def __init__(self, receiver: subprocess.Popen[bytes]) -> None:
        assert receiver.stdout is not None
        self.receiver, self.fd = receiver, receiver.stdout.fileno()
        self.text, self._pending = "", ""

    def next_line(self, sender: runtime.Container | None = None) -> str | None:
        """The next line; None at the end. A `sender` that failed before anything arrived
        ends the receiver, which would wait for a connection that never comes."""
        while "\n" not in self._pending:
            ready, _, _ = select.select([self.fd], [], [], 0.25)
            if not ready:
                if (sender is not None and not sender.running and "received" not in self.text
                        and sender.wait().status != 0):
                    self.receiver.kill()
                continue
            chunk = os.read(self.fd, 1 << 16).decode()
            if not chunk:
                if self._pending:
                    break
                return None
            self.text += chunk
            self._pending += chunk
        line, _, self._pending = self._pending.partition("\n")
        return line
