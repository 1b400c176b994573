"""cgroup controllers: the v2 names the lessons speak, and their cgroup v1 spellings.

Each module here is a pure translation, no I/O: which file holds a knob on each version, and how
a value changes on the way. The managers (`cgroups.v1`, `cgroups.v2`) do the I/O and ask this
package. Each module also declares the limits it offers, its `FIELDS` (see `field`): `Limits`,
the keyword options of `Spec` and `run()`, and the flags of `pycontain run` derive from them.
A new controller (io, cpuset, freezer) is one more module in `MODULES`; nothing else
changes.

A controller module holds: `FILES` (v2 knob -> v1 file, or None), `to_v1(settings)`, and may
hold `V2_ONLY` (why a knob has no v1 equivalent), `KEYED`, `read_v1(knob, read)`,
`read_keyed_v1(knob, read)`, `to_v2(settings)` (a v1 knob it offers, such as docker's
`cpu.shares`, written the v2 way), `V1_COMPANIONS` (v1 hierarchies its files also live in),
`FIELDS`, `COUNTERS` (what it counts, see `field.Counter`; `read_counter(text, key)` when a
counter's file is nested, io.stat), `check(values, given)` (the fields' relations to each
other), `check_host(values, version, exists)` (what this machine's controller cannot do) and
`check_parent(values, read)` (what the parent cgroup cannot hand out).

Vocabulary: a *knob* is a cgroup file named the v2 way (`memory.max`); `v1_file(knob)` is the
file cgroup v1 keeps it in (`memory.limit_in_bytes`), or None when v1 has no equivalent.

    >>> v1_file("memory.max"), v1_file("pids.max"), v1_file("memory.high")
    ('memory.limit_in_bytes', 'pids.max', None)
    >>> controller_of("memory.peak")
    'memory'
    >>> v1_file("cgroup.freeze")  # a core file of v2, v1's freezer controller
    'freezer.state'
    >>> to_v1({"memory.max": "33554432", "pids.max": "max"})
    [('memory', 'memory.limit_in_bytes', '33554432'), ('pids', 'pids.max', 'max')]
    >>> parse_keyed("max 3\\nmax.imposed 0\\n")
    {'max': 3, 'max.imposed': 0}
    >>> [field.name for field in fields()]  # doctest: +NORMALIZE_WHITESPACE
    ['memory_max', 'memory_high', 'memory_swap_max', 'pids_max', 'cpu_max', 'cpu_weight',
     'cpu_shares', 'io_max_rbps', 'io_max_wbps', 'io_max_riops', 'io_max_wiops', 'cpuset_cpus',
     'cpuset_mems']
    >>> to_v2({"memory.max": "33554432", "cpu.shares": "1024"})
    {'memory.max': '33554432', 'cpu.weight': '39'}
    >>> v1_companions(("memory", "cpu"))
    ('cpuacct',)

See also: cgroups(7); the kernel's Documentation/admin-guide/cgroup-v2.rst and cgroup-v1/.
"""

from __future__ import annotations

from pycontain.cgroups.controllers import cpu, cpuset, freezer, io, memory, pids

TYPE_CHECKING = False  # `pycontain run` imports this package for its flags: stay lean
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import ModuleType

    from pycontain.cgroups.controllers.field import Counter, Field

#: controller name -> its translation module, in the order of their fields (and flags)
MODULES: dict[str, ModuleType] = {"memory": memory, "pids": pids,  # lessons 14, 13
                                  "cpu": cpu,  # lesson 15
                                  "io": io,  # lesson 16; blkio on v1
                                  "cpuset": cpuset,  # lesson 18
                                  "freezer": freezer}  # lesson 19; its knobs are cgroup.*


def fields() -> list[Field]:
    """Every limit the controllers offer, in `MODULES` order (read when `limits`, `spec` and
    `cli` are imported)."""
    return [field for module in MODULES.values() for field in getattr(module, "FIELDS", ())]


def counters() -> list[Counter]:
    """Every number the controllers count (`COUNTERS`), in `MODULES` order: a monitor's series.

    >>> [counter.name for counter in counters()]  # doctest: +NORMALIZE_WHITESPACE
    ['memory_current', 'memory_oom_kill', 'pids_current', 'pids_refused', 'cpu_usage_usec',
     'cpu_nr_throttled', 'cpu_throttled_usec', 'io_rbytes', 'io_wbytes']
    """
    return [counter for module in MODULES.values() for counter in getattr(module, "COUNTERS", ())]


def v1_name(controller: str) -> str:
    """The name cgroup v1 gives `controller` (io: blkio; the others keep theirs).

    >>> v1_name("io"), v1_name("memory")
    ('blkio', 'memory')
    """
    return getattr(MODULES.get(controller), "V1_NAME", controller)


