"""Write the generated parts of the instructor guide (lessons/instructor/README.md, issue 16).

    python tools/guide.py build    rewrite the generated parts from the lessons, checks and doctor
    python tools/guide.py check    exit 1 when the guide differs from what build writes

The guide is prose written by hand, with parts between `<!-- BEGIN GENERATED: name -->` and
`<!-- END GENERATED: name -->` that this tool writes, so they cannot drift
(tests/lessons/test_guide.py runs `check`):

- `tracks`: the 3-hour, 1-day and 10-week tracks, each lesson's minutes summed from its front
  matter (`minutes: {teaching, exercises}`); a track may take a lesson's teaching part only;
  the 10-week course is split into weeks of even length. A lesson not written yet counts with
  provisional minutes (PROVISIONAL) and is marked coming, until its file exists;
- `lessons`: per lesson its minutes, objectives and keypoints (front matter), its deliberate
  failures (the sections whose cells print an error on purpose, `format_error(` or `except`),
  its exercises with their points and what a learner who got it wrong is told (the failure
  messages of its check module, read from its source), and what it needs of the VM (two CPUs,
  the extra disk) and how long its live experiments run;
- `doctor`: the "when something goes wrong" table, one row per fix `pycontain doctor` can print
  (`lab.fixes()`).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import notebooks as builder  # noqa: E402  (tools/notebooks.py, beside this file)
from pycontain import lab, settings  # noqa: E402
from pycontain.course import cells  # noqa: E402

ROOT = builder.ROOT
GUIDE = ROOT / "lessons" / "instructor" / "README.md"
ALL = list(range(25))
#: minutes of lessons being written, until their source exists (then its front matter counts)
PROVISIONAL = {23: {"title": "Audit your container", "teaching": 30, "exercises": 15},
               24: {"title": "Plug into podman", "teaching": 30, "exercises": 15}}
#: (name, length in minutes, [(lesson, "full" or "teaching")], what it covers)
TRACKS = [
    ("3-hour workshop", 180, [(0, "full"), (2, "full"), (5, "teaching"), (12, "full")],
     "what a container is made of: a namespace, a root filesystem, a cgroup; the rest of "
     "lesson 05 (the exercise) is homework"),
    ("1-day workshop", 360, [(0, "full"), (2, "full"), (4, "full"), (5, "full"),
                             (12, "full"), (14, "full"), (22, "teaching")],
     "namespaces, a root filesystem, cgroups through memory and the OOM killer, and the "
     "assembled container with its dashboard"),
    ("10-week course", 10 * 120, [(n, "full") for n in ALL],
     "every lesson, weekly labs graded by the checks (`pycontain grade`); the weeks below"),
]
WEEKS = 10
SPARE = 0.2  # a fifth of a track's time is kept spare: set-up trouble, questions
ERROR_CELL = re.compile(r"format_error\(|\bexcept\b")
TWO_CPUS = re.compile(r"cpu_count\(|cpuset")
EXTRA_DISK = re.compile(r"\bfs\.loop\b|from pycontain\.fs import[^\n]*\bloop\b")
LIVE = re.compile(r"duration_s\(|PYCONTAIN_DURATION")


def lesson_files() -> dict[int, builder.Lesson]:
    return {int(lesson.stem[:2]): lesson for lesson in builder.lessons()}


def minutes(front: dict, part: str) -> int:
    m = front["minutes"]
    return int(m["teaching"]) + (int(m["exercises"]) if part == "full" else 0)


def fronts() -> dict[int, dict]:
    """Every lesson's front matter, the provisional one for a lesson not written yet."""
    found = {n: {"title": p["title"], "minutes": {"teaching": p["teaching"],
                                                 "exercises": p["exercises"]}, "coming": True}
             for n, p in PROVISIONAL.items()}
    for number, lesson in lesson_files().items():
        found[number] = dict(lesson.read().metadata["lesson"])
    return found


