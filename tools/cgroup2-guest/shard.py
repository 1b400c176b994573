"""A pytest plugin for the cgroup-v2 guests: two guests share one suite, file by file.

Two guests run at once (`make test-cgroup2`, tools/cgroup2-guest/lanes.sh), one from each end of
the same list of test files and notebooks: `PYCONTAIN_SHARD_ORDER=forward` or `reverse`. Before
a guest runs the first test of a file it claims the file, by making a directory named after it in
`PYCONTAIN_SHARD_DIR`, a share both guests see; mkdir(2) succeeds for one of them only. A file
the other guest claimed is skipped silently, so the two meet wherever their speeds take them and
each file runs exactly once, whole: a notebook's cells in order in one kernel, a module's fixtures
once. Without `PYCONTAIN_SHARD_DIR` the plugin does nothing.

    >>> claim_name("notebooks/solutions/08-net.ipynb")
    'notebooks%solutions%08-net.ipynb'
"""

from __future__ import annotations

import os

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


def pytest_runtest_protocol(item, nextitem):  # noqa: ANN001, ANN201 (a pytest hook)
    where = os.environ.get("PYCONTAIN_SHARD_DIR")
    if not where:
        return None
    name = _file(item)
    if name not in _decided:
        try:
            os.mkdir(os.path.join(where, claim_name(name)))
            _decided[name] = True
        except FileExistsError:
            _decided[name] = False
    return None if _decided[name] else True  # True: handled, here by not running it
