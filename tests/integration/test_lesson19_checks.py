"""Lesson 19's exercises on the real kernel: each check passes with the library's answer and
with one written from the kernel's files, names each wrong turn a newcomer takes (SIGSTOP, no
wait for the kernel, the other version's value, SIGCONT to thaw, the first process only, one
racing pass over cgroup.procs, a kill of a frozen tree), and leaves nothing when the learner's
function raises: no container, no cgroup directory, no state directory."""

from __future__ import annotations

import os
import signal
import time

import pytest

from pycontain import runtime
from pycontain.checks import CheckFailed, lesson19


def write(path, value):
    with open(path, "w") as f:
        f.write(value)


def hand_pause(box):
    """pause(box) from the kernel's files, as the lesson's solution writes it."""
    path, version = box.cgroup.freezer_file()
    done = os.path.join(os.path.dirname(path), "cgroup.events" if version == 2
                        else "freezer.state")
    write(path, "1" if version == 2 else "FROZEN")
    deadline = time.monotonic() + 5
    while not (("frozen 1" in open(done).read().splitlines()) if version == 2
               else open(done).read().strip() == "FROZEN"):
        assert time.monotonic() < deadline
        time.sleep(0.005)


def hand_resume(box):
    path, version = box.cgroup.freezer_file()
    write(path, "0" if version == 2 else "THAWED")


def v1_state(box):
    return os.path.join(box.cgroup.dirs["freezer"], "freezer.state")


def leaves_nothing():
    assert runtime.unwaited() == []
    assert not [d for d in os.listdir("/tmp") if d.startswith("pycontain-check19-")]


def test_the_pause_check_passes_with_the_library_and_with_the_kernels_files():
    print("\n" + lesson19.check_pause_and_resume(lambda box: box.freeze(),
                                                 lambda box: box.thaw()))
    assert "said so at once" in lesson19.check_pause_and_resume(hand_pause, hand_resume)
    leaves_nothing()


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/freezer"), reason="no v1 freezer")
def test_the_pause_check_takes_v1s_freezer_on_a_hybrid_host():
    def pause(box):
        write(v1_state(box), "FROZEN")
        deadline = time.monotonic() + 5
        while open(v1_state(box)).read().strip() != "FROZEN":
            assert time.monotonic() < deadline
            time.sleep(0.005)

    assert "freezer.state said so" in lesson19.check_pause_and_resume(
        pause, lambda box: write(v1_state(box), "THAWED"))
    leaves_nothing()


@pytest.mark.parametrize("pause,resume,message", [
    (lambda box: None, lambda box: None, "does not say the container is frozen"),
    (lambda box: box.signal(signal.SIGSTOP), lambda box: box.signal(signal.SIGCONT),
     "that is SIGSTOP"),
    (lambda box: write(box.cgroup.freezer_file()[0], "FROZEN"), lambda box: None,
     "refused the value"),
    (hand_pause, lambda box: box.signal(signal.SIGCONT), "still holds it frozen"),
    (hand_pause, lambda box: None, "still holds it frozen"),
])
def test_the_pause_check_names_the_wrong_turn_and_leaves_nothing(pause, resume, message):
    with pytest.raises(CheckFailed, match=message) as info:
        lesson19.check_pause_and_resume(pause, resume)
    assert "box.freeze" not in str(info.value) and "box.thaw" not in str(info.value)
    leaves_nothing()


def test_the_pause_check_sees_a_pause_that_does_not_wait_for_the_kernel():
    """The write only asks; the kernel says frozen a moment later (19 times in 20 here): of
    three tries, one at least must be caught."""
    messages = []
    for _ in range(3):
        try:
            lesson19.check_pause_and_resume(
                lambda box: write(box.cgroup.freezer_file()[0],
                                  "1" if box.cgroup.freezer_file()[1] == 2 else "FROZEN"),
                hand_resume)
        except CheckFailed as e:
            messages.append(str(e))
            break
    assert messages and "before the kernel had finished freezing" in messages[0]
    leaves_nothing()


