"""Lesson sources and generated notebooks agree, and every lesson keeps the conventions.

notebooks/ is generated from lessons/ by tools/notebooks.py (DESIGN §3); these tests fail when
someone edits a notebook instead of its source, or forgets `make notebooks` after editing one.
"""

from __future__ import annotations

import json
import re

import pytest

from .lessonlib import LESSONS, ROOT, builder, front_matter, lesson_params, number_of, read

NOT_VERBS = {"a", "an", "the", "about", "introduction", "intro", "lesson", "chapter",
             "overview", "basics", "on"}
GENERATED = sorted([*builder.NOTEBOOKS.glob("*.ipynb"), *builder.SOLUTIONS.glob("*.ipynb")])


def test_there_are_lessons():
    assert LESSONS, f"no lesson sources matching {builder.LESSON_GLOB} in {builder.LESSONS}"


@pytest.mark.parametrize("lesson", lesson_params())
def test_source_keeps_the_build_conventions(lesson):
    assert builder.problems(lesson, read(lesson)) == []


@pytest.mark.parametrize("lesson", lesson_params())
def test_notebooks_match_their_source(lesson):
    """The drift check: both builds exist and equal what the source produces now."""
    for path, text in builder.builds(lesson).items():
        name = path.relative_to(ROOT)
        assert path.exists(), f"{name} is missing: run `make notebooks`"
        assert path.read_text() == text, (
            f"{name} differs from {lesson.source.relative_to(ROOT)}: edit the lesson source, "
            "never the notebook, then run `make notebooks`")


@pytest.mark.parametrize("path", GENERATED, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_are_written_as_jupyter_saves_them(path, tmp_path):
    """Saving a generated notebook through Jupyter Server, as JupyterLab does, changes no byte:
    the contents manager reads it with nbformat, validates it and writes it back."""
    from jupyter_server.services.contents.filemanager import FileContentsManager
    from nbformat.sign import NotebookNotary

    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes())
    notary = NotebookNotary(db_file=":memory:")  # trusting it must not write to ~/.local
    contents = FileContentsManager(root_dir=str(tmp_path), notary=notary)
    contents.save(contents.get(path.name, type="notebook"), path.name)
    assert copy.read_bytes() == path.read_bytes(), f"saving {path.name} in Jupyter rewrites it"


def test_every_notebook_has_a_source():
    assert builder.orphans() == [], "generated notebooks without a lesson source"


@pytest.mark.parametrize("path", GENERATED, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_are_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    ran = [i for i, c in enumerate(nb["cells"])
           if c.get("outputs") or c.get("execution_count") is not None]
    assert not ran, f"cells {ran} of {path.name} hold outputs: rebuild with `make notebooks`"


@pytest.mark.parametrize("lesson", lesson_params())
def test_title_is_the_verb_phrase_of_the_file_name(lesson):
    meta = front_matter(lesson)
    match = re.fullmatch(r"(\d\d)-([a-z0-9]+(?:-[a-z0-9]+)+)", lesson.stem)
    assert match, f"{lesson.stem}: name lessons NN-verb-phrase (lowercase, dashes)"
    assert meta.get("number") == number_of(lesson), "front matter `number` must match the file"
    title = str(meta.get("title", ""))
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    assert slug == match.group(2), f"title {title!r} must spell the file name {lesson.stem!r}"
    assert title.split()[0].lower() not in NOT_VERBS, f"title {title!r} must start with a verb"
    first = read(lesson).cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {title}\n"), (
        f"the first cell must start with the heading '# {title}'")


