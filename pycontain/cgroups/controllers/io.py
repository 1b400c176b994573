"""The io controller: cap how fast a cgroup reads and writes a block device (lesson 16).

`io.max` holds one line per device, `MAJ:MIN rbps=N wbps=N riops=N wiops=N` (`max`: no cap):
bytes and operations per second, read and written. The kernel delays a cgroup's I/O to the
device once it goes faster. `io.stat` counts what was done, per device (`rbytes wbytes rios
wios`), and `io.pressure` (v2 only) the time tasks stalled waiting for I/O. cgroup v1 calls the
controller `blkio` and spreads the same over one file per rate:

=================  =============================================  ==============================
v2 (the lessons)   v1 (the blkio controller)                      translation
=================  =============================================  ==============================
io.max rbps        blkio.throttle.read_bps_device                 "MAJ:MIN N"; max is 0
io.max wbps        blkio.throttle.write_bps_device                "MAJ:MIN N"; max is 0
io.max riops       blkio.throttle.read_iops_device                "MAJ:MIN N"; max is 0
io.max wiops       blkio.throttle.write_iops_device               "MAJ:MIN N"; max is 0
io.stat            blkio.throttle.io_service_bytes, io_serviced   "MAJ:MIN Read N" lines
io.pressure        (none)                                         v1 has no per-cgroup PSI
=================  =============================================  ==============================

    >>> to_v1({"io.max": "7:3 wbps=1048576 riops=100"})  # doctest: +NORMALIZE_WHITESPACE
    [('blkio.throttle.write_bps_device', '7:3 1048576'),
     ('blkio.throttle.read_iops_device', '7:3 100')]
    >>> to_v1({"io.max": "7:3 wbps=max"})
    [('blkio.throttle.write_bps_device', '7:3 0')]
    >>> files = {"blkio.throttle.read_bps_device": "", "blkio.throttle.read_iops_device": "",
    ...          "blkio.throttle.write_bps_device": "7:3 1048576\\n",
    ...          "blkio.throttle.write_iops_device": ""}
    >>> read_v1("io.max", files.get)
    '7:3 rbps=max wbps=1048576 riops=max wiops=max'
    >>> totals("7:3 rbytes=4096 wbytes=2097152 rios=1 wios=2 dbytes=0 dios=0\\n"
    ...        "8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\\n")
    {'rbytes': 8192, 'wbytes': 2097152, 'rios': 2, 'wios': 2}
    >>> v1_bytes = ("7:3 Read 4096\\n7:3 Write 2097152\\n7:3 Sync 0\\n7:3 Total 2101248\\n"
    ...             "Total 2101248\\n")
    >>> v1_ios = "7:3 Read 1\\n7:3 Write 2\\n7:3 Total 3\\nTotal 3\\n"
    >>> read_keyed_v1("io.stat", {"blkio.throttle.io_service_bytes": v1_bytes,
    ...                           "blkio.throttle.io_serviced": v1_ios}.get)
    {'rbytes': 4096, 'wbytes': 2097152, 'rios': 1, 'wios': 2}

A buffered write is throttled when it is written back, not when write(2) returns. v1 charges
I/O to the task that submits it: direct I/O and a container's own fsync(2) are held, but what
the kernel's flusher threads write back (later, or for a syncfs(2)) is charged to the root
cgroup and escapes (measured in lesson 16). cgroup v2's writeback accounting charges those
pages to the cgroup that dirtied them (on filesystems that support it, such as ext4), so v2
holds them too (cgroup-v2.rst, "Writeback").

See also: Documentation/admin-guide/cgroup-v2.rst ("IO", "Writeback"),
cgroup-v1/blkio-controller.rst; docker-run(1) `--device-write-bps`; losetup(8).
"""

from __future__ import annotations

import os
import stat

