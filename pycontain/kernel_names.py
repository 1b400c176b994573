"""Kernel names: numbers the kernel takes, printed the way the C headers spell them.

unshare(2) takes a number, 537001984, but a person reads `CLONE_NEWNS|CLONE_NEWPID`. A class of
`Flag`s (bits that combine) or `Option`s (one value of several) declares its constants as the
header does, and each becomes an instance of the class: still the int the kernel takes, shown by
its name in an error, a trace or a notebook:

    >>> class CloneFlag(Flag):
    ...     CLONE_NEWNS = 0x00020000
    ...     CLONE_NEWPID = 0x20000000
    >>> CloneFlag.CLONE_NEWNS | CloneFlag.CLONE_NEWPID
    <CloneFlag.CLONE_NEWNS|CLONE_NEWPID: 537001984>

Why not `enum.IntFlag`: the kernel's names are imported by every `pycontain` command, every
`pycontain-oci` verb and every container's first process, and importing `enum` and building its
classes cost 4-5 ms of each start (bench/README.md), about what separates a start from runc's.
These are plain int subclasses: `__init_subclass__` turns the class body's int constants into
members, and a two-method metaclass lets the class be iterated, as an enum could be.

As in Python 3.11's IntFlag, `str()` and f-strings give the number (a flag written into a kernel
file stays a number) and `repr()` the names.

See also: pycontain.syscalls (the kernel's flags and options), pycontain.errors (`render_arg`).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs milliseconds at a start; only checkers need it
    from collections.abc import Iterator
    from typing import Any, Self


class _Table(type):
    """The class of a class of constants: iterating it gives its members in declaration order."""

    def __iter__(cls) -> Iterator[Any]:
        return iter(cls._members.values())  # type: ignore[attr-defined]

    def __len__(cls) -> int:
        return len(cls._members)  # type: ignore[attr-defined]


class Constant(int, metaclass=_Table):
    """An int the kernel takes, with its name: the common base of `Flag` and `Option`.

    A subclass's public int class attributes are its members, in declaration order; a second
    name for a value is the first name's member (shown, and iterated, by the first name).
    """

    __slots__ = ()
    _members: dict[str, Any]  # name -> member, in declaration order (first names only)
    _names: dict[int, str]  # value -> its first name

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._members, cls._names = {}, {}
        for name, value in list(vars(cls).items()):
            if type(value) is int and not name.startswith("_"):
                if value in cls._names:  # a second name for a value: the same member
                    setattr(cls, name, cls._members[cls._names[value]])
                    continue
                member = int.__new__(cls, value)
                setattr(cls, name, member)
                cls._members[name] = member
                cls._names[value] = name

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def value(self) -> int:
        """The number itself, as a plain int."""
        return int(self)

    __str__ = int.__repr__  # the number: str(), f-strings and format() are int's

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name}: {int(self)}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (int(self),)  # unpickled through the class: the member itself


class Flag(Constant):
    """Bits that combine with `|`, `&` and `^`, giving the same type; `~` complements within the
    bits the class names (to clear a bit of a word that may hold others: `word & ~int(FLAG)`).
    Its name is its bits' names joined by `|`, in declaration order, with any bits the class does
    not name in hex, as `flag_names` renders them; 0 is '0'.

    >>> class MountFlag(Flag):
    ...     MS_BIND = 4096
    ...     MS_REC = 16384
    >>> MountFlag.MS_BIND | MountFlag.MS_REC
    <MountFlag.MS_BIND|MS_REC: 20480>
    >>> MountFlag(4096 | 1).name, MountFlag(0), ~MountFlag.MS_BIND
    ('MS_BIND|0x1', <MountFlag: 0>, <MountFlag.MS_REC: 16384>)
    >>> list(MountFlag)
    [<MountFlag.MS_BIND: 4096>, <MountFlag.MS_REC: 16384>]
    """

    __slots__ = ()
    _all: int  # every bit the class names

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._all = 0
        for value in cls._names:
            cls._all |= value

    def __new__(cls, value: int = 0) -> Self:
        if not isinstance(value, int):
            raise ValueError(f"{value!r} is not a valid {cls.__name__}: flags are ints")
        name = cls._names.get(value)
        return cls._members[name] if name is not None else int.__new__(cls, value)

    @property
    def name(self) -> str:
        """The kernel's spelling: 'MS_BIND|MS_REC', 'MS_BIND|0x1', '0'."""
        value = int(self)
        if value in self._names:
            return self._names[value]
        names, rest = [], value
        for bits, name in self._names.items():  # plain ints, in declaration order
            if bits and value & bits == bits:
                names.append(name)
                rest &= ~bits
        if rest:
            names.append(hex(rest))
        return "|".join(names) if names else "0"

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: 0>" if not self else super().__repr__()

    def __or__(self, other: object) -> Self:
        if not isinstance(other, int):
            return NotImplemented
        return type(self)(int(self) | other)

    def __and__(self, other: object) -> Self:
        if not isinstance(other, int):
            return NotImplemented
        return type(self)(int(self) & other)

    def __xor__(self, other: object) -> Self:
        if not isinstance(other, int):
            return NotImplemented
        return type(self)(int(self) ^ other)

    __ror__, __rand__, __rxor__ = __or__, __and__, __xor__

    def __invert__(self) -> Self:
        return type(self)(self._all & ~int(self))


class Option(Constant):
    """One value of several (a prctl(2) option, an ioctl(2) request): its name is the one the
    class declares for it, and a value it does not declare is refused, as an enum refuses it.

    >>> class PrctlOption(Option):
    ...     PR_SET_PDEATHSIG = 1
    >>> PrctlOption(1), PrctlOption(1).name, PrctlOption(1) is PrctlOption.PR_SET_PDEATHSIG
    (<PrctlOption.PR_SET_PDEATHSIG: 1>, 'PR_SET_PDEATHSIG', True)
    >>> PrctlOption(7)
    Traceback (most recent call last):
    ValueError: 7 is not a valid PrctlOption
    """

    __slots__ = ()

    def __new__(cls, value: int) -> Self:
        name = cls._names.get(value) if isinstance(value, int) else None
        if name is None:
            raise ValueError(f"{value!r} is not a valid {cls.__name__}")
        return cls._members[name]

    @property
    def name(self) -> str:
        return self._names[int(self)]
