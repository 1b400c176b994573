"""An undo stack: what was created, released newest first, whatever fails on the way (lesson 00).

Whoever creates something registers how to release it (`defer`); `close()` runs the releases
newest first, so a thing goes before what it was built on (a container's overlay before its
cgroup, its cgroup before its network). A release that fails is reported as a warning ending in
", ignoring" and the rest still run: one stuck resource must not strand the others. Each release
runs at most once, so `close()` may run twice. A notebook's `Lab` and every `Container` keep one.

    >>> undo = UndoStack()
    >>> undo.defer(lambda: print("second"), "say second")
    >>> undo.defer(lambda: print("first"), "say first")
    >>> undo.close()
    first
    second
    >>> undo.close()  # idempotent
"""

from __future__ import annotations

from pycontain import faults

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class UndoStack:
    """Releases, run newest first by `close()`; a failing one is reported and skipped."""

    def __init__(self) -> None:
        self._undo: list[tuple[str, Callable[[], object], str | None]] = []

    def __len__(self) -> int:
        return len(self._undo)

    def defer(self, undo: Callable[[], object], what: str, step: str | None = None) -> None:
        """Register `undo`, to run at `close()`; `what` names it in warnings ("remove …");
        `step`, for the reliability tests, names the moment just before it runs
        (`faults.point("release:STEP")`)."""
        if not callable(undo):
            raise TypeError(f"`undo` must be a function that close() calls later, with no "
                            f"arguments (e.g. a lambda), got {type(undo).__name__} {undo!r}: "
                            "was it called now instead of handed over?")
        if not isinstance(what, str) or not what:
            raise TypeError(f"`what` must be a few words naming the release (\"remove /tmp/x\"),"
                            f" got {what!r}")
        self._undo.append((what, undo, step))

    def pending(self) -> list[str]:
        """What `close()` would release, by its words, in the order it would (newest first)."""
        return [what for what, _, _ in reversed(self._undo)]

    def close(self) -> None:
        """Run every release, newest first; a failing one warns ("Failed to …, ignoring")."""
        while self._undo:
            what, undo, step = self._undo.pop()
            if step is not None:
                faults.point(f"release:{step}")
            try:
                undo()
            except Exception as e:  # keep going: one stuck resource must not strand the rest
                import warnings

                warnings.warn(f"Failed to {what}: {e}, ignoring", stacklevel=3)
