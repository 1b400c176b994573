"""The IPC namespace module without root: parsing /proc/sysvipc, input checks, the calls it makes
(recorded, not made), the container-side program and its answers, the visibility table."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import threading

import pytest

from pycontain import syscalls
from pycontain.errors import PycontainError, SpecError, SyscallError, to_wire
from pycontain.namespaces import ipc
from pycontain.syscalls import IpcCmd, IpcFlag, OpenFlag
from pycontain.testing import RecordingSyscalls

SHM = """\
       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap
1885536257          0   600                  4096 17158 17158      0     0     0     0     0          0          0 1795955025                     0                     0
         0         7  1600                 65536   100   101      2  1000  1000  1000  1000 1795955025          0 1795955025                  4096                     0
"""  # noqa: E501


class IpcRecorder(RecordingSyscalls):
    """Records the IPC calls too, and answers with made-up ids."""

    def shmget(self, key, size, shmflg=0):
        self._record("shmget", key, size, IpcFlag(shmflg))
        return 5

    def shmctl(self, shmid, cmd):
        self._record("shmctl", shmid, IpcCmd(cmd))

    def shmat(self, shmid, shmflg=0):
        self._record("shmat", shmid, shmflg)
        return 0x1000

    def shmdt(self, address):
        self._record("shmdt", address)

    def mq_open(self, name, oflag=0, mode=0o600):
        self._record("mq_open", name, OpenFlag(oflag), mode)
        return 9

    def mq_close(self, mqdes):
        self._record("mq_close", mqdes)

    def mq_unlink(self, name):
        self._record("mq_unlink", name)


@pytest.fixture
def kernel():
    recorder = IpcRecorder()
    previous = syscalls.use(recorder)
    try:
        yield recorder
    finally:
        syscalls.use(previous)


def test_segments_are_read_from_proc_sysvipc(tmp_path):
    path = tmp_path / "shm"
    path.write_text(SHM)
    first, second = ipc.segments(str(path))
    assert first == ipc.Segment(0x70630001, 0, 4096, 0) and first.key in ipc.KEYS
    assert (second.key, second.shmid, second.size_bytes, second.nattch) == (0, 7, 65536, 2)
    assert first.label == "shm 0x70630001"
    assert ipc.segments(str(tmp_path / "missing")) == []  # a kernel without CONFIG_SYSVIPC


@pytest.mark.parametrize("key", [0, 0x70620000, 0x70640000, -1, "0x70630001", 1.5])
def test_keys_outside_pycontains_range_are_refused(key):
    with pytest.raises(SpecError) as caught:
        ipc.validate_key(key)
    assert caught.value.parameter == "key" and "0x70630000-0x7063ffff" in str(caught.value)


@pytest.mark.parametrize("name", ["pycontain-q", "/", "/pycontain-a/b", "/other", "/pycontain-\0",
                                  "/pycontain-" + "x" * 250, None])
def test_bad_queue_names_are_refused(name):
    with pytest.raises(SpecError) as caught:
        ipc.validate_queue_name(name)
    assert caught.value.parameter == "name"


def test_any_valid_name_may_be_opened_but_only_ours_created():
    assert ipc.validate_queue_name("/orders", ours=False) == "/orders"
    with pytest.raises(SpecError):
        ipc.validate_queue_name("/orders")
    assert ipc.new_queue_name("host").startswith("/pycontain-host-")


def test_create_segment_asks_for_a_new_private_segment(kernel):
    assert ipc.create_segment(0x70630002, 8192) == 5
    assert kernel.calls == [("shmget", (0x70630002, 8192,
                                        IpcFlag.IPC_CREAT | IpcFlag.IPC_EXCL | 0o600))]
    ipc.remove_segment(5)
    assert kernel.calls[-1] == ("shmctl", (5, IpcCmd.IPC_RMID))


@pytest.mark.parametrize("size", [0, -1, ipc.MAX_SEGMENT_BYTES + 1, "4096"])
def test_bad_sizes_are_refused_before_any_call(kernel, size):
    with pytest.raises(SpecError) as caught:
        ipc.create_segment(0x70630002, size)
    assert caught.value.parameter == "size_bytes" and kernel.calls == []


def test_attach_detaches_again(kernel):
    ipc.attach_segment(3)
    assert kernel.names() == ["shmat", "shmdt"]


def test_queues_are_created_exclusively_then_closed(kernel):
    assert ipc.create_queue("/pycontain-q") == "/pycontain-q"
    flags = OpenFlag.O_CREAT | OpenFlag.O_EXCL | OpenFlag.O_RDWR
    assert kernel.calls == [("mq_open", ("/pycontain-q", flags, 0o600)), ("mq_close", (9,))]
    ipc.open_queue("/orders")
    ipc.remove_queue("/orders")
    assert kernel.calls[2:] == [("mq_open", ("/orders", OpenFlag(0), 0o600)),
                                ("mq_close", (9,)), ("mq_unlink", ("/orders",))]


def test_listing_queues_refuses_a_multithreaded_process(kernel):
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    try:
        with pytest.raises(PycontainError, match="fresh process"):
            ipc.queues()
    finally:
        stop.set()
        helper.join()
    assert kernel.calls == []  # no unshare, no mount


def test_errors_show_flags_by_name():
    e = SyscallError("shmget", (0x70630001, 4096, IpcFlag.IPC_CREAT | IpcFlag.IPC_EXCL | 0o600),
                     errno.EEXIST)
    assert str(e).startswith("shmget(1885536257, 4096, IPC_CREAT|IPC_EXCL|0x180) failed: EEXIST")
    assert "(lesson 07)" in str(e)


def test_command_runs_the_steps_in_a_fresh_interpreter():
    argv = ipc.command("view", ("create_queue", "/pycontain-q"))
    assert argv[:4] == [sys.executable, "-I", "-S", "-c"]
    assert json.loads(argv[-1])["args"] == [[["view"], ["create_queue", "/pycontain-q"]]]
    with pytest.raises(SpecError) as caught:
        ipc.command(("unshare", 0))
    assert caught.value.parameter == "steps"


def test_the_container_side_program_answers_with_results_or_the_error():
    # without root: a step that fails in userspace crosses back as the same error
    argv = ipc.command(("create_queue", "no-slash"))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    with pytest.raises(SpecError) as caught:
        ipc.answer(done)
    assert caught.value.parameter == "name"
    assert any("while running create_queue in ipc:[" in n for n in caught.value.__notes__)


def test_answer_rebuilds_views_and_kernel_errors():
    view = {"namespace": "ipc:[1]", "segments": [[0x70630001, 0, 4096, 0]], "queues": ["/q"],
            "message_queues": [], "semaphores": [7]}
    ok = subprocess.CompletedProcess([], 0, json.dumps({"result": [3, view]}) + "\n", "")
    shmid, seen = ipc.answer(ok)
    assert shmid == 3 and seen.keys() == {0x70630001} and seen.semaphores == (7,)
    error = to_wire(SyscallError("shmat", (1, 0), errno.EINVAL))
    failed = subprocess.CompletedProcess([], 1, json.dumps({"error": error}), "")
    with pytest.raises(SyscallError) as caught:
        ipc.answer(failed)
    assert (caught.value.call, caught.value.errno) == ("shmat", errno.EINVAL)
    with pytest.raises(PycontainError, match="no answer.*Traceback"):
        ipc.answer(subprocess.CompletedProcess([], 1, "", "Traceback ..."))


def test_visibility_table_says_who_sees_what():
    shm = ipc.Segment(0x70630001, 4, 4096, 0)
    host = ipc.IpcView("ipc:[1]", (shm, ipc.Segment(0x1234, 9, 10, 1)), ("/pycontain-h", "/x"))
    boxed = ipc.IpcView("ipc:[2]", (), ("/pycontain-b",))
    seen = ipc.Visibility({"host": host, "box": boxed})
    assert seen.labels == ["mq /pycontain-b", "mq /pycontain-h", "shm 0x70630001"]  # ours only
    assert seen.sides_seeing("shm 0x70630001") == {"host"}
    assert seen.sides_seeing("mq /pycontain-b") == {"box"}
    assert repr(seen).splitlines() == [
        "object           host     box",
        "mq /pycontain-b  –        ✓",
        "mq /pycontain-h  ✓        –",
        "shm 0x70630001   shmid 4  –",
    ]
    assert "<table>" in seen._repr_html_()
    assert len(ipc.Visibility({"host": host}, only_ours=False).labels) == 4