@pytest.mark.parametrize("lesson", lesson_params())
def test_front_matter_is_complete(lesson):
    meta = front_matter(lesson)
    minutes = meta.get("minutes", {})
    assert set(minutes) >= {"teaching", "exercises"}, "minutes: {teaching: N, exercises: N}"
    assert all(isinstance(minutes[k], int) and minutes[k] >= 0
               for k in ("teaching", "exercises"))
    assert isinstance(meta.get("objectives"), list) and meta["objectives"], "objectives: [...]"
    keypoints = meta.get("keypoints")
    assert isinstance(keypoints, list) and 2 <= len(keypoints) <= 4 and all(
        isinstance(k, str) and k.strip() for k in keypoints), (
        "keypoints: [...], two to four sentences a learner takes away (the instructor guide "
        "lists them; the Carpentries' keypoints)")
    assert isinstance(meta.get("prerequisites"), list), "prerequisites: [...] (may be empty)"
    adds = meta.get("adds")
    assert isinstance(adds, list), "adds: [module, ...] (the pycontain modules it introduces)"
    for module in adds:
        path = ROOT / "pycontain" / module.replace(".", "/")
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), (
            f"adds: {module!r} is not a module under pycontain/")


@pytest.mark.parametrize("lesson", lesson_params())
def test_lesson_has_the_anatomy(lesson):
    """DESIGN §3: what you'll do/learn/need, a Lab, checks, a clean-up cell, further reading."""
    nb = read(lesson)
    intro = nb.cells[0].source.lower().replace("’", "'")
    for part in ("what you'll do", "what you'll learn", "what you'll need"):
        assert part in intro, f"the first cell needs *{part.capitalize()}*"
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any("Lab(" in src for src in code), "a setup cell creates the Lab"
    assert any(".close()" in src for src in code), "a clean-up cell closes the Lab"
    assert any(builder.is_check(c) for c in nb.cells), "at least one Try it cell tagged `check`"
    headings = [line.lower() for c in nb.cells if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("#")]
    assert any("further reading" in h for h in headings), "a '## Further reading' section"


def test_learner_build_stubs_the_solution():
    code = "def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\nf()"
    stub = "def f():\n    pass  # YOUR CODE HERE\nf()"
    assert builder.split_solution(code, solution=False) == stub
    assert builder.split_solution(code, solution=True) == "def f():\n    return 1\nf()"


@pytest.mark.parametrize("bad", [
    "# BEGIN SOLUTION\nx = 1",
    "x = 1\n# END SOLUTION",
    "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n# END SOLUTION",
])
def test_broken_solution_markers_are_refused(bad):
    with pytest.raises(builder.LessonError):
        builder.split_solution(bad, solution=False)


def test_a_solution_must_be_followed_by_a_check(tmp_path):
    source = tmp_path / "99-do-a-thing.md"
    source.write_text(
        "---\nkernelspec: {name: python3, display_name: Python 3, language: python}\n"
        "lesson: {number: 99, title: Do a thing}\n---\n\n# Do a thing\n\n"
        "```{code-cell} ipython3\n# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n```\n\n"
        "```{code-cell} ipython3\nx\n```\n")
    found = builder.problems(builder.Lesson(source))
    assert any("tagged `check`" in p for p in found), found


def test_a_learner_notebook_is_never_clobbered(tmp_path):
    """A notebook with outputs or edits is kept by `build`, which then exits 1."""
    if not LESSONS:
        pytest.skip("no lessons yet")
    lesson = builder.Lesson(LESSONS[0].source, notebooks=tmp_path)
    assert builder.cmd_build(force=False, selected=[lesson]) == 0  # a first build writes both
    assert builder.untouched(lesson.learner)
    nb = json.loads(lesson.learner.read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["execution_count"] = 1                                   # the learner ran a cell
    lesson.learner.write_text(json.dumps(nb))
    work = lesson.learner.read_text()
    assert builder.cmd_build(force=False, selected=[lesson]) == 1  # kept, and said so
    assert lesson.learner.read_text() == work
    code["execution_count"] = None
    code["source"] += "\nprint('my own line')"                   # an edit, without running
    lesson.learner.write_text(json.dumps(nb))
    assert builder.cmd_build(force=False, selected=[lesson]) == 1
    assert builder.cmd_build(force=True, selected=[lesson]) == 0   # --force overwrites
    assert builder.untouched(lesson.learner)
    assert builder.cmd_build(force=False, selected=[lesson]) == 0  # and a rebuild is quiet