def weeks(numbers: list[int], length: dict[int, int], count: int) -> list[list[int]]:
    """`numbers` in order, cut into `count` weeks whose longest is as short as it can be.

    >>> weeks([0, 1, 2, 3], {0: 10, 1: 10, 2: 10, 3: 30}, 2)
    [[0, 1, 2], [3]]
    """
    best: dict[tuple[int, int], tuple[int, list[list[int]]]] = {}

    def split(start: int, left: int) -> tuple[int, list[list[int]]]:
        if (start, left) in best:
            return best[(start, left)]
        rest = numbers[start:]
        if left == 1:
            answer = (sum(length[n] for n in rest), [rest])
        else:
            answer = (10**9, [])
            for cut in range(start + 1, len(numbers) - left + 2):
                head = sum(length[n] for n in numbers[start:cut])
                tail, groups = split(cut, left - 1)
                if max(head, tail) < answer[0]:
                    answer = (max(head, tail), [numbers[start:cut], *groups])
        best[(start, left)] = answer
        return answer

    return split(0, min(count, len(numbers)))[1]


def _names(numbers: list[int], front: dict[int, dict]) -> str:
    return ", ".join(f"{n:02d}" + (" (coming)" if front[n].get("coming") else "")
                     for n in numbers)


def tracks_part() -> str:
    front = fronts()
    lines = ["| track | lessons | minutes | covers |", "|---|---|---|---|"]
    for name, length, chosen, covers in TRACKS:
        total = sum(minutes(front[n], part) for n, part in chosen)
        shown = ", ".join(f"{n:02d}" + (" (teaching only)" if part == "teaching" else "")
                          for n, part in chosen)
        coming = [n for n, _ in chosen if front[n].get("coming")]
        if coming:
            shown += f"; {', '.join(f'{n:02d}' for n in coming)} are coming (provisional minutes)"
        lines.append(f"| {name} ({length // 60} h) | {shown} | {total} of {length} "
                     f"({length - total} spare) | {covers} |")
    full = {n: minutes(front[n], "full") for n in ALL}
    lines += ["", "The 10-week course, week by week (minutes from the front matter; "
              "a lab session of about two hours a week):", "",
              "| week | lessons | minutes |", "|---|---|---|"]
    for week, numbers in enumerate(weeks(ALL, full, WEEKS), 1):
        lines.append(f"| {week} | {_names(numbers, front)} | {sum(full[n] for n in numbers)} |")
    return "\n".join(lines)


# --- per lesson ----------------------------------------------------------------------------------

