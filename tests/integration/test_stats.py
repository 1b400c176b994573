"""`pycontain stats` and `pycontain events` on the real kernel (pycontain.observe.stats,
pycontain.observe.container_events).

The numbers come from the containers' own cgroups: on this hybrid host v1 files (cpuacct.usage
or the unified tree's cpu.stat, memory.usage_in_bytes, pids.current, memory.oom_control), on
the v2 guest the v2 ones; the same tests run on both. Every test keeps its containers in a run
directory of its own and checks that nothing is left (test_lifecycle's fixture). Waits are on
events: a line the streaming command prints, a state change; never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import signal
import subprocess
import time

import pytest

from pycontain import cgroups, workloads

from .conftest import PYCONTAIN, run_cli
from .test_lifecycle import detach, inspect, refused, run_dir, until  # noqa: F401  (fixture)

DEADLINE_S = 20.0


def stats_json(*references: str) -> dict[str, dict]:
    done = run_cli("stats", "--no-stream", "--format", "json", *references)
    assert done.returncode == 0, done.stderr
    return {row["name"]: row for row in json.loads(done.stdout)}


def streaming(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*PYCONTAIN, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def read_until(process: subprocess.Popen[str], wanted, timeout_s: float = DEADLINE_S
               ) -> list[str]:
    """The lines `process` prints until one satisfies `wanted` (a timeout fails the test).

    Read with os.read, not readline: a file object may hold a second line in its buffer that
    select(2) on the pipe no longer sees (create and start, printed at once)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    unread = UNREAD.setdefault(process.pid, bytearray())
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while True:
        while b"\n" in unread:
            line, _, rest = bytes(unread).partition(b"\n")
            unread[:] = rest
            lines.append(line.decode())
            if wanted(lines[-1]):
                return lines
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out; printed so far: {lines}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            data = os.read(fd, 65536)
            assert data, f"ended before the line came: {lines}"
            unread += data


#: what a streaming process printed that read_until has not handed out yet, by pid
UNREAD: dict[int, bytearray] = {}


def interrupt(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=DEADLINE_S)


def test_no_stream_reads_each_containers_cgroup_and_veth():
    detach("--name", "burner", "--cpus", "0.5", "--memory", "64M", "--",
           *workloads.burn_argv(60))
    detach("--name", "idle", "--network", "bridge", "--pids-limit", "10", "--", "sleep", "60")
    rows = stats_json()
    assert set(rows) == {"burner", "idle"}
    burner, idle = rows["burner"], rows["idle"]
    # cpu.max lets the burner use half a CPU: measured over 0.5 s, 50 % of one core give or take
    assert 25 < burner["cpu_percent"] < 75, burner
    assert idle["cpu_percent"] < 10, idle
    assert burner["memory_limit_bytes"] == 64 << 20
    assert 0 < burner["memory_bytes"] < 64 << 20
    assert 0 < burner["memory_percent"] < 100
    with open("/proc/meminfo") as f:  # no limit: the machine's memory, as docker shows
        total = int(f.readline().split()[1]) * 1024
    assert idle["memory_limit_bytes"] == total
    assert burner["pids"] == 1 and idle["pids"] == 1
    assert burner["throttled"] > 0  # cpu.max stopped it in some periods
    assert burner["oom_kills"] == 0
    # the veth's counters only for the container on the bridge
    assert burner["net_received_bytes"] is None and idle["net_received_bytes"] >= 0
    record = inspect("idle")
    veth = record["network"]["veth"]
    with open(f"/sys/class/net/{veth}/statistics/tx_bytes") as f:
        assert int(f.read()) >= idle["net_received_bytes"]

    # the table: docker's columns, one row each, only those named when named
    done = run_cli("stats", "--no-stream", "idle")
    assert done.returncode == 0, done.stderr
    header, *rows_shown = done.stdout.splitlines()
    assert header.split("   ")[:3] == ["CONTAINER ID", "NAME", "CPU %"] and "PIDS" in header
    assert len(rows_shown) == 1 and rows_shown[0].startswith(record["id"][:12])
    assert " / 10" not in rows_shown[0] and rows_shown[0].endswith("1")
    assert run_cli("rm", "-f", "burner", "idle").returncode == 0


def test_the_counters_come_from_this_machines_cgroup_files():
    from pycontain import state
    from pycontain.observe import stats

    detach("--name", "files", "--memory", "32M", "--", "sleep", "60")
    watched = stats.Watched(state.read(state.find("files")))
    try:
        paths = {p.name: p.path for p in watched.files.probes}
    finally:
        watched.close()
    if cgroups.detect().mode == "v2":
        assert paths["memory_current"].endswith("/memory.current")
        assert paths["cpu_usage_usec"].endswith("/cpu.stat")
        assert paths["memory_oom_kill"].endswith("/memory.events")
    else:
        assert paths["memory_current"].endswith("/memory.usage_in_bytes")
        assert paths["memory_oom_kill"].endswith("/memory.oom_control")
        assert paths["cpu_usage_usec"].endswith(("/cpuacct.usage", "/cpu.stat"))
    assert paths["pids_current"].endswith("/pids.current")
    assert watched.limit_bytes == 32 << 20
    assert run_cli("rm", "-f", "files").returncode == 0


