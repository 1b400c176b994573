"""The grader: each learner notebook run headless in a pycontain container of its own (issue 16).

A submission is one student's notebooks (a notebook, or a folder of them). Each notebook is
matched to its lesson's pristine learner build by the lesson number in its metadata, then run by
`course.runner` as the first process of a container that has no namespaces of its own (the
lessons need the host's, as root) but a cgroup with limits: memory, processes, and a time limit
for the whole notebook. So the kernel, and all a lesson starts, is held by the limits, and:

- a cell that never ends is stopped at the time limit (a `timeout`; the runner stops the kernel,
  and a runner that does not end 30 s later is killed with its whole cgroup);
- a fork bomb meets pids.max and a memory hog memory.max: a `contained` failure, read from the
  cgroup's own counters (pids.events max, memory.events oom_kill);
- whatever the notebook leaves running is killed with the cgroup, which is removed, with the
  cgroups the lesson made in it, before the next notebook starts; the temp dirs of the killed
  kernel's `Lab`s go too (`lab.sweep_orphans`). Anything else new afterwards (a netns, a link) is
  reported as left behind, and removed with `sweep=True` (`--sweep`: a grading machine's choice,
  since it could also catch what someone else makes on the machine at the same moment).

Scoring is `course.score`. Not a security boundary: the notebook runs as root on the host's
namespaces; a hostile submission can do anything root can (README, "pycontain is a teaching
runtime").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycontain import lab, settings
from pycontain.cgroups import Cgroup
from pycontain.course import runner
from pycontain.course.score import Exercise, score
from pycontain.errors import SpecError
from pycontain.sizes import format_size, parse_size

#: how long the runner may take to stop a kernel after the time limit before it is killed
GRACE_S = 30.0
#: ran to the end; ran out of time; hit a limit; the runner itself failed; not gradable
RAN, TIMEOUT, CONTAINED, CRASHED, INVALID = "ran", "timeout", "contained", "crashed", "invalid"


@dataclass(frozen=True)
class GradeLimits:
    """What each notebook may use: seconds for the whole notebook, memory, processes."""

    time_limit_s: float = 600.0
    memory_max: str = "2G"
    pids_max: int = 512

    def __post_init__(self) -> None:
        if not self.time_limit_s > 0:
            raise SpecError("time_limit_s", "a number of seconds > 0", self.time_limit_s)
        parse_size(self.memory_max, "memory_max")
        if isinstance(self.pids_max, bool) or not isinstance(self.pids_max, int) \
                or self.pids_max < 1:
            raise SpecError("pids_max", "a number of processes >= 1", self.pids_max)


@dataclass
class NotebookGrade:
    """One notebook: its lesson, how the run ended (`outcome`, `detail`), its exercises."""

    path: str
    lesson: int | None
    title: str
    outcome: str
    detail: str = ""
    exercises: list[Exercise] = field(default_factory=list)
    seconds: float = 0.0
    cgroup: str = ""  # the name of the container's cgroup, removed once the notebook ended

    @property
    def score(self) -> float:
        return sum(e.earned for e in self.exercises)

    @property
    def total(self) -> float:
        return sum(e.points for e in self.exercises)


@dataclass
class SubmissionGrade:
    """One student's notebooks, and what grading them left on the machine."""

    name: str
    notebooks: list[NotebookGrade]
    left_behind: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(n.score for n in self.notebooks)

    @property
    def total(self) -> float:
        return sum(n.total for n in self.notebooks)

    @property
    def passed(self) -> bool:
        return bool(self.notebooks) and all(
            n.outcome == RAN and n.exercises and all(e.passed for e in n.exercises)
            for n in self.notebooks)


def pristine_dir() -> Path:
    """The learner builds of this checkout (`notebooks/`), the default reference."""
    return Path(__file__).resolve().parents[2] / "notebooks"


