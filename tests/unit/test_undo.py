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


@pytest.mark.parametrize("undo, what, says", [
    (None, "remove it", "`undo` must be a function"),
    ("rm -r /tmp/x", "remove it", "called now instead of handed over"),
    (lambda: None, "", "`what` must be a few words"),
])
def test_defer_refuses_what_it_could_not_run_later(undo, what, says):
    stack = UndoStack()
    with pytest.raises(TypeError, match=says):
        stack.defer(undo, what)
    assert stack.pending() == []


def test_pending_lists_the_releases_in_the_order_close_runs_them():
    stack = UndoStack()
    stack.defer(lambda: None, "remove the directory")
    stack.defer(lambda: None, "unmount it")
    assert stack.pending() == ["unmount it", "remove the directory"]
