"""The checks of lesson 16, throttle disk io.

`check_capped_writes` makes a disk of its own (`fs.loop.make_disk`: a loop device with an ext4,
mounted in a `pycontain-check16-…` directory), asks the learner's `limits_for(device)` for the
`Limits` of a container whose writes to that device go at `TARGET_MIB_S` MiB/s, and runs
the lesson's writer with O_DIRECT under exactly those limits (`observe.disk.write_experiment`).
It passes when the writer's steady rate is within `TOLERANCE` of the target (the lesson asks
for 15 %; the check allows 25 %, so that a busy machine does not fail a right answer).

It recognises the wrong turns seen when the exercise was tried, before the writer starts: a
read cap, an operations cap, another device than the one given, and a rate that io.max would
hold far from the target (bytes given as a bare number, megabits for megabytes). Whatever the
function raises, the check's disk is unmounted and detached (its `finally`).

The stretch, `check_capped_by_path`, gives a directory on its disk instead of the device: the
learner must find the block device a path lives on (a file is not the disk; io.max takes a
device). A directory given as it is, or another device, is named before the writer starts.

(A stretch of the same rate from a cap on write *operations*, `wiops`, was tried and left out:
on this kernel the throttle's operations count for one 1 MiB write(2) changed from run to run,
12 and 24 for the same 12 MiB, and wiops=8 gave 5.6 MiB/s where 4 was expected.)
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from pycontain.checks import CheckFailed, Passed, attempt, expect
from pycontain.checks.exercise import exercise

MiB = 1 << 20
TARGET_MIB_S = 4.0
TOLERANCE = 0.25
WRITE = "12M"  # about 3 s at the target
#: a rate io.max would hold this far from the target is named before the writer runs
FAR = 2.0

CAPPED_HINTS = (
    "Which of io.max's four keys (\"Cap the writes\") counts bytes *written* per second? "
    "Limits takes each as a keyword, with the device first.",
    "io.max names a device by its number, and pycontain turns a /dev path into that number: "
    "give the path your function is given, not the lesson's disk.",
    "A rate is a size per second, in the grammar of sizes (lesson 14): a bare number is bytes, "
    "and M is a power of 1024. The sleeper in \"Cap the writes\" shows the form DEVICE:RATE.",
)
BY_PATH_HINTS = (
    "A directory is not a device, and io.max names devices. The section \"A rate on the wrong "
    "thing\" says how to find the one a path lives on.",
    "From Python, without a shell: os.stat(path).st_dev is the number of the device the path "
    "lives on (os.major, os.minor split it), and /proc/self/mountinfo lists each mount's "
    "device number and source; or run findmnt(8) with its --target and --output options.",
)


def _with_disk(limits_for: Callable[[str], object], shown: str,
               judge: Callable[[Any, Any, str], tuple[str, Any]],
               given: Callable[[Any], str] = lambda disk: str(disk.device)) -> tuple[str, Any]:
    """Make the check's disk, ask `limits_for(given(disk))` for Limits (`given`: the device,
    or a path on the disk), let `judge(limits, disk, number)` run the writer; the disk goes
    whatever happens."""
    from pycontain.cgroups.controllers import io
    from pycontain.cgroups.limits import Limits
    from pycontain.fs import loop

    where = tempfile.mkdtemp(prefix="pycontain-check16-")
    made = None
    try:
        made = loop.make_disk(where, 64 << 20)
        argument = given(made)
        limits = attempt(f"{shown}({argument!r})", limits_for, argument, returns=Limits,
                         instead="return a Limits(...) with the cap as its keyword")
        return judge(limits, made, io.device_number(made.device, "device"))
    finally:
        if made is not None:
            loop.remove_disk(made)
        shutil.rmtree(where, ignore_errors=True)


def _on_the_device(key: str, limits: Any, device: str, number: str) -> int:
    """The rate `limits` gives the device under io.max's `key`, after checking it is ours."""
    value = getattr(limits, f"io_max_{key}")
    named, _, rate = str(value).partition(" ")
    expect(named == number,
           f"{limits} caps the device {named}, but the container writes to {device} "
           f"({number}): cap the device the writer writes to (the one your function is "
           "given; in the stretch, the one its directory lives on)")
    return int(rate)


def _measured(disk: Any, limits: Any) -> tuple[float, float, Any]:
    """(uncapped MiB/s, capped MiB/s, the capped run) of the writer on `disk`."""
    from pycontain.observe import disk as writes

    free = writes.write_experiment(disk, None, size=WRITE).steady_mib_per_s()
    run = writes.write_experiment(disk, None, size=WRITE, limits=limits)
    return free, run.steady_mib_per_s(), run


