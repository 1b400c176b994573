"""Limits: what a container may use, parsed and checked before anything is created (lesson 12).

`Limits(memory_max="64M", pids_max=20)` holds sizes in bytes and counts as integers, or None
(not set), or "max" (explicitly unlimited). Every value is checked in userspace first: the
kernel is lenient (cgroup v1 takes `memory.limit_in_bytes=4096`, and a negative CPU quota as
"unlimited"), so a typo would become a surprise rather than an error.

    >>> parse_size("64M"), parse_size("1.5G"), parse_size("max"), parse_size(4096)
    (67108864, 1610612736, 'max', 4096)
    >>> Limits(memory_max="32M", pids_max="20").settings()
    {'memory.max': '33554432', 'pids.max': '20'}
    >>> Limits(memory_max="32M")
    Limits(memory_max='32 MiB')

See also: docker-run(1) (`--memory`, `--pids-limit`), the kernel's cgroup-v2.rst.
"""

from __future__ import annotations

import os

from pycontain.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pycontain.cgroups.layout import Layout

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
SIZE_FORM = "a size in bytes such as 64M, 1.5G, 65536 or 'max' (K, M, G, T are powers of 1024)"
#: Limits field -> the v2 knob it sets (the `pycontain run` flags for them live in cli)
FIELDS = {
    "memory_max": "memory.max",
    "memory_high": "memory.high",
    "memory_swap_max": "memory.swap.max",
    "pids_max": "pids.max",
}
#: the least memory.max or memory.high accepted, as `docker run --memory` (6 MiB): the kernel
#: charges the container's processes for their own pages, page tables and kernel stacks, so
#: with 64 KiB even /bin/true is OOM-killed as it starts (measured on cgroup v1), and a real
#: program needs megabytes; the kernel itself takes any value
MIN_MEMORY_BYTES = 6 << 20
MIN_MEMORY_FORM = "a size of at least 6M (e.g. 64M, 1G), or 'max'"


def parse_size(text: str | int, parameter: str = "size", *, zero: bool = False) -> int | str:
    """Bytes from a human size: `64M`, `1.5G`, `64MiB`, `512k`, `4096`, or the string `max`.

    Raises:
        SpecError: not a size, negative, fractional bytes, or 0 (unless `zero`).
    """
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise SpecError(parameter, SIZE_FORM, text)
    if isinstance(text, int):
        number, unit = float(text), ""
    else:
        word = text.strip()
        if word == "max":
            return "max"
        core = word.upper().removesuffix("B").removesuffix("I")
        unit = core[-1:] if core[-1:] in _UNITS else ""
        try:
            number = float(core[:-1] if unit else core)
        except ValueError:
            raise SpecError(parameter, SIZE_FORM, text) from None
        if number != number or number in (float("inf"), float("-inf")):  # nan, inf
            raise SpecError(parameter, SIZE_FORM, text)
    size = number * _UNITS[unit]
    if size < 0 or (size == 0 and not zero):
        raise SpecError(parameter, "a positive " + SIZE_FORM.removeprefix("a "), text,
                        hint="0 bytes would leave the container no memory at all" if size == 0
                        else None)
    if size != int(size):
        raise SpecError(parameter, SIZE_FORM + ", a whole number of bytes", text,
                        hint=f"{text} is {size} bytes")
    return int(size)


def parse_count(value: str | int, parameter: str) -> int | str:
    """A positive whole number of processes, or `max`."""
    if isinstance(value, str) and value.strip() == "max":
        return "max"
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(parameter, "a whole number of processes >= 1, or 'max'", value,
                        hint="pids.max counts tasks (processes and threads) in the cgroup")
    return value


def _at_least_the_minimum(name: str, given: object, size: int | str | None) -> None:
    """Refuse a memory.max or memory.high below MIN_MEMORY_BYTES, saying what it would do."""
    if not isinstance(size, int) or size >= MIN_MEMORY_BYTES:
        return
    bare = f"a bare number counts bytes (did you mean {given}M?); " if (
        isinstance(given, str) and given.strip().isdigit()) else ""
    fate = "OOM-killed" if name == "memory_max" else "throttled to a crawl"
    raise SpecError(name, MIN_MEMORY_FORM, given,
                    hint=f"{given} is {mib(size)}; {bare}the container's processes are charged "
                         f"for their own pages, so with too little even /bin/true is {fate} as "
                         "it starts: like Docker, pycontain takes 6 MiB or more (lesson 14)")


