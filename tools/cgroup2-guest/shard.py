"""A pytest plugin for the cgroup-v2 guests: two guests share one suite, file by file.

Two guests run at once (`make test-cgroup2`, tools/cgroup2-guest/lanes.sh), one from each end of
the same list of test files and notebooks: `PYCONTAIN_SHARD_ORDER=forward` or `reverse`. Before
a guest sets up the first test of a file it claims the file, by making a directory named after it
in `PYCONTAIN_SHARD_DIR`, a share both guests see; mkdir(2) succeeds for one of them only. The
tests of a file the other guest claimed are skipped ("run by the other guest"), so the two meet
wherever their speeds take them and each file runs exactly once, whole: a notebook's cells in
order in one kernel, a module's fixtures once. Without `PYCONTAIN_SHARD_DIR` the plugin does
nothing.

    >>> claim_name("notebooks/solutions/08-net.ipynb")
    'notebooks%solutions%08-net.ipynb'
"""

from __future__ import annotations

import os

import pytest

_decided: dict[str, bool] = {}


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
    if os.environ.get("PYCONTAIN_SHARD_ORDER") == "reverse":
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
        try:
            os.mkdir(os.path.join(where, claim_name(name)))
            _decided[name] = True
        except FileExistsError:
            _decided[name] = False
    if not _decided[name]:
        pytest.skip("run by the other guest")
