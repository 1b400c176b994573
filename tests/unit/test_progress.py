"""course.progress: the table of every lesson, the next one to take, from recorded results."""

from __future__ import annotations

import warnings

from pycontain.course import progress


def test_the_next_lesson_is_the_first_whose_exercises_do_not_all_pass(tmp_path):
    store = str(tmp_path / "p.json")
    everything = progress.lessons(results={})
    assert progress.next_lesson(everything).number == 0
    for check in everything[0].checks:
        progress.record(check, True, path=store)
    progress.record(everything[1].checks[0], False, "❌ no", path=store)
    results = progress.load(store)
    now = progress.lessons(results=results)
    assert now[0].done and not now[1].done and progress.next_lesson(now).number == 1
    table = progress.table(results=results)
    assert f"next: lesson 01, {now[1].title} ({now[1].minutes} min)" in table
    assert "00 Set up the lab" in table and "done" in table.split("\n")[1]
    with_hints = progress.table(results=results, hints={everything[1].checks[0]: 2})
    assert with_hints.split("\n")[2].split()[-2:] == ["2", str(now[1].minutes)]
    progress.record(everything[1].checks[0], True, path=store)  # the last run wins
    assert everything[1].checks[0] in progress.lessons(results=progress.load(store))[1].passed
    for check in everything[1].checks[1:]:  # its stretch exercise, if it has one
        progress.record(check, True, path=store)
    assert progress.lessons(results=progress.load(store))[1].done


def test_a_store_that_cannot_be_written_warns_and_never_raises(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        progress.record("lesson00.check_x", True, path=str(blocker / "p.json"))
    assert "ignoring" in str(seen[0].message)
    assert progress.load(str(tmp_path / "absent.json")) == {}
