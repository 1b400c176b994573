"""The cgroup-v2 guests share the suite file by file (tools/cgroup2-guest/shard.py): two lanes,
one from each end, each file claimed by exactly one of them, whole."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

SHARD = Path(__file__).parents[2] / "tools" / "cgroup2-guest" / "shard.py"


def lane(monkeypatch, claims: Path, order: str):
    """The plugin as one guest loads it: its environment set before the import."""
    monkeypatch.setenv("PYCONTAIN_SHARD_DIR", str(claims))
    monkeypatch.setenv("PYCONTAIN_SHARD_ORDER", order)
    spec = importlib.util.spec_from_file_location(f"shard_{order}", SHARD)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def items(*nodeids: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(nodeid=n) for n in nodeids]


SUITE = ("tests/a.py::t1", "tests/a.py::t2", "tests/b.py::t1", "nb/x.ipynb::Cell 0",
         "nb/x.ipynb::Cell 1", "tests/c.py::t1")


def test_the_reverse_lane_walks_the_files_from_the_end_keeping_each_file_in_order(monkeypatch,
                                                                                  tmp_path):
    found = items(*SUITE)
    lane(monkeypatch, tmp_path, "reverse").pytest_collection_modifyitems(None, found)
    assert [i.nodeid for i in found] == ["tests/c.py::t1", "nb/x.ipynb::Cell 0",
                                         "nb/x.ipynb::Cell 1", "tests/b.py::t1",
                                         "tests/a.py::t1", "tests/a.py::t2"]


@pytest.mark.parametrize("first_steps", [0, 1, 2, 3])
def test_two_lanes_run_every_file_once_and_whole(monkeypatch, tmp_path, first_steps):
    forward = lane(monkeypatch, tmp_path, "forward")
    reverse = lane(monkeypatch, tmp_path, "reverse")
    ran: dict[str, list[str]] = {"forward": [], "reverse": []}
    queues = {"forward": items(*SUITE), "reverse": items(*reversed(SUITE))}
    # the forward lane gets ahead by `first_steps` tests, then they take turns
    order = ["forward"] * first_steps + ["reverse", "forward"] * len(SUITE)
    for name in order:
        module = forward if name == "forward" else reverse
        if queues[name]:
            item = queues[name].pop(0)
            try:
                module.pytest_runtest_setup(item)
            except pytest.skip.Exception:
                continue
            ran[name].append(item.nodeid)
    everything = ran["forward"] + ran["reverse"]
    assert sorted(everything) == sorted(SUITE)  # each test once
    for name in ran:  # whole files: a file's tests all in one lane
        files = {n.split("::")[0] for n in ran[name]}
        other = {n.split("::")[0] for n in everything if n not in ran[name]}
        assert not files & other


def run_file(module, tests: list[SimpleNamespace], *, crash_after: int | None = None) -> list[str]:
    """Set up and tear down `tests` as pytest does, the next item given; stop short to crash."""
    ran = []
    for n, item in enumerate(tests):
        if crash_after is not None and n == crash_after:
            break
        try:
            module.pytest_runtest_setup(item)
        except pytest.skip.Exception:
            continue
        ran.append(item.nodeid)
        module.pytest_runtest_teardown(item, tests[n + 1] if n + 1 < len(tests) else None)
    return ran


def test_a_crashed_guests_unfinished_file_runs_again_in_its_next_guest(monkeypatch, tmp_path):
    tests = items("tests/a.py::t1", "tests/a.py::t2", "tests/b.py::t1")
    first = lane(monkeypatch, tmp_path, "forward")
    assert run_file(first, tests, crash_after=1) == ["tests/a.py::t1"]  # crashed inside a.py
    other = lane(monkeypatch, tmp_path, "reverse")
    assert run_file(other, tests[:2]) == []  # the other lane never takes it
    again = lane(monkeypatch, tmp_path, "forward")  # the next guest of the crashed lane
    assert run_file(again, tests) == [t.nodeid for t in tests]  # a.py again, whole; then b.py
    assert run_file(lane(monkeypatch, tmp_path, "forward"), tests) == []  # done: never again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tests%a.py", "tests%b.py"]
    assert all((p / "done").exists() for p in tmp_path.iterdir())


def test_without_a_share_nothing_changes(monkeypatch):
    spec = importlib.util.spec_from_file_location("shard_plain", SHARD)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.delenv("PYCONTAIN_SHARD_DIR", raising=False)
    found = items(*SUITE)
    module.pytest_collection_modifyitems(None, found)
    assert [i.nodeid for i in found] == list(SUITE)
    assert module.pytest_runtest_setup(found[0]) is None  # no skip


def test_a_failure_is_written_into_its_claim_as_it_happens(monkeypatch, tmp_path):
    module = lane(monkeypatch, tmp_path, "forward")
    module.pytest_runtest_setup(items("tests/a.py::t1")[0])
    report = SimpleNamespace(nodeid="tests/a.py::t1", failed=True, when="call",
                             longrepr="Traceback ...\nE   assert 1 == 2")
    module.pytest_runtest_logreport(report)
    module.pytest_runtest_logreport(SimpleNamespace(nodeid="tests/a.py::t2", failed=False))
    assert (tmp_path / "tests%a.py" / "failed").read_text() == \
        "tests/a.py::t1 (call): E   assert 1 == 2\n"
