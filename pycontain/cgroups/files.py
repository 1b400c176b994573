"""Reading and writing cgroup files, the way every manager does (lesson 12).

Writes open the file without O_CREAT: a misspelt knob fails with ENOENT instead of creating a
plain file in a filesystem that does not allow that anyway. Failures become `CgroupError`s that
name the file and the value, with a hint from `errors.HINTS`: `failed to write '-5' to pids.max:
EINVAL`. See also: cgroups(7), write(2), rmdir(2).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from pycontain.errors import CgroupError, hint_for
from pycontain.kernfs import write_once
from pycontain.settings import PREFIX


def _read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def read_file(path: str) -> str:
    """The text of a cgroup file; CgroupError (with a hint) when it cannot be read."""
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        raise _error(f"failed to read {os.path.basename(path)}", "read", path, e) from None


def write_file(path: str, value: str | int) -> None:
    """Write `value` to a cgroup file that must exist: no O_CREAT, so a misspelt knob fails.

    One write(2) per value, as the kernel parses each write on its own.
    """
    text = str(value)
    try:
        write_once(path, text)
    except OSError as e:
        raise _error(f"failed to write {text!r} to {os.path.basename(path)}", "write", path,
                     e) from None


def _error(message: str, call: str, path: str, e: OSError) -> CgroupError:
    number = e.errno or 0
    name = os.path.basename(path)
    hint = hint_for(f"{call} {name}", number) or hint_for(call, number)
    error = CgroupError(message, number, hint)
    error.add_note(f"in the cgroup {os.path.dirname(path) if call != 'rmdir' else path}")
    return error


def make_dir(path: str) -> None:
    """mkdir(2) a cgroup; CgroupError with a hint when the kernel refuses."""
    _directory(os.mkdir, "mkdir", "create", path)


def remove_dir(path: str) -> None:
    """rmdir(2) one empty cgroup (its control files go with it); EBUSY while it is in use."""
    _directory(os.rmdir, "rmdir", "remove", path)


def _directory(call: Callable[[str], None], name: str, verb: str, path: str) -> None:
    try:
        call(path)
    except OSError as e:
        raise _error(f"failed to {verb} cgroup {os.path.basename(path)!r}", name, path,
                     e) from None


def attach(dirs: Iterable[str], pid: int) -> None:
    """Move process `pid` into the cgroup whose directories are `dirs` (one per hierarchy:
    v1's controllers, or the one v2 directory): a write of its pid to each `cgroup.procs`.
    `pycontain exec` calls it with the directories a state records, without the managers."""
    for path in dirs:
        write_file(os.path.join(path, "cgroup.procs"), pid)


def procs(path: str) -> list[int]:
    """The PIDs in one cgroup directory (`cgroup.procs`), as this PID namespace numbers them."""
    return [int(p) for p in _read_text(os.path.join(path, "cgroup.procs")).split()]


def walk_up(path: str) -> list[str]:
    """`path` and every directory below it, deepest first: the order rmdir(2) needs."""
    found = []
    for top, dirs, _ in os.walk(path):
        found += [os.path.join(top, d) for d in dirs]
    return sorted(found, key=lambda p: -p.count("/")) + [path]


def new_name(label: str = "") -> str:
    """A fresh `pycontain-…` cgroup name: `pycontain-<label>-<6 hex digits>`."""
    return f"{PREFIX}{label}{'-' if label else ''}{os.urandom(3).hex()}"

