"""Writing to a disk under io.max, and watching the bytes go (lesson 16).

`write_experiment` runs the lesson's writer (`workloads.write`) in a container whose writes to
the lesson's loop device are capped at `wbps` bytes/s, reads the writer's progress lines as
they come (its stdout goes to a file beside the disk, on the host's filesystem) and reads, at
the end, what the kernel charged to the container's cgroup in `io.stat` (v1:
`blkio.throttle.io_service_bytes`). `writeback_experiment` leaves the writing back to the
kernel: the writer dirties pages without fsync(2) and waits, and the notebook syncs the
filesystem (`sync -f`, syncfs(2)), which hands the dirty pages to the kernel's flusher threads.
Who pays for that writeback is where cgroup v1 and v2 differ: v1 charges the I/O to the task
that submits it, and the flusher is in the root cgroup; v2 charges the pages to the cgroup
that dirtied them (cgroup-v2.rst, "Writeback"). `write_playground` is the lesson's widget.

See also: write(2) and open(2) (O_DIRECT), fsync(2), syncfs(2), sync(1).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pycontain import runtime, settings, workloads
from pycontain.fs.loop import Disk

MiB = 1 << 20


@dataclass
class WriteRun:
    """What a writer did under one cap: its progress (seconds, bytes written), its own total
    time (fsync included), and the bytes io.stat charged its cgroup (None: no cgroup)."""

    label: str
    progress: list[tuple[float, int]] = field(default_factory=list)
    seconds: float | None = None
    charged_bytes: int | None = None
    result: runtime.Result | None = None

    @property
    def written_bytes(self) -> int:
        return self.progress[-1][1] if self.progress else 0

    @property
    def mib_per_s(self) -> float:
        """The writer's rate over its whole run, fsync included, in MiB/s."""
        return self.written_bytes / MiB / self.seconds if self.seconds else 0.0

    def steady_mib_per_s(self) -> float:
        """The rate between the first block and the last (the container's start left out)."""
        (t0, b0), (t1, b1) = self.progress[0], self.progress[-1]
        return (b1 - b0) / MiB / (t1 - t0) if t1 > t0 else float("inf")

    def figure(self) -> Any:
        return progress_figure([self])

    def _repr_png_(self) -> bytes:
        return bytes(self.figure()._repr_png_())


