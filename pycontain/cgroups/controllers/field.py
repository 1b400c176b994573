"""A limit a controller offers, declared once: a `Field` (lessons 12-14).

Each controller module lists its fields in `FIELDS`. From them come the fields of `Limits`
(`memory_max`), the keyword options of `Spec` and `run()` (`pycontain.run(..., pids_max=20)`),
and the flags of `pycontain run` (`--pids-limit`), which the CLI's errors name. A field says:

- `name`, the Python name, the v2 knob with `_` for `.` (`memory_max`: `memory.max`);
- `knob`, the cgroup v2 file it sets (its v1 spelling is the module's `FILES[knob]`);
- `parse`, which turns what a caller gives (`"64M"`, `20`, `"max"`) into the value kept, or
  raises a `SpecError` naming the parameter: `size(...)` or `count(...)` here, or a function
  of the controller's own;
- `flag`, `metavar`, `help`: the `pycontain run` option, its value's name and its help line;
- `doc`: one line for the field in `Limits`' documentation; `lesson`: the lesson that teaches it.

    >>> pids_max = Field("pids_max", "pids.max", count("processes"), flag="--pids-limit",
    ...                  metavar="N", help="pids.max", doc="tasks", lesson=13)
    >>> pids_max.parse("20", "pids_max"), pids_max.parse("max", "pids_max"), pids_max.shown(20)
    (20, 'max', 20)
    >>> memory_max = Field("memory_max", "memory.max", size(minimum="6M", why="…"),
    ...                    flag="--memory", metavar="SIZE", help="", doc="", lesson=14)
    >>> memory_max.parse("64M", "memory_max"), memory_max.shown(64 << 20)
    (67108864, '64 MiB')

A controller also declares the usage it counts, its `COUNTERS`: a `Counter` names one number
the kernel keeps (cpu time, bytes written) and where each version keeps it, so that a monitor
or a stats table reads the same series on v1 and v2 (`observe.monitor.counters`).

    >>> Counter("cpu_usage_usec", "cpu.stat", "usage_usec", "cpuacct.usage", None, 1 / 1000)
    Counter('cpu_usage_usec', 'cpu.stat' usage_usec; v1 'cpuacct.usage' x0.001)

No dataclasses or typing: `pycontain run` reads these declarations before it starts a container.
"""

from __future__ import annotations

from collections import namedtuple

from pycontain.errors import SpecError
from pycontain.sizes import format_size, parse_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    #: a field's parser: (what the caller gave, the parameter to name in an error) -> the value
    Parser = Callable[[object, str], int | str]


class Field:
    """One limit of one controller: a Limits field, a Spec option and a `pycontain run` flag."""

    __slots__ = ("name", "knob", "parse", "flag", "metavar", "help", "doc", "lesson", "key")
    name: str
    knob: str
    parse: Parser
    flag: str
    metavar: str
    help: str
    doc: str
    lesson: int
    key: str | None

    def __init__(self, name: str, knob: str, parse: Parser, *, flag: str, metavar: str,
                 help: str, doc: str, lesson: int, key: str | None = None) -> None:
        # a field with a `key` sets one key of a nested keyed file (io.max's wbps), its value
        # "DEVICE NUMBER": Limits.settings() writes "DEVICE key=NUMBER ..." (lesson 16)
        named = knob.replace(".", "_") + (f"_{key}" if key else "")
        if name != named:
            raise ValueError(f"a field is named after its knob: {knob} is {named}, not {name}")
        if not flag.startswith("--"):
            raise ValueError(f"a field's flag is a long option such as --memory, not {flag!r}")
        for slot, value in zip(self.__slots__, (name, knob, parse, flag, metavar, help, doc,
                                               lesson, key), strict=True):
            object.__setattr__(self, slot, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Field is read-only")

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.knob!r}, flag={self.flag!r})"

    @property
    def controller(self) -> str:
        """The controller the knob belongs to: the part of its name before the first dot."""
        return self.knob.split(".", 1)[0]

    def shown(self, value: int | str) -> object:
        """The value as `repr(Limits(...))` shows it: sizes in MiB, counts as they are."""
        return format_size(value) if getattr(self.parse, "is_size", False) else value


def size(*, minimum: str = "1", zero: bool = False, why: str = "") -> Parser:
    """A parser of sizes in bytes (the grammar of `pycontain.sizes`), or `max`.

    `minimum`: the least size accepted, itself a size (`"6M"`); below it the error's hint says
    `why`. `zero`: 0 is accepted (`memory.swap.max=0`: no swap), whatever `minimum` says.
    """
    least = int(parse_size(minimum, "minimum", zero=True, unlimited=False))
    form = f"a size of at least {minimum} (e.g. 64M, 1G), or 'max'"

    def parse(given: object, parameter: str) -> int | str:
        value = parse_size(given, parameter, zero=zero)  # type: ignore[arg-type]
        if not isinstance(value, int) or value >= least or (zero and value == 0):
            return value
        bare = f"a bare number counts bytes (did you mean {given}M?); " if (
            isinstance(given, str) and given.strip().isdigit()) else ""
        raise SpecError(parameter, form, given,
                        hint=f"{given} is {format_size(value)}; {bare}{why}")

    parse.is_size = True  # type: ignore[attr-defined]
    return parse


def count(what: str, *, hint: str | None = None) -> Parser:
    """A parser of positive whole numbers of `what` (processes), or `max`."""
    def parse(given: object, parameter: str) -> int | str:
        value = given
        if isinstance(value, str) and value.strip() == "max":
            return "max"
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(parameter, f"a whole number of {what} >= 1, or 'max'", given,
                            hint=hint)
        return value

    return parse


class Counter(namedtuple("Counter", "name file key v1_file v1_key v1_scale", defaults=(1,))):
    """One number a controller counts: the series' `name`; the v2 `file` and, for a keyed file,
    its `key` (None: the file is the number); where v1 keeps it (`v1_file`, `v1_key`), and the
    factor that turns v1's unit into v2's (`v1_scale`: ns to µs is 1/1000). `v1_file` None: v1
    does not count it."""

    __slots__ = ()

    def __repr__(self) -> str:
        v2 = f"{self.file!r}" + (f" {self.key}" if self.key else "")
        v1 = "none" if self.v1_file is None else (
            f"{self.v1_file!r}" + (f" {self.v1_key}" if self.v1_key else "")
            + (f" x{self.v1_scale:g}" if self.v1_scale != 1 else ""))
        return f"Counter({self.name!r}, {v2}; v1 {v1})"
