"""Test doubles for pycontain, public like `trio.testing`: record system calls, don't make them.

`recorded()` routes every function of `pycontain.syscalls` to a `RecordingSyscalls` for the
duration of a `with` block. Code such as `init.setup` then runs without root and without touching
the kernel, and a test reads back the calls it made, in order, with the kernel's names:

    >>> from pycontain.namespaces import uts
    >>> with recorded() as kernel:
    ...     uts.isolate_hostname("box-1")
    >>> kernel.calls
    [('unshare', (<CloneFlag.CLONE_NEWUTS: 67108864>,)), ('sethostname', ('box-1',))]

Only for unit tests of order and arguments: what the kernel does with the calls is proven by the
integration tests, on the real kernel.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pycontain import syscalls
from pycontain.errors import SyscallError


class RecordingSyscalls(syscalls.Syscalls):
    """A kernel that writes down each call and succeeds, or fails where told to."""

    def __init__(self, fail: dict[str, int] | None = None) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.fail = fail or {}  # call name -> errno to fail with

    def _record(self, call: str, *args: object) -> None:
        self.calls.append((call, args))
        if call in self.fail:
            raise SyscallError(call, args, self.fail[call])

    def names(self) -> list[str]:
        """Just the names of the calls, in order."""
        return [call for call, _ in self.calls]

    def unshare(self, flags: syscalls.CloneFlag) -> None:
        self._record("unshare", syscalls.CloneFlag(flags))

    def setns(self, fd: int, nstype: syscalls.CloneFlag | int = 0) -> None:
        self._record("setns", fd, syscalls.CloneFlag(nstype))

    def mount(self, source: str | None, target: str, fstype: str | None,
              flags: syscalls.MountFlag | int = 0, data: str | None = None) -> None:
        self._record("mount", source, target, fstype, syscalls.MountFlag(flags), data)

    def umount2(self, target: str, flags: syscalls.UmountFlag | int = 0) -> None:
        self._record("umount2", target, syscalls.UmountFlag(flags))

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._record("pivot_root", new_root, put_old)

    def sethostname(self, name: str) -> None:
        self._record("sethostname", name)

    def prctl(self, option: syscalls.PrctlOption, arg2: int = 0) -> int:
        self._record("prctl", syscalls.PrctlOption(option), arg2)
        return 0

    def chdir(self, path: str) -> None:
        self._record("chdir", path)

    def chroot(self, path: str) -> None:
        self._record("chroot", path)

    def execve(self, path: str, argv: list[str], env: dict[str, str]) -> None:
        self._record("execve", path, argv)


@contextmanager
def recorded(fail: dict[str, int] | None = None) -> Iterator[RecordingSyscalls]:
    """Record every call made through `pycontain.syscalls` inside the block."""
    kernel = RecordingSyscalls(fail)
    previous = syscalls.use(kernel)
    try:
        yield kernel
    finally:
        syscalls.use(previous)