def test_a_pause_that_raises_with_the_container_frozen_leaves_nothing():
    seen = []

    def pause(box):
        seen.append(box)
        box.freeze()
        raise RuntimeError("a learner's mistake")

    with pytest.raises(CheckFailed, match="pause.box. raised RuntimeError"):
        lesson19.check_pause_and_resume(pause, hand_resume)
    (box,) = seen
    assert not box.running and box.cgroup.removed
    assert not any(os.path.isdir(d) for d in box.cgroup.dirs.values())
    leaves_nothing()


def hand_kill(box):
    write(box.cgroup.file("cgroup.kill"), "1")


def one_pass(box):
    for pid in box.cgroup.procs():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_the_kill_check_passes_with_the_library_and_with_the_kernels_file():
    print("\n" + lesson19.check_kill_tree(lambda box: box.kill_all()))
    if os.path.exists("/sys/fs/cgroup/unified/cgroup.procs") or \
            os.path.exists("/sys/fs/cgroup/cgroup.procs"):
        lesson19.check_kill_tree(hand_kill)
    leaves_nothing()


@pytest.mark.parametrize("kill_tree,message", [
    (lambda box: box.signal(signal.SIGKILL), "the first process is gone, but"),
    (lambda box: None, "its first process among them: what did"),
    (lambda box: box.freeze(), "frozen: a frozen task gets no signal"),
])
def test_the_kill_check_names_the_wrong_turn_and_leaves_nothing(kill_tree, message):
    with pytest.raises(CheckFailed, match=message) as info:
        lesson19.check_kill_tree(kill_tree)
    assert "kill_all" not in str(info.value)
    leaves_nothing()


def test_the_kill_check_sees_a_kill_of_a_frozen_tree_by_its_v1_freezer():
    if not os.path.isdir("/sys/fs/cgroup/freezer"):
        pytest.skip("no v1 freezer")

    def kill_tree(box):
        write(v1_state(box), "FROZEN")
        one_pass(box)

    with pytest.raises(CheckFailed, match="frozen: a frozen task gets no signal"):
        lesson19.check_kill_tree(kill_tree)
    leaves_nothing()


def test_a_kill_that_raises_leaves_nothing():
    seen = []

    def kill_tree(box):
        seen.append(box)
        raise RuntimeError("a learner's mistake")

    with pytest.raises(CheckFailed, match="kill_tree.box. raised RuntimeError"):
        lesson19.check_kill_tree(kill_tree)
    assert seen[0].cgroup.removed and not seen[0].running
    leaves_nothing()


def stop(box, grace_s, *, everyone=True, wait=True):
    cgroup = box.cgroup
    cgroup.freeze()
    try:
        for pid in cgroup.procs() if everyone else [box.pid]:
            os.kill(pid, signal.SIGTERM)
    finally:
        cgroup.thaw()
    deadline = time.monotonic() + (grace_s if wait else 0)
    while cgroup.populated() and time.monotonic() < deadline:
        time.sleep(0.02)
    left = len(cgroup.procs())
    cgroup.kill()
    return left


def test_the_stretch_passes_with_systemctl_stops_way():
    print("\n" + lesson19.check_stop_politely(stop))
    leaves_nothing()


@pytest.mark.parametrize("learner,message", [
    (lambda box, grace_s: stop(box, grace_s, everyone=False), r"only 0 of the 3"),
    (lambda box, grace_s: box.kill_all(), r"only 0 of the 3"),
    (lambda box, grace_s: stop(box, grace_s) + 1, r"returned 4: 3 processes"),
    (lambda box, grace_s: box.signal(signal.SIGTERM), r"still in the container's cgroup"),
])
def test_the_stretch_names_the_wrong_turn_and_leaves_nothing(learner, message):
    with pytest.raises(CheckFailed, match=message):
        lesson19.check_stop_politely(learner)
    leaves_nothing()


def test_a_stretch_that_raises_leaves_nothing():
    with pytest.raises(CheckFailed, match="raised ZeroDivisionError"):
        lesson19.check_stop_politely(lambda box, grace_s: 1 / 0)
    leaves_nothing()
