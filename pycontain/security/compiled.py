"""pycontain's default seccomp filter, compiled once and kept on disk (the start path).

Compiling the default profile (`seccomp.DEFAULT`) means importing `seccomp` and its system
call tables and walking every rule: over a millisecond of every `pycontain run`, for the same
bytes each time. So the bytes are kept in a file, under a key of everything they depend on:
the architecture, the capabilities the container keeps (they decide the rules' `includes` and
`excludes`), and the size and modification time of the two modules that make them. A key that
differs, or a file that cannot be read or written, means compiling again, as without a cache:
the cache can make a start faster, never change the filter it installs.

The file is `/var/cache/pycontain/seccomp-default` for root, else
`$XDG_CACHE_HOME/pycontain/seccomp-default` (~/.cache), replaced whole (rename(2)).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection

#: the modules whose code makes the filter: a change to either is a new key
SOURCES = ("seccomp.py", "syscall_numbers.py")
FILE = "seccomp-default"


def directory() -> str:
    if os.geteuid() == 0:
        return "/var/cache/pycontain"
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(home, "pycontain")


def key(capabilities: Collection[str] | None) -> bytes:
    """What the default filter depends on, as one line."""
    here = os.path.dirname(os.path.abspath(__file__))
    stats = [os.stat(os.path.join(here, name)) for name in SOURCES]
    kept = "all" if capabilities is None else ",".join(sorted(capabilities))
    made = " ".join(f"{s.st_mtime_ns}:{s.st_size}" for s in stats)
    return f"{os.uname().machine} {made} {kept}\n".encode()


def default_filter(capabilities: Collection[str] | None, where: str | None = None) -> bytes:
    """`seccomp.choose("default", capabilities)`, from the cache in `where` (`directory()`)
    when its key matches, else compiled and kept there."""
    wanted = key(capabilities)
    path = os.path.join(where or directory(), FILE)
    try:
        with open(path, "rb") as f:
            if f.readline() == wanted:
                return f.read()
    except OSError:
        pass
    from pycontain.security import seccomp

    program = seccomp.choose("default", frozenset(capabilities) if capabilities is not None
                             else None)
    assert program is not None
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "wb") as f:
            f.write(wanted + program)
        os.rename(temporary, path)
    except OSError:
        pass  # a read-only home, say: compiled each time, as without a cache
    return program
