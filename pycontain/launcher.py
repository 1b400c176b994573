"""The lean console scripts: `pycontain` and `pycontain-oci`, started with `python -I -S`.

pip's console scripts start the interpreter with `site`: every .pth file of site-packages is
processed, setuptools' `_distutils_hack` imported, and the user's environment read, ~15 ms (and
more under load) of every command, for a command that starts a container in about 30 ms
(bench/start_latency.py). `make .venv/.dev` writes these in their place: the same `main`, on a
fixed sys.path (the package's own directory, then the directories this interpreter finds beyond
a lean one's: the venv's site-packages, where pyroute2 is for the network helpers), nothing else.
`pycontain.init` starts the same way (`pycontain.fresh_python`); runc is one static binary.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

from pycontain import PACKAGE_PARENT

#: each command and the module whose `main` it runs (pyproject.toml's [project.scripts])
SCRIPTS = {"pycontain": "pycontain.cli", "pycontain-oci": "pycontain.oci.cli"}

TEMPLATE = """#!{python} -IS
import sys
sys.path += {path!r}
from {module} import main
sys.exit(main())
"""


def search_path() -> list[str]:
    """The package's directory, then what this interpreter's sys.path holds beyond `-I -S`."""
    lean = ast.literal_eval(subprocess.run(
        [sys.executable, "-I", "-S", "-c", "import sys; print(sys.path)"],
        capture_output=True, text=True, check=True).stdout)
    beyond = [p for p in sys.path if p and p != PACKAGE_PARENT and p not in lean]
    return [PACKAGE_PARENT, *dict.fromkeys(beyond)]


def write(directory: str, names: tuple[str, ...] = tuple(SCRIPTS)) -> list[str]:
    """Write the launchers `names` into `directory` (each replaced whole, by rename(2))."""
    path = search_path()
    written = []
    for name in names:
        target = os.path.join(directory, name)
        with open(f"{target}.tmp", "w") as f:
            f.write(TEMPLATE.format(python=sys.executable, path=path, module=SCRIPTS[name]))
        os.chmod(f"{target}.tmp", 0o755)
        os.rename(f"{target}.tmp", target)
        written.append(target)
    return written


if __name__ == "__main__":  # python -m pycontain.launcher DIRECTORY [NAME ...]
    write(sys.argv[1], tuple(sys.argv[2:]) or tuple(SCRIPTS))