def mib(value: int | str | None) -> str:
    """
    >>> mib(32 << 20), mib(1536), mib("max")
    ('32 MiB', '1.5 KiB', 'max')
    """
    if not isinstance(value, int):
        return str(value)
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        scale = _UNITS[unit[0]]
        if value >= scale:
            return f"{value / scale:g} {unit}"
    return f"{value} B"


class Limits:
    """Resource limits for a container, each as the v2 knob it sets.

    Args:
        memory_max: memory.max, the hard limit: past it, the OOM killer (lesson 14).
        memory_high: memory.high, the throttle: past it, the cgroup is slowed (v2 only).
        memory_swap_max: memory.swap.max, swap the cgroup may use (0: none).
        pids_max: pids.max, how many tasks the cgroup may hold (lesson 13).
    """

    __slots__ = tuple(FIELDS)
    memory_max: int | str | None
    memory_high: int | str | None
    memory_swap_max: int | str | None
    pids_max: int | str | None

    def __init__(self, memory_max: str | int | None = None, memory_high: str | int | None = None,
                 memory_swap_max: str | int | None = None,
                 pids_max: str | int | None = None) -> None:
        given = {"memory_max": memory_max, "memory_high": memory_high,
                 "memory_swap_max": memory_swap_max}
        for name, value in given.items():
            parsed = None if value is None else parse_size(
                value, name, zero=name == "memory_swap_max")
            if name != "memory_swap_max":
                _at_least_the_minimum(name, value, parsed)
            object.__setattr__(self, name, parsed)
        object.__setattr__(self, "pids_max",
                           None if pids_max is None else parse_count(pids_max, "pids_max"))
        high, top = self.memory_high, self.memory_max
        if isinstance(high, int) and (isinstance(top, int) and high > top):
            raise SpecError("memory_high", f"at most memory_max ({mib(top)})", memory_high,
                            hint="memory.high throttles below the hard limit memory.max; "
                                 "above it, it would never act")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Limits are read-only; make new ones")

    def __eq__(self, other: object) -> bool:
        return type(other) is Limits and self.settings() == other.settings()

    def __hash__(self) -> int:
        return hash(tuple(self.settings().items()))

    def __bool__(self) -> bool:
        return bool(self.settings())

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={mib(v)!r}" if f.startswith("memory") else f"{f}={v!r}"
                          for f in FIELDS if (v := getattr(self, f)) is not None)
        return f"Limits({shown})"

    def settings(self) -> dict[str, str]:
        """The v2 knobs and the values to write: {'memory.max': '33554432', ...}."""
        return {FIELDS[f]: str(v) for f in FIELDS if (v := getattr(self, f)) is not None}

    def controllers(self) -> tuple[str, ...]:
        """The controllers these limits need, plus memory and pids to report on the container."""
        return ("memory", "pids")

    def check_host(self, layout: Layout) -> None:
        """Refuse, before anything is created, what this machine's cgroups cannot do."""
        from pycontain.cgroups import controllers

        for field, knob in FIELDS.items():
            if getattr(self, field) is None:
                continue
            controller = controllers.controller_of(knob)
            version = layout.version(controller)
            if version is None:
                raise SpecError(field, f"used only where the {controller} controller is "
                                "mounted", getattr(self, field),
                                hint=f"this machine has no {controller} hierarchy (lesson 12)")
            if version == 1 and controllers.v1_file(knob) is None:
                raise SpecError(field, f"used only on cgroup v2 ({knob}); the {controller} "
                                "controller here is cgroup v1", mib(getattr(self, field)),
                                hint=f"{controllers.v2_only(knob)} (lesson 12)")
        if version_of_memory(layout) == 1 and self.memory_swap_max is not None:
            if self.memory_max in (None, "max") and self.memory_swap_max != "max":
                raise SpecError("memory_swap_max", "given with a memory_max on cgroup v1",
                                self.memory_swap_max,
                                hint="v1 has no swap-only limit: memory.memsw.limit_in_bytes "
                                     "caps memory + swap, so it is set to memory_max + "
                                     "memory_swap_max (lesson 14)")
            memory = layout.hierarchy("memory")
            if memory is None or not os.path.exists(
                    os.path.join(memory.own_dir, "memory.memsw.limit_in_bytes")):
                raise SpecError("memory_swap_max", "used only where swap is accounted",
                                self.memory_swap_max,
                                hint="this kernel has no memory.memsw.* files: boot it with "
                                     "swapaccount=1, or use cgroup v2 (lesson 14)")


def version_of_memory(layout: Layout) -> int | None:
    return layout.version("memory")
