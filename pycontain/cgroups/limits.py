"""Limits: what a container may use, parsed and checked before anything is created (lesson 12).

`Limits(memory_max="64M", pids_max=20)` holds sizes in bytes and counts as integers, or None
(not set), or "max" (explicitly unlimited). Every value is checked in userspace first: the
kernel is lenient (cgroup v1 takes `memory.limit_in_bytes=4096`, and a negative CPU quota as
"unlimited"), so a typo would become a surprise rather than an error.

The fields are those the controller modules declare (`cgroups.controllers`, each module's
`FIELDS`): this module knows no controller by name.

    >>> Limits(memory_max="32M", pids_max="20").settings()
    {'memory.max': '33554432', 'pids.max': '20'}
    >>> Limits(memory_max="32M")
    Limits(memory_max='32 MiB')
    >>> Limits(pids_max=20).controllers()
    ('memory', 'pids')

See also: docker-run(1) (`--memory`, `--pids-limit`), the kernel's cgroup-v2.rst.
"""

from __future__ import annotations

import os

from pycontain.cgroups import controllers
from pycontain.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pycontain.cgroups.layout import Layout

#: Limits field -> its declaration (`controllers.field.Field`), in the controllers' order
FIELDS = {field.name: field for field in controllers.fields()}
#: the controllers every container with limits gets, whatever it limits: the runtime reports
#: on them (memory.events' oom_kill, memory.peak; pids.current)
REPORTED = ("memory", "pids")


class Limits:
    """Resource limits for a container, each as the v2 knob it sets."""

    __doc__ = (f"{__doc__}\n\n    Args:\n" + "".join(
        f"        {f.name}: {f.doc} (lesson {f.lesson}).\n" for f in FIELDS.values()))
    __slots__ = tuple(FIELDS)

    def __init__(self, **given: str | float | None) -> None:
        for name in given:
            if name not in FIELDS:
                raise TypeError(f"Limits() got an unexpected keyword argument {name!r}; its "
                                f"fields are {', '.join(FIELDS)}")
        values = {}
        for name, field in FIELDS.items():
            value = given.get(name)
            parsed = None if value is None else field.parse(value, name)
            object.__setattr__(self, name, parsed)
            if parsed is not None:
                values[name] = parsed
        for controller in controllers.MODULES.values():
            check = getattr(controller, "check", None)
            if check:
                check(values, given)

    if TYPE_CHECKING:  # the fields, each set in __init__ (None: not set)
        def __getattr__(self, name: str) -> int | str | None: ...

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Limits are read-only; make new ones")

    def __eq__(self, other: object) -> bool:
        return type(other) is Limits and self.settings() == other.settings()

    def __hash__(self) -> int:
        return hash(tuple(self.settings().items()))

    def __bool__(self) -> bool:
        return bool(self.settings())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={field.shown(value)!r}" for name, field in FIELDS.items()
                          if (value := getattr(self, name)) is not None)
        return f"Limits({shown})"

    def values(self) -> dict[str, int | str]:
        """The fields set: {'memory_max': 33554432, ...}."""
        return {name: value for name in FIELDS if (value := getattr(self, name)) is not None}

    def settings(self) -> dict[str, str]:
        """The v2 knobs and the values to write: {'memory.max': '33554432', ...}."""
        found: dict[str, str] = {}
        for name, value in self.values().items():
            field = FIELDS[name]
            if field.key:  # one key of a nested keyed file: "7:3 wbps=1048576 ..." (io.max)
                device, number = str(value).split()
                found[field.knob] = f"{found.get(field.knob, device)} {field.key}={number}"
            else:
                found[field.knob] = str(value)
        return found

    def controllers(self) -> tuple[str, ...]:
        """The controllers these limits need, plus memory and pids to report on the container."""
        return tuple(dict.fromkeys([*REPORTED, *(FIELDS[name].controller
                                                 for name in self.values())]))

    def check_host(self, layout: Layout) -> None:
        """Refuse, before anything is created, what this machine's cgroups cannot do."""
        values = self.values()
        for name, value in values.items():
            field = FIELDS[name]
            controller, knob = field.controller, field.knob
            version = layout.version(controller)
            if version is None:
                raise SpecError(name, f"used only where the {controller} controller is "
                                "mounted", value,
                                hint=f"this machine has no {controller} hierarchy (lesson 12)")
            if version == 1 and controllers.v1_file(knob) is None:
                raise SpecError(name, f"used only on cgroup v2 ({knob}); the {controller} "
                                "controller here is cgroup v1", field.shown(value),
                                hint=f"{controllers.v2_only(knob)} (lesson {field.lesson})")
        for controller, module in controllers.MODULES.items():
            check = getattr(module, "check_host", None)
            version = layout.version(controller)
            if check and version is not None:
                hierarchy = layout.hierarchy(controller)
                check(values, version, lambda file, h=hierarchy: h is not None and
                      os.path.exists(os.path.join(h.own_dir, file)))
        for controller, module in controllers.MODULES.items():
            check_parent = getattr(module, "check_parent", None)
            if check_parent and layout.version(controller) is not None:
                check_parent(values, _parent_reader(layout, controller))


def _parent_reader(layout: Layout, controller: str) -> Callable[[str], str]:
    """`read(knob)`: the value of a v2 knob in the cgroup pycontain makes its cgroups in (v1:
    translated), or "" where it has none."""
    from pycontain.cgroups.files import _read_text
    from pycontain.cgroups.layout import home

    hierarchy = layout.hierarchy(controller)
    assert hierarchy is not None
    where = home(hierarchy)

    def read(knob: str) -> str:
        file = knob if hierarchy.version == 2 else controllers.v1_file(knob) or knob
        return _read_text(os.path.join(where, file)).strip()

    return read