def submissions(paths: list[str]) -> list[tuple[str, list[Path]]]:
    """(name, notebooks) for each path: a notebook is a submission of its own, named by its
    file; a folder is one, named by the folder, with every notebook in it (checkpoints left out).
    """
    found = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            books = sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
            found.append((path.name, books))
        elif path.suffix == ".ipynb" and path.is_file():
            found.append((path.stem, [path]))
        else:
            raise SpecError("SUBMISSION", "a notebook (.ipynb) or a folder of them", given)
    return found


def _pristine(nb: dict[str, Any], reference: Path) -> tuple[dict[str, Any] | None, str]:
    number = nb.get("metadata", {}).get("lesson", {}).get("number")
    if not isinstance(number, int):
        return None, "not a pycontain learner notebook: its metadata has no lesson number"
    matches = sorted(reference.glob(f"{number:02d}-*.ipynb"))
    if not matches:
        return None, f"lesson {number} has no learner build in {reference}"
    return json.loads(matches[0].read_text()), ""


def grade_notebook(path: Path, limits: GradeLimits, reference: Path) -> NotebookGrade:
    """Run one notebook in its own container and score it against its pristine build."""
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return NotebookGrade(str(path), None, "", INVALID, f"cannot read it: {e}")
    pristine, why = _pristine(nb, reference)
    meta = nb.get("metadata", {}).get("lesson", {})
    number, title = meta.get("number"), meta.get("title", "")
    if pristine is None:
        return NotebookGrade(str(path), number if isinstance(number, int) else None, title,
                             INVALID, why)
    started = time.monotonic()
    with lab.Lab(check=False) as scratch_lab:
        scratch = scratch_lab.tempdir("grade")
        copy = scratch / path.name
        shutil.copyfile(path, copy)
        out = scratch / "executed.ipynb"
        outcome, detail, cgroup = _run(copy, out, scratch, limits)
        executed = json.loads(out.read_text()) if out.exists() else nb
    stopped = detail if outcome in (TIMEOUT, CONTAINED, CRASHED) else ""
    timed_out_cell = executed.get("metadata", {}).get("pycontain", {}).get(
        "grading", {}).get("timed_out_cell")
    if timed_out_cell is not None:
        first = "".join(executed["cells"][timed_out_cell]["source"]).strip().split("\n")[0]
        detail = (f"cell {timed_out_cell} (`{first[:60]}`) was still running at the "
                  f"{limits.time_limit_s:g} s limit") + (f"; {detail}" if detail else "")
        stopped = detail
        outcome = outcome if outcome == CONTAINED else TIMEOUT
    return NotebookGrade(str(path), number, title, outcome, detail,
                         score(executed, pristine, stopped=stopped),
                         time.monotonic() - started, cgroup)