from pycontain.cgroups.controllers.field import Counter, Field
from pycontain.errors import SpecError
from pycontain.sizes import parse_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: cgroup v1 names this controller blkio
V1_NAME = "blkio"
#: io.max's keys -> the v1 file of each
RATES = {"rbps": "blkio.throttle.read_bps_device", "wbps": "blkio.throttle.write_bps_device",
         "riops": "blkio.throttle.read_iops_device", "wiops": "blkio.throttle.write_iops_device"}

#: v2 knob -> the v1 file that holds it (None: v1 has no equivalent, see V2_ONLY)
FILES: dict[str, str | None] = {
    "io.max": "blkio.throttle.write_bps_device",  # and the three other files of RATES
    "io.stat": "blkio.throttle.io_service_bytes",  # and blkio.throttle.io_serviced
    "io.pressure": None,
}

#: what the io controller counts (a monitor's series), summed over devices by `read_counter`
COUNTERS = (
    Counter("io_rbytes", "io.stat", "rbytes", "blkio.throttle.io_service_bytes", "Read"),
    Counter("io_wbytes", "io.stat", "wbytes", "blkio.throttle.io_service_bytes", "Write"),
)

V2_ONLY = {
    "io.pressure": ("cgroup v1 has no pressure stall information per cgroup (PSI, "
                    "Documentation/accounting/psi.rst): use cgroup v2, such as the lab VM"),
}


def device_number(path: object, parameter: str) -> str:
    """`MAJ:MIN` of the block device at `path` (its st_rdev), or a SpecError naming
    `parameter`: the kernel's io files name devices by number, people by path."""
    form = "'PATH:RATE' where PATH is a block device such as /dev/loop0"
    if not isinstance(path, str) or not path:
        raise SpecError(parameter, form, path, hint="give the device's path before the colon")
    try:
        st = os.stat(path)
    except OSError as e:
        raise SpecError(parameter, form, path,
                        hint=f"{path}: {os.strerror(e.errno or 0)}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise SpecError(parameter, form, path,
                        hint=f"{path} is not a block device: a file or directory lives on one "
                             "(`findmnt -T PATH` names it); io.max throttles devices "
                             "(lesson 16)")
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def _rate(bytes_per_s: bool) -> Callable[[object, str], str]:
    """A parser of docker's `PATH:RATE` into "MAJ:MIN N": bytes/s (a size: 1M, 512k) or IO/s."""
    what = "a size per second such as 1M, 10MB or 512k" if bytes_per_s else "a whole number >= 1"
    form = f"'PATH:RATE', a block device and {what} (e.g. /dev/loop0:" \
           f"{'10M' if bytes_per_s else '100'})"

    def parse(given: object, parameter: str) -> str:
        path, colon, rate = given.rpartition(":") if isinstance(given, str) else ("", "", "")
        if not colon or not rate.strip():
            raise SpecError(parameter, form, given)
        device = device_number(path, parameter)
        if bytes_per_s:
            value = parse_size(rate.strip(), parameter, unlimited=False)
        else:
            value = int(rate) if rate.strip().isdigit() else 0
        if not isinstance(value, int) or value < 1:
            raise SpecError(parameter, form, given, hint="a rate must be above 0: to lift a "
                            "cap, leave the option out")
        return f"{device} {value}"

    return parse


#: the limits this controller offers, one key of io.max each (`Limits`, `Spec`, `pycontain run`)
FIELDS = tuple(
    Field(f"io_max_{key}", "io.max", _rate(key.endswith("bps")), key=key,
          flag=f"--device-{direction}-{unit}", metavar="PATH:RATE",
          help=f"io.max {key}: cap {direction}s of the block device PATH to RATE "
               f"{'bytes/s (1M, 512k)' if unit == 'bps' else 'operations/s'} "
               "(one device per flag)",
          doc=f"io.max {key}, '/dev/DEVICE:RATE' ({unit})", lesson=16)
    for key, direction, unit in (("rbps", "read", "bps"), ("wbps", "write", "bps"),
                                 ("riops", "read", "iops"), ("wiops", "write", "iops")))


