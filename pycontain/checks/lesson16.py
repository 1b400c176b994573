"""The checks of lesson 16, throttle disk io.

`check_capped_writes` makes a disk of its own (`fs.loop.make_disk`: a loop device with an ext4,
mounted in a `pycontain-check16-…` directory), asks the learner's `limits_for(device)` for the
`Limits` of a container whose writes to that device go at `TARGET_MIB_S` MiB/s, and runs
the lesson's writer with O_DIRECT under them (`observe.disk.write_experiment`). It passes when
the writer's steady rate is within `TOLERANCE` of the target (the lesson asks for 15 %; the
check allows 25 %, so that a busy machine does not fail a right answer). The messages diagnose
the usual mistakes: a read cap, an operations cap, bytes that are not MiB.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable

from pycontain.checks import Passed, attempt, expect

TARGET_MIB_S = 4.0
TOLERANCE = 0.25
WRITE = "12M"  # about 3 s at the target


def check_capped_writes(limits_for: Callable[[str], object]) -> Passed:
    """`limits_for(device)` returns the Limits that hold a container's writes to `device`
    (a /dev/loopN) at 4 MiB/s."""
    from pycontain.cgroups.controllers import io
    from pycontain.cgroups.limits import Limits
    from pycontain.fs import loop
    from pycontain.observe import disk as writes

    where = tempfile.mkdtemp(prefix="pycontain-check16-")
    made = None
    try:
        made = loop.make_disk(where, 64 << 20)
        limits = attempt(f"limits_for({made.device!r})", limits_for, made.device, returns=Limits,
                         instead="return a Limits(...) with the cap as its keyword")
        assert isinstance(limits, Limits)
        expect(limits.io_max_wbps is not None,
               f"{limits} sets no write cap: " + (
                   "io_max_rbps caps reads, and the check writes" if limits.io_max_rbps else
                   "io_max_wiops caps write *operations* per second, not bytes; the exercise "
                   "asks for bytes per second" if limits.io_max_wiops else
                   "which io.max key counts bytes written per second?"))
        number = io.device_number(made.device, "device")
        device, _, rate_bytes = str(limits.io_max_wbps).partition(" ")
        expect(device == number,
               f"{limits} caps the device {device}, but the container writes to {made.device} "
               f"({number}): cap the device the function is given")
        run = writes.write_experiment(made, None, size=WRITE)  # the same disk, uncapped
        free = run.steady_mib_per_s()
        run = writes.write_experiment(made, rate_bytes, size=WRITE)
        rate = run.steady_mib_per_s()
    finally:
        if made is not None:
            loop.remove_disk(made)
        shutil.rmtree(where, ignore_errors=True)
    seen = (f"the container wrote {run.written_bytes >> 20} MiB with O_DIRECT at {rate:.2f} "
            f"MiB/s (uncapped: {free:.0f} MiB/s)")
    expect(abs(rate - TARGET_MIB_S) <= TOLERANCE * TARGET_MIB_S,
           f"{seen}; the target is {TARGET_MIB_S:g} MiB/s. io.max counts bytes per second, "
           "and a size's M is a power of 1024 (sizes in lesson 14): what rate in bytes did "
           "your Limits write to io.max? (print it: they show it)")
    return Passed(f"{seen}: within {TOLERANCE:.0%} of {TARGET_MIB_S:g} MiB/s")
