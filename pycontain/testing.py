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

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pycontain import syscalls, tracing
from pycontain.errors import SyscallError

#: what a recorded call returns, where the caller needs a value: fork() is 0, so the caller
#: goes on as the child would (the container); a descriptor is one no real file has
RESULTS: dict[str, object] = {"fork": 0, "clone_parent": 0, "prctl": 0, "capget": (0, 0, 0),
                              "openat": 1 << 20, "shmget": 0, "shmat": 0, "mq_open": 1 << 20,
                              "inotify_init1": 1 << 20, "inotify_add_watch": 1, "ioctl": 0,
                              "name_to_handle_at": bytes(8)}


class RecordingSyscalls(syscalls.Syscalls):
    """A kernel that writes down each call and succeeds, or fails where told to.

    It overrides every name of `syscalls.KERNEL_CALLS` (generated below the class), so a
    recorded run never reaches the real kernel. A call is recorded with every argument, the
    defaults filled in and flags as their flag type, as `tracing.arguments` sees it.
    """

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


def _recorder(call: str) -> Callable[..., Any]:
    def record(self: RecordingSyscalls, *args: Any, **kwargs: Any) -> Any:
        self._record(call, *tracing.arguments(call, args, kwargs))
        if call == "write":
            return len(args[1] if len(args) > 1 else kwargs["data"])
        return RESULTS.get(call)

    record.__name__ = record.__qualname__ = call
    record.__doc__ = f"Record {call}(...) instead of making it."
    return record


for _call in syscalls.KERNEL_CALLS:
    setattr(RecordingSyscalls, _call, _recorder(_call))


def init_spec(**changes: Any) -> dict[str, Any]:
    """A spec as `init.setup` receives it (`spec.InitSpec`, every key present), for a recorded run:
    no namespace, nothing to mount, `sh` to exec; `changes` replace any key.

    Its parent_pid is this process's parent, so init's die_with_parent step lets it go on.
    """
    import os

    wire: dict[str, Any] = {
        "argv": ["sh"], "executable": "/bin/sh", "namespaces": [], "hostname": None,
        "rootfs": None, "cwd": "/", "init": False, "read_only": False,
        "root_switch": "pivot_root", "env": {}, "parent_pid": os.getppid(), "time_offsets": {},
        "overlay": None, "sync_before_exec": False, "trace": False, "capabilities": None,
        "no_new_privs": False, "seccomp": None, "masked_paths": [], "readonly_paths": [],
        "cgroup_view": {}, "volumes": [], "user": None, "join": [], "sysctl": {},
        "rlimits": [], "start_fifo": None}
    unknown = set(changes) - set(wire)
    if unknown:
        raise TypeError(f"init_spec() got keys init does not read: {sorted(unknown)}")
    return wire | changes


@contextmanager
def recorded(fail: dict[str, int] | None = None) -> Iterator[RecordingSyscalls]:
    """Record every call made through `pycontain.syscalls` inside the block."""
    kernel = RecordingSyscalls(fail)
    previous = syscalls.use(kernel)
    try:
        yield kernel
    finally:
        syscalls.use(previous)