def progress_figure(runs: list[WriteRun], title: str = "") -> Any:
    """One line per run: MiB the writer had written against seconds since it started."""
    from pycontain.observe.plot import Picture

    fig = Picture(figsize=(7, 3.4), layout="constrained")
    ax = fig.add_subplot()
    for run in runs:
        times = [0.0] + [t for t, _ in run.progress]
        ax.plot(times, [0.0] + [b / MiB for _, b in run.progress], label=run.label,
                linewidth=2)
    ax.set_xlabel("seconds since the writer started")
    ax.set_ylabel("MiB written (write(2) returned)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title or "A container's O_DIRECT writes under io.max wbps")
    return fig


def _limits(disk: Disk, wbps: str | int | None, *, buffered: bool,
            limits: Any = None) -> dict[str, Any]:
    """The cap; for buffered writes the memory controller too (`memory_max="max"`, a limit
    that limits nothing): on v2 it is the memory controller that records which cgroup dirtied
    a page, and writeback is charged to that cgroup only when it has both (cgroup-v2.rst,
    "Writeback"). `limits`, a `Limits` given whole (lesson 16's check), replaces the cap."""
    if limits is not None:
        return {"limits": limits}
    if wbps is None:
        return {}
    return {"io_max_wbps": f"{disk.device}:{wbps}", **({"memory_max": "max"} if buffered else {})}


def _charged(box: runtime.Container) -> int | None:
    return None if box.cgroup is None else box.cgroup.read_keyed("io.stat")["wbytes"]


def _start(disk: Disk, argv: list[str], wbps: str | int | None, name: str, *, buffered: bool,
           limits: Any = None) -> tuple[runtime.Container, str]:
    """The writer in a container, its stdout in a file beside the disk image (not on it)."""
    out_path = os.path.join(os.path.dirname(disk.image), f"{name}.out")
    with open(out_path, "w") as out:
        box = runtime.spawn(argv, namespaces={"pid", "mnt"}, stdout=out,
                            **_limits(disk, wbps, buffered=buffered, limits=limits))
    return box, out_path


def _fresh(disk: Disk, name: str) -> str:
    """The path of a file on `disk` that does not exist: a new inode for each run. On v2 the
    writeback of a file's pages is charged to the cgroup its inode belongs to, the one that
    dirtied it first (cgroup-v2.rst, "Writeback"): a file an earlier container wrote (even
    truncated since) would be charged to that one."""
    path = os.path.join(disk.mount_point, name)
    _remove(path)
    return path


def _remove(path: str) -> None:
    """Unlink a writer's file: the disk is small."""
    if os.path.exists(path):
        os.unlink(path)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def write_experiment(disk: Disk, wbps: str | int | None = "4M", *, size: str | int = "8M",
                     direct: bool = True, fsync: bool = True, timeout_s: float | None = None,
                     on_sample: Callable[[WriteRun], None] | None = None,
                     limits: Any = None) -> WriteRun:
    """Write `size` to a file on `disk` from a container capped at `wbps` (None: no cap),
    with O_DIRECT (`direct`) or buffered (then fsync(2) if `fsync`); `on_sample(run)` is
    called as progress lines come (10 Hz). `limits`: a whole `Limits` for the container
    instead of the cap (lesson 16's check runs the learner's).

    Raises:
        SpecError: `wbps` is not a rate (1M, 512k) or the disk is not a block device.
    """
    label = (str(limits) if limits is not None else f"wbps={wbps}" if wbps is not None
             else "no cap") + (
        "" if direct else " (buffered + fsync)" if fsync else " (buffered)")
    path = _fresh(disk, "written")
    argv = workloads.write_argv(path, size, direct=direct, fsync=fsync,
                                hold_s=1.0)  # the cgroup stays to be read
    box, out_path = _start(disk, argv, wbps, "write", buffered=not direct, limits=limits)
    run = WriteRun(label)
    deadline = time.monotonic() + (timeout_s or settings.duration_s() + 120)
    try:
        while box.running and time.monotonic() < deadline:
            text = _read(out_path)
            run.progress = workloads.progress(text)
            if on_sample is not None:
                on_sample(run)
            if "\nwrote " in text:
                run.seconds = workloads.wrote(text)[1]
                run.charged_bytes = _charged(box)
                break
            time.sleep(0.1)
    finally:
        box.kill()
        run.result = box.wait()
        _remove(path)
    return run


@dataclass
class WritebackRun:
    """`writeback_experiment`: how long the writer's buffered writes took, how long the
    kernel's writeback of them took (the notebook's `sync -f`), and what io.stat charged the
    writer's cgroup for the device."""

    wbps: str
    written_bytes: int
    write_s: float
    sync_s: float
    charged_bytes: int


def writeback_experiment(disk: Disk, wbps: str | int = "4M", *, size: str | int = "8M",
                         timeout_s: float = 120.0) -> WritebackRun:
    """A container capped at `wbps` writes `size` buffered, without fsync, and waits; then
    this process syncs the disk's filesystem (syncfs(2): the flusher threads write back its
    dirty pages, and the call waits for them), and reads the container's io.stat."""
    path = _fresh(disk, "dirty")
    argv = workloads.write_argv(path, size, direct=False, fsync=False, hold_s=timeout_s)
    box, out_path = _start(disk, argv, wbps, "writeback", buffered=True)
    try:
        deadline = time.monotonic() + timeout_s
        while "\nwrote " not in (text := _read(out_path)) and box.running:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the writer did not finish in {timeout_s:g} s: {text!r}")
            time.sleep(0.05)
        written, write_s = workloads.wrote(text)
        started = time.monotonic()
        subprocess.run(["sync", "-f", disk.mount_point], check=True, timeout=timeout_s)
        sync_s = time.monotonic() - started
        charged = _charged(box) or 0
    finally:
        box.kill()
        box.wait()
        _remove(path)
    return WritebackRun(str(wbps), written, write_s, sync_s, charged)


def write_playground(disk: Disk, wbps: str = "4M", size: str = "8M") -> Any:
    """A text field for wbps, a *direct* check box and a "write" button: each press writes
    `size` to `disk` from a container under that cap (empty: no cap) and redraws the progress
    live. Without a front end (CI) it builds and runs once, with `wbps`."""
    import html

    import ipywidgets

    from pycontain.observe.widgets import live_playground

    rate = ipywidgets.Text(value=wbps, description="wbps", placeholder="empty: no cap")
    direct = ipywidgets.Checkbox(value=True, description="O_DIRECT")

    def run(on_sample: Callable[[WriteRun], None]) -> tuple[WriteRun, str]:
        done = write_experiment(disk, rate.value.strip() or None, size=size,
                                direct=direct.value, on_sample=on_sample)
        charged = "" if done.charged_bytes is None else (
            f"; io.stat charged the cgroup {done.charged_bytes / MiB:.1f} MiB")
        return done, html.escape(f"{done.written_bytes / MiB:.0f} MiB in {done.seconds} s: "
                                 f"{done.mib_per_s:.1f} MiB/s{charged}")

    return live_playground([rate, direct], "write", run)
