"""The state of detached containers: the record's format, its atomic writes, lookup by id,
prefix or name, and telling a live process from a reused pid (pycontain.state)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from pycontain import settings, state
from pycontain.errors import SpecError

ONE, TWO, THREE = "ab1" + "0" * 61, "ab2" + "0" * 61, "c" * 64
#: a process that is not running: pid 1 never started at tick -1
GONE = {"pid": 1, "start_time": -1, "boot_id": "x"}


@pytest.fixture(autouse=True)
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.RUN_DIR_VARIABLE, str(tmp_path))
    return tmp_path


def test_the_run_directory_holds_the_state_the_lock_and_the_logs(run_dir):
    record = state.create(ONE, "web", image="/rootfs", command=["sleep", "9"])
    assert sorted(os.listdir(run_dir / ONE)) == ["lock", "state.json", "stderr.log",
                                                 "stdout.log"]
    on_disk = json.loads((run_dir / ONE / "state.json").read_text())
    assert on_disk == record
    assert on_disk["status"] == "created" and on_disk["name"] == "web"
    assert on_disk["supervisor"] == state.process(os.getpid())  # the creator, until taken over
    assert {"id", "created", "started", "finished", "exit_code", "signal", "reason", "pid",
            "image", "command"} <= set(on_disk)
    assert os.readlink(run_dir / "names" / "web") == ONE


def test_an_update_replaces_the_file_whole_and_leaves_no_temporary(run_dir):
    state.create(ONE, None)
    before = os.stat(run_dir / ONE / "state.json").st_ino
    assert state.update(ONE, status="running", pid=42)["pid"] == 42
    assert os.stat(run_dir / ONE / "state.json").st_ino != before  # renamed over, not rewritten
    assert state.read(ONE)["status"] == "running"
    assert not [n for n in os.listdir(run_dir / ONE) if n.endswith(".tmp")]


def test_a_taken_name_is_refused_and_nothing_is_made(run_dir):
    state.create(ONE, "web")
    with pytest.raises(SpecError, match="a name no other container has") as caught:
        state.create(TWO, "web")
    assert caught.value.parameter == "name" and ONE[:12] in (caught.value.hint or "")
    assert not (run_dir / TWO).exists() and os.readlink(run_dir / "names" / "web") == ONE


@pytest.mark.parametrize("name", ["x", "-web", "web/1", "a b", ""])
def test_a_name_docker_would_refuse_is_refused(name, run_dir):
    with pytest.raises(SpecError, match="`name` must be two or more of"):
        state.create(ONE, name)
    assert not (run_dir / ONE).exists()


def test_find_takes_the_id_the_name_or_a_unique_prefix():
    for container_id, name in ((ONE, "web"), (TWO, None), (THREE, "db")):
        state.create(container_id, name)
    assert state.find(ONE) == ONE and state.find("web") == ONE and state.find("db") == THREE
    assert state.find("ab2") == TWO and state.find("c") == THREE


def test_find_refuses_an_ambiguous_prefix_and_an_unknown_reference():
    state.create(ONE, None)
    state.create(TWO, None)
    with pytest.raises(SpecError, match="only one container's id starts with") as caught:
        state.find("ab")
    assert "2 containers' ids start with it" in (caught.value.hint or "")
    with pytest.raises(SpecError, match="`container` must be the id, an id prefix or the name"):
        state.find("nosuch")


def test_the_start_time_tells_a_reused_pid_from_the_process():
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        real = state.process(sleeper.pid)
        assert state.alive(real) and real["start_time"] is not None
        reused = {**real, "start_time": real["start_time"] - 1}  # same pid, someone else
        assert not state.alive(reused)
        assert not state.send_signal(reused, 9) and sleeper.poll() is None  # not signalled
        assert not state.alive({**real, "boot_id": "another boot"})
        assert state.send_signal(real, 9)
        assert sleeper.wait(timeout=10) == -9
        assert not state.alive(real)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_container_whose_supervisor_is_gone_is_exited_with_the_reason():
    state.create(ONE, None)
    record = state.update(ONE, status="running", supervisor={**GONE,
                                                             "boot_id": state.boot_id()})
    now = state.current(record)
    assert now["status"] == "exited" and "its supervisor (pid 1) ended" in now["reason"]
    assert now["crashed"] == "its supervisor was killed"
    starting = state.current({**record, "status": "created"})  # killed during setup
    assert starting["status"] == "exited" and starting["crashed"] == "killed while starting it"
    assert "the process starting it (pid 1) was killed before it ran" in starting["reason"]
    rebooted = state.current({**record, "supervisor": GONE})
    assert rebooted["status"] == "exited" and rebooted["reason"].startswith("the machine")
    assert state.read(ONE)["status"] == "running"  # what it is now is computed, not written


def test_a_container_with_a_live_supervisor_is_as_recorded():
    record = state.create(ONE, None)  # this process is its owner
    assert state.current(record) == record
