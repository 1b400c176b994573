"""`make release` (tools/release.py): the learner bundle holds no answer, the instructor one all.

The learner archive is unpacked and searched for every form an answer takes: the solution
notebooks, a notebook of the solution build anywhere, a lesson source (its solution blocks), a
solution marker line, and the text of every solution, as each solution cell of the solution
build reads and as each block between the markers reads, in any file at all (the package, the
checks, the README, the VM's files). The same search over the instructor archive must find them:
so the search is known to be able to fail.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import tarfile
from pathlib import Path

import pytest

from .lessonlib import LESSONS, ROOT, builder, read

#: library code a lesson shows (pycontain.show) before its Try it, whose exercise is to write the
#: same calls again: the runtime the course builds is its own reference (lesson, file): why
SHOWN_BEFORE = {
    ("05", "pycontain/fs/rootfs.py"): "lesson 05 shows rootfs.enter before its Try it: the "
                                      "exercise re-derives pivot_root's order from it",
}
#: a solution shorter than this (one call: `box.freeze()`) names the API, it does not answer
MIN_CHARS = 40


def _load_release():
    spec = importlib.util.spec_from_file_location("pycontain_tools_release",
                                                  ROOT / "tools" / "release.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


release = _load_release()


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def answers() -> list[tuple[str, str, str]]:
    """(lesson number, what, normalised text) of every answer: each solution cell as the solution
    build writes it, and each block between the markers."""
    found = []
    for lesson in LESSONS:
        number = lesson.stem[:2]
        for cell in read(lesson).cells:
            if cell.cell_type != "code" or not builder.has_solution(cell.source):
                continue
            found.append((number, "solution cell", flat(
                builder.split_solution(cell.source, solution=True))))
            for block in re.findall(rf"^[ \t]*{builder.BEGIN}\n(.*?)^[ \t]*{builder.END}",
                                    cell.source, flags=re.M | re.S):
                code = "\n".join(line for line in block.split("\n")
                                 if not line.strip().startswith("#"))
                if len(flat(code)) >= MIN_CHARS:
                    found.append((number, "solution block", flat(code)))
    return found


def leaks(top: Path) -> list[str]:
    """Every answer found in the unpacked tree at `top`."""
    found = []
    texts = {}
    for path in sorted(p for p in top.rglob("*") if p.is_file()):
        name = str(path.relative_to(top))
        text = path.read_text(errors="replace")
        if name.startswith("notebooks/solutions/"):
            found.append(f"{name}: the solution notebooks")
        if re.fullmatch(r"lessons/\d\d-.*\.md", name):
            found.append(f"{name}: a lesson source, with its solution blocks")
        if any(line.strip() in (builder.BEGIN, builder.END) for line in text.split("\n")):
            found.append(f"{name}: a solution marker line")
        if name.endswith(".ipynb"):
            build = json.loads(text).get("metadata", {}).get("pycontain", {}).get("build")
            if build != "learner":
                found.append(f"{name}: a notebook of the {build} build")
            # a notebook's sources are JSON strings: search what a reader sees
            text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
        texts[name] = flat(text)
    for number, what, answer in answers():
        for name, text in texts.items():
            if answer in text and (number, name) not in SHOWN_BEFORE:
                found.append(f"{name}: lesson {number}'s {what} {answer[:70]!r}")
    return found


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    assert release.main(["--out", str(out), "--version", "0.0.test"]) == 0
    unpacked = {}
    for kind in release.KINDS:
        archive = out / f"pycontain-{kind}-0.0.test.tar.gz"
        with tarfile.open(archive) as tar:
            names = tar.getnames()
            assert all(n.startswith(f"pycontain-{kind}-0.0.test/") for n in names), kind
            # filter="data" where this Python has it (3.11.4 and later; Debian 12 has 3.11.2)
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(out / kind, **safe)  # noqa: S202 (our own archive, just made)
        unpacked[kind] = out / kind / f"pycontain-{kind}-0.0.test"
    return unpacked


def test_the_learner_bundle_holds_no_answer(bundles):
    top = bundles["learner"]
    found = leaks(top)
    assert not found, "the learner bundle gives answers away:\n" + "\n".join(found)
    assert not (top / "lessons").exists() and not (top / "tests").exists()


def test_the_learner_bundle_holds_what_the_lab_needs(bundles):
    top = bundles["learner"]
    for name in ("README.md", "Makefile", "pyproject.toml", "vagrant/Vagrantfile",
                 "vagrant/provision.sh", "pycontain/cli.py", "pycontain/checks/lesson02.py"):
        assert (top / name).is_file(), name
    assert os_access(top / "vagrant" / "provision.sh")
    assert sorted(p.name for p in (top / "notebooks").glob("*.ipynb")) == \
        sorted(lesson.learner.name for lesson in LESSONS)


def os_access(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o100)


def test_the_instructor_bundle_holds_solutions_guide_and_grader_and_the_search_finds_them(
        bundles):
    top = bundles["instructor"]
    for lesson in LESSONS:
        assert (top / "notebooks" / "solutions" / lesson.solution.name).is_file()
        assert (top / "notebooks" / lesson.learner.name).is_file()  # what the grader grades by
    assert (top / "lessons" / "instructor" / "README.md").is_file()
    assert (top / "pycontain" / "course" / "grade.py").is_file()
    found = leaks(top)
    for lesson in LESSONS:
        if any(builder.has_solution(c.source) for c in read(lesson).cells if c.cell_type == "code"):
            assert any(f"lesson {lesson.stem[:2]}'s solution cell" in line for line in found), \
                lesson.stem


def test_the_version_names_the_commit():
    version = release.version()
    assert version.startswith(release.tomllib.loads(
        (ROOT / "pyproject.toml").read_text())["project"]["version"])
    assert re.fullmatch(r"\d+\.\d+\.\d+(\+g[0-9a-f]{12}(\.dirty)?|\+dirty)?", version), version


def test_a_release_is_reproducible(tmp_path):
    for run in ("a", "b"):
        assert release.main(["--out", str(tmp_path / run), "--version", "1"]) == 0
    for kind in release.KINDS:
        name = f"pycontain-{kind}-1.tar.gz"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