def _run(notebook: Path, out: Path, scratch: Path, limits: GradeLimits
         ) -> tuple[str, str, str]:
    """Run the runner in a container with `limits`; (outcome, detail) from how it ended, and
    the name of the container's cgroup."""
    from pycontain import runtime

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(scratch),
           "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"), "IPYTHONDIR": str(scratch / "ipython"),
           "MPLBACKEND": "agg",
           # a student's check results are theirs, not this machine's progress (course.progress)
           settings.PROGRESS_VARIABLE: str(scratch / "progress.json")}
    # PYTHONPATH: where this process found pycontain and nbclient, when not in its venv (the
    # v2 test guest); the runner and the notebook's kernel must find them there too
    for name in (settings.ALLOW_HOST_VARIABLE, settings.ROOTFS_VARIABLE,
                 settings.DURATION_VARIABLE, "PYTHONDONTWRITEBYTECODE", "PYTHONPATH"):
        if name in os.environ:
            env[name] = os.environ[name]
    _offer_controllers()
    log = scratch / "runner.log"
    argv = [sys.executable, "-m", runner.__name__, str(notebook), str(out),
            str(limits.time_limit_s)]
    with log.open("w") as log_file:
        box = runtime.spawn(argv, namespaces=(), env=env, cwd=str(scratch), stdout=log_file,
                            stderr=subprocess.STDOUT, memory_max=limits.memory_max,
                            pids_max=limits.pids_max)
        killed = False
        try:
            box.process.wait(timeout=limits.time_limit_s + GRACE_S)
        except subprocess.TimeoutExpired:
            killed = True
            box.kill()
        assert box.cgroup is not None
        cgroup = box.cgroup.name
        forks_refused, oom_kills = _limits_hit(box.cgroup)
        result = box.wait()  # kills what is left in its cgroup and removes it
    lab.sweep_orphans()  # the temp dirs (and their mounts) of a killed kernel's Labs
    contained = []
    if forks_refused:
        contained.append(f"the kernel refused {forks_refused} fork(s) at its process limit "
                         f"(pids.max = {limits.pids_max}): a fork bomb or a process leak, "
                         "contained")
    if oom_kills:
        contained.append(f"its memory limit (memory.max = "
                         f"{format_size(parse_size(limits.memory_max))}) called the OOM killer "
                         f"{oom_kills} time(s): a memory hog, contained")
    if killed:
        contained.append(f"the run was killed {GRACE_S:g} s after its "
                         f"{limits.time_limit_s:g} s limit")
    detail = "; ".join(contained)
    if forks_refused or oom_kills:
        return CONTAINED, detail, cgroup
    if killed or result.exit_code == runner.TIMED_OUT:
        return TIMEOUT, detail, cgroup
    if result.exit_code != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        return CRASHED, f"the runner {result.reason}: {' | '.join(tail)}", cgroup
    return RAN, "", cgroup


#: the controllers the lessons' own cgroups use, inside the grader's container
LESSON_CONTROLLERS = ("cpu", "cpuset", "io", "memory", "pids")


def _offer_controllers() -> None:
    """On v2, let the container's cgroup hand the lessons' cgroups every controller they use:
    a cgroup offers its children only what its parent enables (`cgroup.subtree_control`), and
    the container's cgroup would otherwise get just memory and pids. v1 needs nothing."""
    from pycontain import cgroups
    from pycontain.cgroups import v2

    layout = cgroups.detect()
    if layout.mode != "v2" or layout.unified is None:
        return
    home = cgroups.home(layout.unified)
    offered = cgroups.read_file(os.path.join(home, "cgroup.controllers")).split()
    v2.delegate(home, tuple(c for c in LESSON_CONTROLLERS if c in offered),
                is_root=os.path.samefile(home, layout.unified.mount))


def _limits_hit(cgroup: Cgroup) -> tuple[int, int]:
    """How often this cgroup's own pids.max refused a fork, and how often its own memory.max
    made the OOM killer run; not what the lesson's cgroups inside it met at their own limits.

    v2 counts memory.events up the tree (a lesson's OOM-killed hog would count here too), so
    there the `.local` file's `oom` says whether this cgroup's limit was the one hit; pids.events
    does the same since Linux 6.13, with pids.events.local. v1 and older kernels count locally.
    """
    from pycontain.errors import CgroupError

    def count(knobs: tuple[str, ...], key: str) -> int:
        for knob in knobs:
            try:
                return cgroup.read_keyed(knob).get(key, 0)
            except CgroupError:
                continue
        return 0

    if cgroup.version == 2:
        return (count(("pids.events.local", "pids.events"), "max"),
                count(("memory.events.local",), "oom"))
    return count(("pids.events",), "max"), count(("memory.events",), "oom_kill")


def grade(paths: list[str], limits: GradeLimits | None = None, *,
          reference: Path | None = None, sweep: bool = False) -> list[SubmissionGrade]:
    """Grade every submission in `paths`, one notebook after the other."""
    limits = limits or GradeLimits()
    reference = reference or pristine_dir()
    graded = []
    for name, books in submissions(paths):
        before = set(lab.leftovers())
        notebooks = [grade_notebook(book, limits, reference) for book in books]
        left = [item for item in lab.leftovers() if item not in before]
        if sweep and left:
            lab.sweep(only=left)
            left = [item for item in lab.leftovers() if item not in before]
        graded.append(SubmissionGrade(name, notebooks, left))
    return graded