def _text(node: ast.expr) -> str | None:
    """A message as its source writes it: an f-string's fields shown as `…`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        return None if left is None and right is None else (left or "…") + (right or "…")
    if isinstance(node, ast.IfExp):
        return _text(node.body) or _text(node.orelse)
    return None


def failure_messages(number: int) -> list[str]:
    """What lesson `number`'s checks tell a learner who got it wrong, from the check module's
    source: every message given to `expect(...)`, `CheckFailed(...)` or a helper ending in one."""
    path = ROOT / "pycontain" / "checks" / f"lesson{number:02d}.py"
    if not path.is_file():
        return []
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        args = node.args[1:2] if name == "expect" else node.args[-1:] \
            if name in ("CheckFailed", "_stopped", "_fail", "fail") else []
        for arg in args:
            text = _text(arg)
            message = re.sub(r"^[…\s;,:]+", "", " ".join((text or "").split()))
            if len(message) > 12:
                message = message if len(message) <= 160 else \
                    message[:160].rsplit(" ", 1)[0] + " …"
                if message not in found:
                    found.append(message)
    return found


def _sections(lesson: builder.Lesson) -> list[tuple[str, list[str]]]:
    heading, found = "", []
    for cell in lesson.read().cells:
        if cell.cell_type == "markdown":
            for line in cell.source.split("\n"):
                if line.startswith("## "):
                    heading = line[3:].strip()
                    found.append((heading, []))
        elif cell.cell_type == "code" and found:
            found[-1][1].append(cell.source)
    return found


def lesson_part() -> str:
    front = fronts()
    files = lesson_files()
    out = []
    for number in ALL:
        meta = front[number]
        m = meta["minutes"]
        if number not in files:
            out += [f"### {number:02d} {meta['title']} (coming)", "",
                    f"Provisional: {m['teaching']} min teaching, {m['exercises']} min "
                    "exercises; written now, listed here once its file exists.", ""]
            continue
        lesson = files[number]
        sections = _sections(lesson)
        source = "\n".join(c.source for c in lesson.read().cells if c.cell_type == "code")
        out += [f"### {number:02d} {meta['title']}", "",
                f"{m['teaching']} min teaching, {m['exercises']} min exercises "
                f"(`{lesson.source.relative_to(ROOT)}`).", "", "Objectives:", ""]
        out += [f"- {o}" for o in meta["objectives"]]
        out += ["", "Keypoints:", ""] + [f"- {k}" for k in meta.get("keypoints", [])]
        failing = [h for h, code in sections if any(ERROR_CELL.search(c) for c in code)
                   and not h.lower().startswith("try it")]
        out += ["", "Deliberate failures: " + ("; ".join(failing) if failing else
                                               "none in a section of its own") + "."]
        checks = [c for cell in lesson.read().cells if builder.is_check(cell)
                  for c in cells.checks_called(cell.source)]
        out += ["", "Exercises: " + ", ".join(
            f"`{c.split('.')[1]}` ({cells.points(meta, c)} point"
            f"{'s' if cells.points(meta, c) != 1 else ''})" for c in checks) + ".", "",
            "What learners get wrong (the checks' messages):", ""]
        out += [f"- {msg}" for msg in failure_messages(number)] or ["- (no messages)"]
        needs = []
        if TWO_CPUS.search(source):
            needs.append("two CPUs (the VM's default, `PYCONTAIN_CPUS=2`)")
        if EXTRA_DISK.search(source) or "fs.loop" in meta.get("adds", []):
            needs.append("the VM's extra disk, or a loop device of its own")
        runs = (f"its live experiments run up to `{settings.DURATION_VARIABLE}` "
                f"({settings.DEFAULT_DURATION_S:g} s by default) each"
                if LIVE.search(source) else "no live experiment longer than a few seconds")
        out += ["", f"Needs: {', '.join(needs) or 'nothing beyond the lab VM'}; {runs}.", ""]
    return "\n".join(out).rstrip()


def doctor_part() -> str:
    lines = ["| `pycontain doctor` line | the fix it prints |", "|---|---|"]
    lines += [f"| {name} | {fix.replace('|', '/')} |" for name, fix in lab.fixes()]
    return "\n".join(lines)


PARTS = {"tracks": tracks_part, "lessons": lesson_part, "doctor": doctor_part}


def render(text: str) -> str:
    """`text` with every generated part written afresh."""
    for name, make in PARTS.items():
        begin, end = f"<!-- BEGIN GENERATED: {name} (tools/guide.py) -->", \
            f"<!-- END GENERATED: {name} -->"
        if begin not in text or end not in text:
            raise SystemExit(f"guide.py: {GUIDE} lacks the lines {begin} ... {end}")
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n{make()}\n{end}{tail}"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("verb", choices=("build", "check"))
    args = parser.parse_args(argv)
    now = GUIDE.read_text()
    want = render(now)
    if args.verb == "build":
        if want != now:
            GUIDE.write_text(want)
            print(f"wrote {GUIDE.relative_to(ROOT)}")
        return 0
    if want != now:
        print(f"{GUIDE.relative_to(ROOT)} differs from what the lessons, checks and doctor "
              "say: run `.venv/bin/python tools/guide.py build`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