def check(values: Mapping[str, int | str], given: Mapping[str, object]) -> None:
    """Refuse rates on different devices: pycontain caps one device per container.

    >>> check({"io_max_rbps": "7:3 1", "io_max_wbps": "8:0 1"}, {"io_max_wbps": "/dev/sda:1"})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pycontain.errors.SpecError: `io_max_wbps` must be on the same device as io_max_rbps (7:3), ...
      hint: pycontain caps one block device per container
    """
    devices = {name: str(value).split()[0] for name, value in values.items()
               if name.startswith("io_max_")}
    first = next(iter(devices), None)
    for name, device in devices.items():
        if first is not None and device != devices[first]:
            raise SpecError(name, f"on the same device as {first} ({devices[first]})",
                            given[name], hint="pycontain caps one block device per container")


def to_v1(settings: Mapping[str, str]) -> list[tuple[str, str]]:
    """The v1 writes for v2 `settings`: each key of an io.max line into its own file."""
    writes = []
    for knob, value in settings.items():
        if FILES.get(knob, "") is None:
            raise ValueError(f"{knob} has no cgroup v1 equivalent: {V2_ONLY[knob]}")
        if knob != "io.max":
            raise ValueError(f"{knob} is read-only")
        device, *pairs = value.split()
        for key, number in (pair.split("=", 1) for pair in pairs):
            writes.append((RATES[key], f"{device} {'0' if number == 'max' else number}"))
    return writes


def read_v1(knob: str, read: Callable[[str], str]) -> str:
    """io.max as v2 shows it, one line per device, from v1's four files."""
    if knob != "io.max":
        return read(FILES[knob] or knob).strip()
    rates: dict[str, dict[str, str]] = {}
    for key, file in RATES.items():
        for line in read(file).splitlines():
            if line.strip():
                device, number = line.split()
                rates.setdefault(device, {})[key] = number
    return "\n".join(f"{device} " + " ".join(f"{key}={found.get(key, 'max')}" for key in RATES)
                     for device, found in sorted(rates.items()))


def totals(text: str) -> dict[str, int]:
    """v2's io.stat summed over devices: rbytes, wbytes, rios, wios."""
    sums = dict.fromkeys(("rbytes", "wbytes", "rios", "wios"), 0)
    for line in text.splitlines():
        for pair in line.split()[1:]:
            key, _, number = pair.partition("=")
            if key in sums:
                sums[key] += int(number)
    return sums


def _v1_sum(text: str, operation: str) -> int:
    """The sum over devices of one operation (Read, Write) in a v1 blkio.throttle.* stat file."""
    return sum(int(words[2]) for words in (line.split() for line in text.splitlines())
               if len(words) == 3 and words[1] == operation)


def read_keyed_v1(knob: str, read: Callable[[str], str]) -> dict[str, int]:
    """io.stat as `totals` gives it on v2, from v1's bytes and operations files."""
    if knob != "io.stat":
        raise ValueError(f"{knob} is not a keyed file of the io controller")
    done, count = read("blkio.throttle.io_service_bytes"), read("blkio.throttle.io_serviced")
    return {"rbytes": _v1_sum(done, "Read"), "wbytes": _v1_sum(done, "Write"),
            "rios": _v1_sum(count, "Read"), "wios": _v1_sum(count, "Write")}


def read_keyed_v2(knob: str, text: str) -> dict[str, int]:
    """io.stat's nested keys (per device) as one flat dict of totals, as on v1."""
    return totals(text)


def read_counter(text: str, key: str) -> int:
    """One counter summed over devices: `key` of v2's io.stat (`wbytes`), or an operation of
    v1's blkio.throttle.io_service_bytes (`Write`): how `observe.monitor.counters` reads the
    nested file on each version.

    >>> read_counter("7:3 rbytes=1 wbytes=2048 rios=1 wios=1\\n", "wbytes")
    2048
    >>> read_counter("7:3 Read 1\\n7:3 Write 2048\\nTotal 2049\\n", "Write")
    2048
    """
    return _v1_sum(text, key) if key in ("Read", "Write") else totals(text)[key]