def gated_hog(gate: str) -> str:
    """A shell command that waits for the file `gate`, then runs a hog past 32M as a child of
    sh: the OOM killer kills the hog, and the container runs on."""
    hog = shlex.join(workloads.hog_argv("8M", 0.05, "128M", hold_s=30))
    return f"while [ ! -e {gate} ]; do sleep 0.02; done; {hog}; exec sleep 60"


def test_the_stream_shows_an_oom_kill_as_it_happens(tmp_path):
    gate = tmp_path / "go"
    detach("--name", "hungry", "--memory", "32M", "--", "sh", "-c", gated_hog(str(gate)))
    watching = streaming("stats", "hungry")
    try:
        read_until(watching, lambda line: "hungry" in line)  # a first interval seen
        gate.touch()
        lines = read_until(watching, lambda line: "OOM killer" in line)
        assert lines[-1] == "pycontain: hungry: the OOM killer killed a process (1 OOM kill " \
                            "in all)", lines
        tables = [line for line in lines if line.startswith("CONTAINER ID")]
        assert tables, lines  # a table each second before it
    finally:
        assert interrupt(watching) == 128 + signal.SIGINT
    assert stats_json("hungry")["hungry"]["oom_kills"] == 1
    assert run_cli("rm", "-f", "hungry").returncode == 0


def test_the_json_stream_prints_a_list_each_second_and_follows_new_containers():
    watching = streaming("stats", "--format", "json")
    try:
        first = read_until(watching, lambda line: line.startswith("["))
        assert json.loads(first[-1]) == []
        detach("--name", "late", "--", "sleep", "60")
        lines = read_until(watching, lambda line: '"late"' in line)
        [row] = json.loads(lines[-1])
        assert row["name"] == "late" and row["pids"] == 1
    finally:
        interrupt(watching)
    assert run_cli("rm", "-f", "late").returncode == 0


def test_events_streams_start_pause_unpause_oom_die_and_destroy(tmp_path):
    gate = tmp_path / "go"
    # --since: a start before the watch's first poll is told too, from the state's times
    watching = streaming("events", "--since", f"{time.time():.3f}")
    try:
        container_id = detach("--name", "ev", "--memory", "32M", "--", "sh", "-c",
                              gated_hog(str(gate)))
        assert read_until(watching, lambda line: " start " in line)[-1].endswith(
            f"container start {container_id} (name=ev)")
        gate.touch()
        read_until(watching, lambda line: " oom " in line)
        assert run_cli("pause", "ev").returncode == 0
        read_until(watching, lambda line: " pause " in line)
        assert run_cli("unpause", "ev").returncode == 0
        read_until(watching, lambda line: " unpause " in line)
        assert run_cli("stop", "-t", "0", "ev").returncode == 0
        assert "exitCode=137" in read_until(watching, lambda line: " die " in line)[-1]
        assert run_cli("rm", "ev").returncode == 0
        read_until(watching, lambda line: " destroy " in line)
    finally:
        assert interrupt(watching) == 128 + signal.SIGINT


def test_events_since_and_until_tell_the_past_and_end():
    started = time.time()
    container_id = detach("--name", "past", "--", "true")
    until(lambda: inspect("past")["status"] == "exited")
    done = run_cli("events", "--since", f"{started - 1:.3f}", "--until", f"{time.time():.3f}")
    assert done.returncode == 0, done.stderr
    actions = [line.split()[2] for line in done.stdout.splitlines()
               if container_id in line]
    assert actions == ["create", "start", "die"], done.stdout
    assert "exitCode=0" in done.stdout.splitlines()[-1]
    # nothing before the container was created
    before = run_cli("events", "--since", "1", "--until", f"{started - 60:.3f}")
    assert before.returncode == 0 and container_id not in before.stdout
    assert run_cli("rm", "past").returncode == 0


@pytest.mark.parametrize(("args", "message"), [
    (("stats", "--no-stream", "nosuch"), "CONTAINER must be the id, an id prefix or the name"),
    (("events", "--since", "yesterday"), "--since must be seconds since the epoch, a duration"),
    (("events", "--until", "5x"), "--until must be seconds since the epoch"),
])
def test_bad_input_is_refused_naming_the_argument(args, message):
    refused(run_cli(*args), message)


def test_no_stream_with_nothing_running_prints_the_header_only():
    done = run_cli("stats", "--no-stream")
    assert done.returncode == 0 and done.stdout.startswith("CONTAINER ID") and \
        len(done.stdout.splitlines()) == 1, done
    assert not os.listdir(os.environ["PYCONTAIN_RUN_DIR"]) or \
        os.listdir(os.environ["PYCONTAIN_RUN_DIR"]) == ["names"]
