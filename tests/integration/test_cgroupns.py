"""Lesson 10's claims on the real kernel: in a cgroup namespace the container's cgroup is `/`,
and a cgroupfs it mounts shows only its own subtree."""

from __future__ import annotations

import os
import subprocess
import time
from subprocess import PIPE

import pytest

import pycontain
from pycontain import procfs
from pycontain.cgroups.base import leftover_cgroups
from pycontain.checks import CheckFailed, children, lesson10
from pycontain.namespaces import cgroup
from pycontain.observe import widgets


def test_with_limits_every_hierarchy_shows_the_container_at_the_root():
    view = widgets.look_inside(pids_max=20)
    assert view.cgroups and set(view.cgroups.values()) == {"/"}, view.cgroups
    assert view.children == []  # the mount shows the container's cgroup, with no sibling
    assert view.procs and set(view.procs) <= {1, 2, 3, 4, 5}  # only its own processes


def test_without_the_namespace_the_host_path_shows():
    view = widgets.look_inside(pids_max=20, namespaces={"mnt", "pid"})
    [name] = {p.rsplit("/", 1)[-1] for c, p in view.cgroups.items() if c in ("pids", "")}
    assert name.startswith("pycontain-ctr-")
    assert view.shows_own  # the mount shows the host's tree, the container's cgroup in it


def test_without_limits_the_callers_cgroup_is_the_root():
    result = pycontain.run(["cat", "/proc/self/cgroup"], namespaces={"cgroup"}, timeout_s=60)
    assert set(cgroup.parse(result.stdout).values()) == {"/"}
    assert set(cgroup.parse(result.stdout)) == set(cgroup.own())


def test_the_container_is_in_a_new_cgroup_namespace():
    with pycontain.spawn(["sleep", "30"], namespaces={"cgroup"}, pids_max=20) as container:
        assert container.namespaces()["cgroup"] != procfs.namespace("self", "cgroup")
        # seen from the host, the same process is in the container's cgroup
        assert container.cgroup is not None
        assert any(p.endswith(container.cgroup.name) for p in cgroup.own(container.pid).values())


def test_default_containers_have_no_cgroup_namespace():
    with pycontain.spawn(["sleep", "30"]) as container:
        assert container.namespaces()["cgroup"] == procfs.namespace("self", "cgroup")


# --- the lesson's checks -----------------------------------------------------------------------

#: the lesson's own way: wait for a line, then unshare and run what follows
WAITS = ["sh", "-c", 'read go; exec unshare --cgroup "$@"', "sh"]


def ours(paths):
    """The check's own cgroups among `paths` (its labels), never anybody else's."""
    return {p for p in paths if p.rsplit("/", 1)[-1].startswith(
        ("pycontain-ns-", "pycontain-a-", "pycontain-b-"))}


@pytest.fixture
def nothing_left():
    """No process of this test's, and none of the check's cgroups, outlive a check."""
    before, cgroups_before = children(), ours(leftover_cgroups())
    yield
    deadline = time.monotonic() + 5
    while (left := children() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes left behind: {sorted(left)}"
    assert ours(leftover_cgroups()) <= cgroups_before


def placed_then_unshared(cg, argv):
    proc = subprocess.Popen(WAITS + argv, stdin=PIPE, stdout=PIPE, text=True)
    cg.attach(proc.pid)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return proc


def unshared_then_placed(cg, argv):  # the deliberate failure, copied
    proc = subprocess.Popen(["unshare", "--cgroup", "sh", "-c", 'read go; exec "$@"', "sh",
                             *argv], stdin=PIPE, stdout=PIPE, text=True)
    while procfs.namespace(proc.pid, "cgroup") == procfs.namespace("self", "cgroup"):
        time.sleep(0.01)
    return placed_after(cg, proc)


def placed_after(cg, proc):
    cg.attach(proc.pid)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return proc


def never_unshared(cg, argv):
    return placed_after(cg, subprocess.Popen(["sh", "-c", 'read go; exec "$@"', "sh", *argv],
                                             stdin=PIPE, stdout=PIPE, text=True))


def never_placed(cg, argv):
    return subprocess.Popen(["unshare", "--cgroup", *argv], stdout=PIPE, text=True)


def not_piped(cg, argv):
    return placed_after(cg, subprocess.Popen(WAITS + argv, stdin=PIPE,
                                             stdout=subprocess.DEVNULL, text=True))


def not_flushed(cg, argv):
    proc = subprocess.Popen(WAITS + argv, stdin=PIPE, stdout=PIPE, text=True)
    cg.attach(proc.pid)
    proc.stdin.write("go\n")  # buffered: the process never reads it
    return proc


def raises_after_starting(cg, argv):
    subprocess.Popen(["sleep", "300"])
    raise RuntimeError("oops")


def test_the_check_passes_placed_then_unshared(nothing_left):
    passed = lesson10.check_placed_then_unshared(placed_then_unshared)
    assert "at '/'" in passed
    assert "def unshare_cgroup_namespace" in passed._repr_markdown_()


@pytest.mark.parametrize("place_then_unshare,teaching", [
    (unshared_then_placed, "before you placed it"),
    (never_unshared, "in the host's cgroup namespace"),
    (never_placed, "did not run in pycontain-ns-"),
    (not_piped, "stdout is not piped"),
    (not_flushed, "Send it and flush"),
    (raises_after_starting, "the check stopped the 1 process(es) your function had started"),
])
def test_the_check_names_the_wrong_turn(nothing_left, monkeypatch, place_then_unshare,
                                        teaching):
    monkeypatch.setattr(lesson10, "READ_S", 2.0)
    with pytest.raises(CheckFailed) as info:
        lesson10.check_placed_then_unshared(place_then_unshare)
    assert teaching in str(info.value)
    assert "unshare --cgroup" not in str(info.value)  # where to look, not the code to write


def test_a_learner_exception_leaves_no_process_and_no_cgroup(nothing_left):
    started = []

    def raises(cg, argv):
        started.append(subprocess.Popen(["sleep", "300"]))
        cg.attach(started[0].pid)
        raise RuntimeError("oops")

    with pytest.raises(CheckFailed, match="raised RuntimeError"):
        lesson10.check_placed_then_unshared(raises)
    assert not os.path.exists(f"/proc/{started[0].pid}")


INNER = 'echo unshared; read moved; exec "$@"'


def sideways(a, b, argv):
    proc = subprocess.Popen(["sh", "-c", 'read go; exec unshare --cgroup sh -c "$0" sh "$@"',
                             INNER, *argv], stdin=PIPE, stdout=PIPE, text=True)
    placed_after(a, proc)
    assert proc.stdout.readline() == "unshared\n"
    b.attach(proc.pid)
    proc.stdin.write("moved\n")
    proc.stdin.flush()
    return proc


def test_the_stretch_passes_a_root_beside_the_cgroup(nothing_left):
    assert "/../pycontain-b-" in lesson10.check_sideways(sideways)


@pytest.mark.parametrize("wrong,teaching", [
    (lambda a, b, argv: placed_then_unshared(a, argv), "Move it to pycontain-b-"),
    (lambda a, b, argv: unshared_then_placed(b, argv), "it unshared before you placed it in"),
])
def test_the_stretch_names_the_wrong_turn(nothing_left, wrong, teaching):
    with pytest.raises(CheckFailed, match=teaching):
        lesson10.check_sideways(wrong)
