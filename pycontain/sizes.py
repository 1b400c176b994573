"""Sizes in bytes: the one grammar pycontain reads them in, and how it writes them (lessons 12-14).

A size is a number of bytes with an optional unit, K, M, G or T, each a power of 1024 (as
docker-run(1) and the kernel's own `memparse()` count them), with an optional `i`/`B`: `64M`,
`64MiB`, `1.5G`, `512k`, `4096`. A limit may also be `max`, the cgroup v2 word for none.
`memory.max` and `--memory` read sizes through `parse_size`, and so do the workloads' own
`--step` and `--max`.

    >>> parse_size("64M"), parse_size("1.5G"), parse_size("64MiB"), parse_size("512k")
    (67108864, 1610612736, 67108864, 524288)
    >>> parse_size("4096"), parse_size(4096), parse_size("max")
    (4096, 4096, 'max')
    >>> format_size(32 << 20), format_size(1536), format_size(100), format_size("max")
    ('32 MiB', '1.5 KiB', '100 B', 'max')
    >>> parse_size("max", "--step", unlimited=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pycontain.errors.SpecError: `--step` must be a size in bytes such as 64M, ..., got 'max'

Imports nothing at start-up: the workloads use it inside containers, and they start fast.
"""

from __future__ import annotations

TYPE_CHECKING = False  # `typing` costs milliseconds at start-up; only checkers need it
if TYPE_CHECKING:
    from typing import NoReturn

#: the units, powers of 1024
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
#: the accepted form, as an error states it
FORM = "a size in bytes such as 64M, 1.5G, 65536 or 'max' (K, M, G, T are powers of 1024)"
#: the accepted form where `max` is not a size
FORM_WITHOUT_MAX = "a size in bytes such as 64M, 1.5G or 65536 (K, M, G, T are powers of 1024)"


def _refuse(parameter: str, accepted: str, given: object, hint: str | None = None) -> NoReturn:
    from pycontain.errors import SpecError  # only on an error: the workloads import nothing

    raise SpecError(parameter, accepted, given, hint=hint)


def parse_size(text: str | int, parameter: str = "size", *, zero: bool = False,
               unlimited: bool = True) -> int | str:
    """Bytes from a human size: `64M`, `1.5G`, `64MiB`, `512k`, `4096`; or the string `max`.

    Args:
        parameter: what to name in an error (`memory_max`, `--step`).
        zero: accept 0 bytes (`memory.swap.max=0`: no swap).
        unlimited: accept `max` (returned as the string "max").

    Raises:
        SpecError: not a size, negative, fractional bytes, 0 (unless `zero`), or `max`
            (unless `unlimited`).
    """
    form = FORM if unlimited else FORM_WITHOUT_MAX
    if isinstance(text, bool) or not isinstance(text, str | int):
        _refuse(parameter, form, text)
    if isinstance(text, int):
        number, unit = float(text), ""
    else:
        word = text.strip()
        if word == "max" and unlimited:
            return "max"
        core = word.upper().removesuffix("B").removesuffix("I")
        unit = core[-1:] if core[-1:] in UNITS else ""
        try:
            number = float(core[:-1] if unit else core)
        except ValueError:
            _refuse(parameter, form, text)
        if number != number or number in (float("inf"), float("-inf")):  # nan, inf
            _refuse(parameter, form, text)
    size = number * UNITS[unit]
    if size < 0 or (size == 0 and not zero):
        _refuse(parameter, "a positive " + form.removeprefix("a "), text,
                hint="0 bytes would leave the container no memory at all" if size == 0
                else None)
    if size != int(size):
        _refuse(parameter, form + ", a whole number of bytes", text,
                hint=f"{text} is {size} bytes")
    return int(size)


def format_size(value: int | str | None) -> str:
    """A size as a person reads it, in the largest unit it fills: `32 MiB`, `1.5 KiB`, `max`."""
    if not isinstance(value, int):
        return str(value)
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        scale = UNITS[unit[0]]
        if value >= scale:
            return f"{value / scale:g} {unit}"
    return f"{value} B"