def _bytes_cap(limits: Any, disk: Any, number: str) -> tuple[str, Any]:
    expect(limits.io_max_wbps is not None,
           f"{limits} sets no cap on bytes written: " + (
               "io_max_rbps caps reads, and the check writes" if limits.io_max_rbps else
               "io_max_wiops caps write *operations* per second, not bytes; the exercise "
               "asks for bytes per second" if limits.io_max_wiops else
               "which io.max key counts bytes written per second?"))
    rate = _on_the_device("wbps", limits, disk.device, number)
    mib_s = rate / MiB
    if not TARGET_MIB_S / FAR <= mib_s <= TARGET_MIB_S * FAR:
        bits = abs(mib_s - 8 * TARGET_MIB_S) < 0.5
        raise CheckFailed(
               f"{limits} writes wbps={rate} to io.max: {rate} bytes/s is {mib_s:.3g} MiB/s, "
               f"and the target is {TARGET_MIB_S:g} MiB/s (the writer did not run: it would "
               "take " + ("forever" if mib_s < 0.01 else f"{12 / mib_s:.1f} s") + "). " + (
                   "That is 4 MiB/s in bits: io.max counts bytes" if bits else
                   "A bare number is bytes, and a size's M is a power of 1024 (lesson 14)"))
    others = _other_limits(limits, "io_max_wbps")
    cap_mib = rate / MiB
    right_cap = abs(cap_mib - TARGET_MIB_S) <= TOLERANCE * TARGET_MIB_S
    for _ in range(2):
        free, mib_s, run = _measured(disk, limits)
        seen = (f"the container wrote {run.written_bytes >> 20} MiB with O_DIRECT at "
                f"{mib_s:.2f} MiB/s (uncapped: {free:.0f} MiB/s)")
        if abs(mib_s - TARGET_MIB_S) <= TOLERANCE * TARGET_MIB_S:
            return seen, run
        if others or not right_cap or mib_s > TARGET_MIB_S:
            break
        # the right cap alone, and slower than it: io.max only ever holds back, so a busy
        # machine slowed the writer itself; measure once more before saying so
    if others:
        raise CheckFailed(f"{seen}; the target is {TARGET_MIB_S:g} MiB/s, and {limits} also "
                          f"sets {', '.join(others)}, which the writer may run into")
    if not right_cap:
        raise CheckFailed(f"{seen}; the target is {TARGET_MIB_S:g} MiB/s, and your cap is "
                          f"{cap_mib:.2f} MiB/s: a size's M is a power of 1024 (lesson 14)")
    raise CheckFailed(
        f"{seen}, twice, under a cap of {cap_mib:.2f} MiB/s, the right one: io.max only holds "
        "a writer back, so this machine was too busy for the writer to reach it (the uncapped "
        "rate shows how busy). Run the check again when it is quieter"
        if mib_s < TARGET_MIB_S else
        f"{seen}, faster than its cap of {cap_mib:.2f} MiB/s: did the writer write to the "
        "device you capped?")


def _other_limits(limits: Any, *kept: str) -> list[str]:
    """The fields `limits` sets besides `kept`."""
    from pycontain.cgroups.limits import FIELDS

    return [name for name in FIELDS if name not in kept and getattr(limits, name) is not None]


@exercise(hints=CAPPED_HINTS)
def check_capped_writes(limits_for: Callable[[str], object]) -> Passed:
    """`limits_for(device)` returns the Limits that hold a container's writes to `device`
    (a /dev/loopN) at 4 MiB/s."""
    seen, _ = _with_disk(limits_for, "limits_for", _bytes_cap)
    return Passed(f"{seen}: within {TOLERANCE:.0%} of {TARGET_MIB_S:g} MiB/s")


def _directory(disk: Any) -> str:
    """A directory on the check's disk, where its writer writes: what the stretch is given."""
    import os

    path = os.path.join(disk.mount_point, "data")
    os.makedirs(path, exist_ok=True)
    return path


@exercise(hints=BY_PATH_HINTS, stretch=True)
def check_capped_by_path(limits_for_path: Callable[[str], object]) -> Passed:
    """Stretch: `limits_for_path(directory)` returns the Limits that hold a container's writes
    to the device `directory` lives on at 4 MiB/s."""
    seen, _ = _with_disk(limits_for_path, "limits_for_path", _bytes_cap, given=_directory)
    return Passed(f"{seen}: within {TOLERANCE:.0%} of {TARGET_MIB_S:g} MiB/s, on the device "
                  "you found behind a directory: io.max holds a device, whatever file is on it")
