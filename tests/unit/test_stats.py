"""stats and events without a container: how usage is computed and written, and which state
changes become which events (run directories in a temp dir; the real kernel's counters are
tests/integration/test_stats.py)."""

from __future__ import annotations

import json
import math
import os

import pytest

from pycontain import settings, state
from pycontain.errors import SpecError
from pycontain.observe import container_events, stats
from pycontain.observe.stats import Usage


def watched(limit_bytes: float = 64 << 20) -> stats.Watched:
    w = stats.Watched.__new__(stats.Watched)
    w.id, w.name, w.limit_bytes, w.files = "cd" * 32, "db", limit_bytes, None
    return w


def test_cpu_percent_is_cpu_time_over_wall_time_and_can_exceed_one_core():
    two_cores = stats.usage(watched(), (0.0, {"cpu_usage_usec": 1e6}),
                            (1.0, {"cpu_usage_usec": 3e6}))
    assert two_cores.cpu_percent == pytest.approx(200.0)
    # one reading only (a container seen for the first time): no rate yet
    assert stats.usage(watched(), (1.0, {"cpu_usage_usec": 3e6}),
                       (1.0, {"cpu_usage_usec": 3e6})).cpu_percent is None


def test_a_counter_the_cgroup_lacks_or_lost_is_none_and_shows_as_dashes():
    u = stats.usage(watched(), (0.0, {}), (1.0, {"memory_current": math.nan, "pids_current": 2}))
    assert (u.memory_bytes, u.memory_percent, u.net_sent_bytes, u.pids) == (None, None, None, 2)
    row = stats.table([u]).splitlines()[1]
    assert "-- / 64MiB" in row and "-- / --" in row and row.endswith("2")


def test_json_is_numbers_and_nulls_in_bytes():
    u = Usage("ab" * 32, "web", 12.5, 1048576.0, 67108864.0, 1.5625, None, None, 0.0, 4096.0,
              3.0, 0.0, None)
    [row] = json.loads(json.dumps(stats.to_json([u])))
    assert row == {"id": "ab" * 32, "name": "web", "cpu_percent": 12.5,
                   "memory_bytes": 1048576, "memory_limit_bytes": 67108864,
                   "memory_percent": 1.5625, "net_received_bytes": None, "net_sent_bytes": None,
                   "block_read_bytes": 0, "block_written_bytes": 4096, "pids": 3,
                   "oom_kills": 0, "throttled": None}


@pytest.mark.parametrize(("n_bytes", "binary", "shown"), [
    (0, True, "0B"), (1023, True, "1023B"), (1024, True, "1KiB"), (5 << 30, True, "5GiB"),
    (999, False, "999B"), (1_000_000, False, "1MB"), (12_345_678, False, "12.3MB"),
])
def test_sizes_are_written_as_docker_writes_them(n_bytes, binary, shown):
    assert stats.human(n_bytes, binary=binary) == shown


def test_changes_name_only_what_rose_and_ignore_a_new_container():
    old = Usage("ab" * 32, "", 0.0, 0, 1, 0.0, 0, 0, 0, 0, 1, 2.0, 5.0)
    assert stats.changes([old], [old]) == []
    assert stats.changes([], [old._replace(oom_kills=9.0)]) == []  # nothing to compare with
    assert stats.changes([old], [old._replace(oom_kills=4.0)]) == [
        f"{'ab' * 6}: the OOM killer killed 2 (4 OOM kills in all)"]


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.RUN_DIR_VARIABLE, str(tmp_path))
    return tmp_path


def test_state_changes_become_events_in_order(run_dir):
    watch = container_events.Watch()
    assert watch.poll() == []
    container_id = "ef" * 32
    state.create(container_id, "app", cgroup=None)
    state.update(container_id, status="running", started=state.read(container_id)["created"])
    assert [e.action for e in watch.poll()] == ["create", "start"]
    state.update(container_id, status="paused")
    state.update(container_id, status="paused")  # a rewrite without a change: no event
    assert [e.action for e in watch.poll()] == ["pause"]
    state.update(container_id, status="running")
    assert [e.action for e in watch.poll()] == ["unpause"]
    state.update(container_id, status="exited", finished=1e10, exit_code=137, oom_kills=1)
    ended = watch.poll()
    assert [e.action for e in ended] == ["oom", "die"]
    assert ended[-1].line().endswith(f"container die {container_id} (name=app, exitCode=137)")
    state.remove_files(container_id, "app")
    assert [(e.action, e.name) for e in watch.poll()] == [("destroy", "app")]
    os.rmdir(run_dir / state.NAMES)


def test_history_tells_only_what_the_state_kept():
    record = {"id": "ab" * 32, "name": None, "created": 1.0, "started": 2.0, "finished": None,
              "status": "running"}
    assert [(e.time, e.action) for e in container_events.history(record)] == [
        (1.0, "create"), (2.0, "start")]


@pytest.mark.parametrize("given", ["", "soon", "-5m", "10d", "2026-13-01"])
def test_a_time_that_is_none_of_the_forms_is_refused_naming_the_flag(given):
    with pytest.raises(SpecError, match="`since` must be seconds since the epoch"):
        container_events.parse_time(given, "since", 0.0)


def test_the_dashboard_marks_an_oom_kill_and_draws_only_real_limits():
    from pycontain.observe import dashboard

    board = dashboard.Dashboard(["a", "b"], hz=4)
    host = board.host_bytes
    for i, kills in enumerate((0, 0, 1, 1)):
        board._add(i / 4, [Usage("a" * 64, "hungry", 1.0, 1 << 20, 32 << 20, 3.0, None, None,
                                 None, None, 2, kills, None),
                           Usage("b" * 64, "free", 1.0, 1 << 20, host, 0.0, None, None, None,
                                 None, 1, 0, None)])
    assert board.marks == [(0.5, "hungry: OOM kill")] and board.oom_kills()["hungry"] == 1
    assert board.limits == {"hungry": 32 << 20}  # "max" shows the machine's: no line for it
    assert board.series["free"]["pids"] == [1, 1, 1, 1]
    assert board._repr_png_().startswith(b"\x89PNG")
