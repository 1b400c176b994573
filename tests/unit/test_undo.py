"""The undo stack that Lab and every Container keep: newest first, keeps going, runs once."""

from __future__ import annotations

import pytest

from pycontain.undo import UndoStack


def test_undo_runs_newest_first_keeps_going_and_runs_each_release_once():
    done = []
    undo = UndoStack()
    undo.defer(lambda: done.append("cgroup"), "remove the cgroup")
    undo.defer(lambda: 1 / 0, "discard the layer")
    undo.defer(lambda: done.append("newest"), "say newest")
    assert len(undo) == 3
    with pytest.warns(UserWarning, match=r"^Failed to discard the layer: division by zero, "
                                         r"ignoring$"):
        undo.close()
    assert done == ["newest", "cgroup"] and len(undo) == 0
    undo.close()
    assert done == ["newest", "cgroup"]