def keyed_v2(knob: str, text: str) -> dict[str, int]:
    """A v2 keyed file as a dict: flat (`memory.events`), or as its module reads a nested one
    (io.stat: totals over devices)."""
    convert: Callable[[str, str], dict[str, int]] | None = getattr(
        MODULES.get(controller_of(knob)), "read_keyed_v2", None)
    return convert(knob, text) if convert else parse_keyed(text)


def controller_of(knob: str) -> str:
    """The controller a knob belongs to: the part of its name before the first dot."""
    return knob.split(".", 1)[0]


def _module(knob: str) -> ModuleType:
    """The module of `knob`'s controller, or the one that lists it (the freezer's cgroup.freeze:
    a core file on v2, the freezer controller's freezer.state on v1)."""
    module = MODULES.get(controller_of(knob))
    if module is None:
        module = next((m for m in MODULES.values() if knob in m.FILES), None)
    if module is None:
        raise ValueError(f"no controller module for {knob!r} (known: {', '.join(MODULES)})")
    return module


def v1_file(knob: str) -> str | None:
    """Where cgroup v1 keeps `knob`, or None when it has no equivalent (see `v2_only`)."""
    files: dict[str, str | None] = _module(knob).FILES
    if knob not in files:
        raise ValueError(f"unknown knob {knob!r}; known: {', '.join(files)}")
    return files[knob]


def v2_only(knob: str) -> str | None:
    """Why `knob` has no cgroup v1 equivalent, or None when it has one."""
    reasons: dict[str, str] = getattr(_module(knob), "V2_ONLY", {})
    return reasons.get(knob)


def to_v1(settings: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """The v1 writes, in order, for v2 `settings`: (controller, v1 file, value) triples.

    Raises:
        ValueError: a knob has no v1 equivalent, or cannot be expressed without another.
    """
    writes = []
    for name, module in MODULES.items():
        mine = {k: v for k, v in settings.items() if controller_of(k) == name}
        if mine:
            writes += [(name, file, value) for file, value in module.to_v1(mine)]
    unknown = {controller_of(k) for k in settings} - set(MODULES)
    if unknown:
        raise ValueError(f"no controller module for {sorted(unknown)}")
    return writes


def to_v2(settings: Mapping[str, str]) -> dict[str, str]:
    """The v2 writes for `settings`: the same, but for a v1 knob a controller offers (docker's
    `cpu.shares`), which its module's `to_v2` turns into its v2 knob."""
    writes: dict[str, str] = {}
    for knob, value in settings.items():
        convert = getattr(MODULES.get(controller_of(knob)), "to_v2", None)
        writes.update(convert({knob: value}) if convert else {knob: value})
    return writes


def v1_companions(wanted: tuple[str, ...]) -> tuple[str, ...]:
    """The further v1 hierarchies the `wanted` controllers read from (cpu: cpuacct's usage)."""
    return tuple(dict.fromkeys(c for name in wanted if name in MODULES
                               for c in getattr(MODULES[name], "V1_COMPANIONS", ())))


def read_v1(knob: str, read: Callable[[str], str]) -> str:
    """`knob` as v2 would show it, read from v1 files: `read(v1 file)` returns its text.

    >>> read_v1("pids.max", {"pids.max": "max\\n"}.get)
    'max'
    """
    convert: Callable[[str, Callable[[str], str]], str] | None = getattr(
        _module(knob), "read_v1", None)
    if convert:
        return convert(knob, read)
    return read(v1_file(knob) or knob).strip()


def keyed_from_v1(knob: str, read: Callable[[str], str]) -> dict[str, int]:
    """A keyed v2 file (`memory.events`) rebuilt from v1 files; `read(v1 file)` returns text."""
    convert: Callable[[str, Callable[[str], str]], dict[str, int]] | None = getattr(
        _module(knob), "read_keyed_v1", None)
    if convert:
        return convert(knob, read)
    sources: dict[str, dict[str, tuple[str, str | None]]] = getattr(_module(knob), "KEYED", {})
    if knob not in sources:
        return parse_keyed(read(v1_file(knob) or knob))
    found = {}
    for key, (file, field) in sources[knob].items():
        text = read(file)
        found[key] = int(text) if field is None else parse_keyed(text)[field]
    return found


def parse_keyed(text: str) -> dict[str, int]:
    """Parse a flat keyed file ("key value" per line), such as memory.events or pids.events."""
    pairs = (line.split() for line in text.splitlines() if line.strip())
    return {key: int(value) for key, value, *_ in pairs}
