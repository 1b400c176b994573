"""A pytest plugin for the cgroup-v2 guests: two guests share one suite, file by file.

Two guests run at once (`make test-cgroup2`, tools/cgroup2-guest/lanes.sh), one from each end of
the same list of test files and notebooks: `PYCONTAIN_SHARD_ORDER=forward` or `reverse`. Before
a guest sets up the first test of a file it claims the file, by making a directory named after it
in `PYCONTAIN_SHARD_DIR`, a share both guests see; mkdir(2) succeeds for one of them only. The
tests of a file the other guest claimed are skipped ("run by the other guest"), so the two meet
wherever their speeds take them and each file runs exactly once, whole: a notebook's cells in
order in one kernel, a module's fixtures once. Without `PYCONTAIN_SHARD_DIR` the plugin does
nothing.

A claim records who made it (the order), each failure as it happens, and, once the file's last
test is torn down, that it is done and how many seconds it took. A guest that crashed (TCG
emulation has panicked a guest kernel on its own, mid-test) is booted again by lanes.sh with
the same order: it takes back its own claims that are not done, so the file that was running
when it crashed runs again, whole, and nothing runs twice.

    >>> claim_name("notebooks/solutions/08-net.ipynb")
    'notebooks%solutions%08-net.ipynb'
"""

from __future__ import annotations

import os
import time

import pytest

_decided: dict[str, bool] = {}
_started: dict[str, float] = {}  # when this guest claimed a file (time.monotonic())
#: this guest's end of the list, which also names its claims ("forward" or "reverse")
_ORDER = os.environ.get("PYCONTAIN_SHARD_ORDER", "forward")


def claim_name(path: str) -> str:
    return path.replace("/", "%")


def _file(item) -> str:  # noqa: ANN001
    return item.nodeid.split("::")[0]


def pytest_collection_modifyitems(config, items):  # noqa: ANN001, ANN201 (a pytest hook)
    if not os.environ.get("PYCONTAIN_SHARD_DIR"):
        return
    files: dict[str, list] = {}
    for item in items:
        files.setdefault(_file(item), []).append(item)
    order = list(files)
    if _ORDER == "reverse":
        order.reverse()
    items[:] = [item for name in order for item in files[name]]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):  # noqa: ANN001, ANN201 (a pytest hook)
    """Skip, before anything is set up, a test whose file the other guest claimed. (Skipped
    rather than left out, so that pytest tears down after the last test as always, and a
    session fixture's complaint is reported as that test's error.)"""
    where = os.environ.get("PYCONTAIN_SHARD_DIR")
    if not where:
        return
    name = _file(item)
    if name not in _decided:
        claim = os.path.join(where, claim_name(name))
        try:
            os.mkdir(claim)
            _decided[name] = True
        except FileExistsError:  # the other guest's, or ours from before a crash
            _decided[name] = _read(claim, "by") == _ORDER and not _read(claim, "done")
        if _decided[name]:
            with open(os.path.join(claim, "by"), "w") as f:
                f.write(_ORDER)
            _started[name] = time.monotonic()
    if not _decided[name]:
        pytest.skip("run by the other guest")


def pytest_runtest_teardown(item, nextitem):  # noqa: ANN001, ANN201 (a pytest hook)
    """After the last test of a file this guest ran: mark its claim done, with the seconds it
    took (lanes.sh prints the slowest files: where the guest's time goes)."""
    where = os.environ.get("PYCONTAIN_SHARD_DIR")
    name = _file(item)
    if where and _decided.get(name) and (nextitem is None or _file(nextitem) != name):
        with open(os.path.join(where, claim_name(name), "done"), "w") as f:
            f.write(f"{time.monotonic() - _started.get(name, time.monotonic()):.0f}")


def pytest_runtest_logreport(report):  # noqa: ANN001, ANN201 (a pytest hook)
    """A failure is written into its file's claim at once, with its last line: lanes.sh lists
    them even when a guest never reached pytest's summary (it crashed, or ran out of time)."""
    where = os.environ.get("PYCONTAIN_SHARD_DIR")
    if where and report.failed:
        name = report.nodeid.split("::")[0]
        last = (str(report.longrepr).strip().splitlines() or [""])[-1][:300]
        with open(os.path.join(where, claim_name(name), "failed"), "a") as f:
            f.write(f"{report.nodeid} ({report.when}): {last}\n")


def _read(claim: str, what: str) -> str:
    try:
        with open(os.path.join(claim, what)) as f:
            return f.read()
    except FileNotFoundError:
        return ""
