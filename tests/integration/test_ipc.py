"""Lesson 07 on the real kernel: IPC objects are isolated both ways by the IPC namespace.

Every claim of the lesson: host objects (a SysV segment and a POSIX queue) are invisible in a
container with its own IPC namespace and visible in one without it; objects made inside are
invisible to the host; the same key makes two segments; a host id or name means nothing inside;
objects outlive their creator but not their namespace; bad input creates nothing; the check
fails on wrong answers; and nothing is left on the host.
"""

from __future__ import annotations

import errno
import re
import subprocess
import threading

import pytest

import pycontain
from pycontain import lab, procfs, runtime
from pycontain.checks import CheckFailed, lesson07
from pycontain.errors import SpecError, SyscallError
from pycontain.namespaces import ipc
from pycontain.observe import probe

ALL_BUT_IPC = runtime.DEFAULT_NAMESPACES - {"ipc"}


def host_view() -> ipc.IpcView:
    [view] = ipc.run_in(None, "view")
    return view


def inside(*steps, namespaces=("ipc",)):
    return ipc.answer(pycontain.run(ipc.command(*steps), namespaces=namespaces, timeout_s=60))


@pytest.fixture(scope="module", autouse=True)
def nothing_left_on_the_host():
    before = host_view().objects()
    yield
    assert host_view().objects() == before, "a test left an IPC object on the host"
    assert not [i for i in lab.leftovers() if i.startswith(("shm", "mqueue"))]


@pytest.fixture
def host_objects(scratch):
    """A segment and a queue in the host's IPC namespace, removed after the test."""
    key = ipc.new_key()
    shmid = ipc.create_segment(key, 4096)
    scratch.defer(lambda: ipc.remove_segment(shmid), "remove the segment")
    name = ipc.create_queue(ipc.new_queue_name("test"))
    scratch.defer(lambda: ipc.remove_queue(name), "remove the queue")
    return key, shmid, name


def test_host_objects_are_invisible_inside_and_visible_without_an_ipc_namespace(host_objects):
    key, shmid, name = host_objects
    host = host_view()
    [boxed] = inside("view")
    [control] = inside("view", namespaces=ALL_BUT_IPC)
    seen = ipc.Visibility({"host": host, "boxed": boxed, "control": control})
    assert seen.sides_seeing(f"shm {key:#010x}") == {"host", "control"}
    assert seen.sides_seeing(f"mq {name}") == {"host", "control"}
    assert boxed.namespace != host.namespace == control.namespace
    assert host.namespace == str(procfs.namespace("self", "ipc"))
    # a new IPC namespace starts empty, whatever the host holds
    assert (boxed.segments, boxed.queues, boxed.message_queues, boxed.semaphores) == (
        (), (), (), ())
    # ipcs(1) reads the same files and agrees
    listed = pycontain.run(["ipcs", "-m"], namespaces={"ipc"}).stdout
    assert f"{key:#010x}" not in listed
    assert f"{key:#010x}" in pycontain.run(["ipcs", "-m"], namespaces=ALL_BUT_IPC).stdout


def test_objects_made_inside_are_invisible_to_the_host():
    key, name = ipc.new_key(), ipc.new_queue_name("inside")
    shmid, created, boxed = inside(("create_segment", key, 8192), ("create_queue", name), "view")
    assert created == name and shmid in {s.shmid for s in boxed.segments}
    assert key in boxed.keys() and name in boxed.queues
    host = host_view()
    assert key not in host.keys() and name not in host.queues
    assert key not in {s.key for s in ipc.segments()}  # read in this process too


def test_the_same_key_and_name_make_two_objects(host_objects):
    key, _, name = host_objects
    _, _, boxed = inside(("create_segment", key, 8192), ("create_queue", name), "view")
    assert [s.size_bytes for s in boxed.segments if s.key == key] == [8192]
    assert [s.size_bytes for s in ipc.segments() if s.key == key] == [4096]
    assert name in boxed.queues and name in host_view().queues


def test_a_host_id_or_name_means_nothing_inside(host_objects):
    _, shmid, name = host_objects
    with pytest.raises(SyscallError) as attached:
        inside(("attach_segment", shmid))
    assert (attached.value.call, attached.value.errno) == ("shmat", errno.EINVAL)
    assert "lesson 07" in attached.value.hint
    with pytest.raises(SyscallError) as opened:
        inside(("open_queue", name))
    assert (opened.value.call, opened.value.errno) == ("mq_open", errno.ENOENT)
    assert "lesson 07" in opened.value.hint
    # without the IPC namespace both work
    assert inside(("attach_segment", shmid), ("open_queue", name),
                  namespaces=ALL_BUT_IPC) == [shmid, name]


def test_objects_outlive_their_creator_but_not_their_namespace(scratch):
    size = 32 << 20
    before = ipc.shmem_bytes()
    box = pycontain.spawn(["sleep", "300"], namespaces={"ipc"})
    scratch.defer(lambda: probe.stop(box), "stop the box")
    key, name = ipc.new_key(), ipc.new_queue_name("dies")
    ipc.run_in(box.pid, ("create_segment", key, size, True), ("create_queue", name))
    [held] = ipc.run_in(box.pid, "view")  # the creating process has exited
    assert [(s.key, s.size_bytes, s.nattch) for s in held.segments] == [(key, size, 0)]
    assert held.queues == (name,)
    during = ipc.shmem_bytes()
    assert during - before > size // 2  # the written pages are shared memory now
    probe.stop(box)
    assert ipc.wait_for_shmem_below(during - size // 2) < during - size // 2
    host = host_view()
    assert key not in host.keys() and name not in host.queues


def test_bad_input_is_rejected_before_anything_is_created():
    before = host_view()
    for bad in (lambda: ipc.create_segment(0x1234), lambda: ipc.create_segment(ipc.KEY_BASE, 0),
                lambda: ipc.create_queue("/not-ours"), lambda: ipc.create_queue("pycontain-q"),
                lambda: inside(("create_queue", "/pycontain-a/b"))):
        with pytest.raises(SpecError):
            bad()
    with pytest.raises(SpecError):
        ipc.command(("mount", "/"))
    assert host_view() == before


def test_a_multithreaded_process_never_mounts_to_list_queues():
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    mounts, mnt = procfs.mountinfo("self"), procfs.namespace("self", "mnt")
    try:
        with pytest.raises(pycontain.PycontainError, match="fresh process"):
            ipc.queues()
    finally:
        stop.set()
        helper.join()
    assert (procfs.mountinfo("self"), procfs.namespace("self", "mnt")) == (mounts, mnt)


def test_leftovers_lists_pycontain_segments(scratch):
    shmid = ipc.create_segment(ipc.new_key())
    scratch.defer(lambda: ipc.remove_segment(shmid), "remove the segment")
    assert f"shm {shmid}" in lab.leftovers()


def solution(practice):
    box = pycontain.spawn(["sleep", "300"], namespaces={"ipc"})
    practice.defer(lambda: probe.stop(box), "stop the container")
    shmid = ipc.create_segment(ipc.new_key())
    practice.defer(lambda: ipc.remove_segment(shmid), "remove the segment")
    name = ipc.create_queue(ipc.new_queue_name("host"))
    practice.defer(lambda: ipc.remove_queue(name), "remove the queue")
    ipc.run_in(box.pid, ("create_segment", ipc.new_key()),
               ("create_queue", ipc.new_queue_name("in")))
    return box


def test_the_check_passes_the_solution():
    assert "stayed invisible" in lesson07.check_isolated_both_ways(solution)


def test_the_check_fails_and_tidies_up_when_nothing_is_removed():
    def forgetful(practice):
        box = pycontain.spawn(["sleep", "300"], namespaces={"ipc"})
        ipc.create_segment(ipc.new_key())
        ipc.create_queue(ipc.new_queue_name("host"))
        ipc.run_in(box.pid, ("create_segment", ipc.new_key()),
                   ("create_queue", ipc.new_queue_name("in")))
        return box

    before = host_view()
    with pytest.raises(CheckFailed, match="left the container running"):
        lesson07.check_isolated_both_ways(forgetful)
    assert host_view() == before  # the check removed the segment and the queue


def shares_the_hosts(practice):
    box = pycontain.spawn(["sleep", "300"], namespaces={"uts"})
    practice.defer(lambda: probe.stop(box), "stop the container")
    return box


def runs_it_to_the_end(practice):
    return pycontain.run(["true"], namespaces={"ipc"})


def stops_it_at_once(practice):  # the defer's argument called now, not at close()
    box = pycontain.spawn(["sleep", "300"], namespaces={"ipc"})
    practice.defer(probe.stop(box), "stop the container")
    return box


def makes_the_inside_ones_here(practice):
    box = pycontain.spawn(["sleep", "300"], namespaces={"ipc"})
    practice.defer(lambda: probe.stop(box), "stop the container")
    for tag in ("host", "inside"):
        shmid = ipc.create_segment(ipc.new_key())
        practice.defer(lambda shmid=shmid: ipc.remove_segment(shmid), "remove a segment")
        name = ipc.create_queue(ipc.new_queue_name(tag))
        practice.defer(lambda name=name: ipc.remove_queue(name), "remove a queue")
    return box


def one_key_for_both(practice):
    box = pycontain.spawn(["sleep", "300"], namespaces={"ipc"})
    practice.defer(lambda: probe.stop(box), "stop the container")
    key, name = ipc.new_key(), ipc.new_queue_name("both")
    shmid = ipc.create_segment(key)
    practice.defer(lambda: ipc.remove_segment(shmid), "remove the segment")
    ipc.create_queue(name)
    practice.defer(lambda: ipc.remove_queue(name), "remove the queue")
    ipc.run_in(box.pid, ("create_segment", key), ("create_queue", name))
    return box


def raises_after_making_things(practice):  # nothing registered: the check must tidy up alone
    pycontain.spawn(["sleep", "300"], namespaces={"ipc"})
    ipc.create_segment(ipc.new_key())
    ipc.create_queue(ipc.new_queue_name("host"))
    raise ValueError("not yet")


@pytest.mark.parametrize("wrong,says", [
    (shares_the_hosts, "in this notebook's IPC namespace, the host's"),
    (runs_it_to_the_end, "the result of a container that has ended"),
    (stops_it_at_once, "was it called now instead of handed over?"),  # Lab.defer refuses it
    (makes_the_inside_ones_here, "was made in this notebook"),
    (one_key_for_both, "the same key or name twice"),
    (raises_after_making_things, "raised ValueError: not yet"),
    (lambda practice: None, "return the container"),
])
def test_the_check_names_the_wrong_turn_and_leaves_nothing(wrong, says):
    before = host_view()
    with pytest.raises(CheckFailed, match=re.escape(says)) as info:
        lesson07.check_isolated_both_ways(wrong)
    assert "namespaces={" not in str(info.value) and "ipc.create" not in str(info.value)
    assert host_view() == before  # segments and queues made on the host were removed
    assert runtime.unwaited() == []  # and the containers stopped


def pod(practice):
    first = pycontain.spawn(["sleep", "300"], namespaces={"ipc"})
    practice.defer(lambda: probe.stop(first), "stop the first container")
    second = pycontain.spawn(["nsenter", f"--ipc=/proc/{first.pid}/ns/ipc", "sleep", "300"],
                             namespaces={"uts"})
    practice.defer(lambda: probe.stop(second), "stop the second container")
    return first, second


def two_namespaces(practice):
    boxes = [pycontain.spawn(["sleep", "300"], namespaces={"ipc"}) for _ in range(2)]
    for box in boxes:
        practice.defer(lambda box=box: probe.stop(box), "stop a container")
    return tuple(boxes)


def joins_from_its_own_proc(practice):  # its /proc is its own: the first's pid is not there
    first = pycontain.spawn(["sleep", "300"], namespaces={"ipc"})
    practice.defer(lambda: probe.stop(first), "stop the first container")
    second = pycontain.spawn(["nsenter", f"--ipc=/proc/{first.pid}/ns/ipc", "sleep", "300"],
                             namespaces={"mnt", "pid"})
    practice.defer(lambda: probe.stop(second), "stop the second container")
    return first, second


def forgets_the_second(practice):
    first, second = pod(lab.Lab(check=False))  # registered on a lab nobody closes
    return first, second


def test_the_stretch_passes_a_pod_and_stops_it():
    assert "two containers shared" in lesson07.check_pod(pod)
    assert runtime.unwaited() == []


@pytest.mark.parametrize("wrong,says", [
    (two_namespaces, "an IPC namespace of its own"),
    (joins_from_its_own_proc, "the second container had ended"),
    (forgets_the_second, "left 2 of the pod's containers running"),
    (lambda practice: pod(practice)[0], "return the two containers"),
])
def test_the_stretch_names_the_wrong_turn(wrong, says):
    with pytest.raises(CheckFailed, match=re.escape(says)):
        lesson07.check_pod(wrong)
    assert runtime.unwaited() == []


def test_sweep_removes_a_leftover_segment(monkeypatch):
    shmid = ipc.create_segment(ipc.new_key())
    monkeypatch.setattr(lab, "leftovers", lambda: [f"shm {shmid}"])  # only ours: others may run
    assert lab.sweep() == [f"removed shm {shmid}"]
    assert shmid not in {s.shmid for s in ipc.segments()}


def test_each_ipc_namespace_has_its_own_limits(scratch):
    path = "/proc/sys/fs/mqueue/queues_max"
    with open(path) as f:
        host_limit = f.read()
    box = pycontain.spawn(["sleep", "300"], namespaces={"ipc"})
    scratch.defer(lambda: probe.stop(box), "stop the box")
    assert box.namespaces()["ipc"] != procfs.namespace("self", "ipc")
    try:
        done = subprocess.run(["nsenter", f"--target={box.pid}", "--ipc", "--", "sh", "-c",
                               f"echo 7 > {path} && cat {path}"],
                              capture_output=True, text=True, timeout=30)
        assert done.stdout == "7\n"
        with open(path) as f:
            assert f.read() == host_limit
    finally:
        with open(path) as f:
            changed = f.read() != host_limit
        if changed:  # never leave the host changed, even when the claim is wrong
            with open(path, "w") as f:
                f.write(host_limit)
