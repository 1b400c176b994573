"""pycontain: learn how Linux containers work by building one.

The everyday API, loaded on first use so that a container's first process (`pycontain.init`)
imports nothing it does not need::

    import pycontain
    result = pycontain.run(["hostname"], namespaces={"uts"}, hostname="box-1")

`run`, `spawn`, `Spec`, `Result`, `Container` come from `runtime`; `Lab` and `preflight` from
`lab`; `show` from `observe.display`; the errors from `errors`.
"""

from __future__ import annotations

import os as _os  # init needs os anyway; nothing else is imported here

# `typing` costs milliseconds in a fresh interpreter, and every container's first process imports
# this module; annotations are never evaluated at run time (PEP 563), so only checkers need it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

#: the directory that holds this package, by which a fresh `python -I -S` finds it
PACKAGE_PARENT = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))


def fresh_python(statement: str, *args: str, same_path: bool = False) -> list[str]:
    """The argv of a new, lean interpreter that imports pycontain by path and runs `statement`.

    `-I -S`: no site-packages scan, no user site, no PYTHON* variables: the lean start-up is most
    of a container's start-up time (notes/reference-runtimes.md). The package path is appended,
    not prepended: the standard library is searched first and nothing in the checkout shadows
    it. `same_path=True` gives the new interpreter this one's whole import path instead (for
    code that needs a dependency, wherever this process found it: venv, PYTHONPATH, ...).
    """
    import sys

    path = [p for p in sys.path if p] if same_path else []  # '': the cwd, never wanted
    setup = f"sys.path[:]={[*path, PACKAGE_PARENT]!r}" if same_path else \
        f"sys.path.append({PACKAGE_PARENT!r})"
    return [sys.executable, "-I", "-S", "-c", f"import sys;{setup};{statement}", *args]


_EXPORTS = {
    "run": "runtime", "spawn": "runtime", "Spec": "runtime", "Result": "runtime",
    "Container": "runtime", "Limits": "cgroups.limits",
    "Lab": "lab", "preflight": "lab",
    "show": "observe.display",
    "PycontainError": "errors", "SyscallError": "errors", "SpecError": "errors",
    "CgroupError": "errors", "PreflightError": "errors", "CommandNotFoundError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from importlib import import_module  # here: init, which imports this package, needs none

        return getattr(import_module(f"pycontain.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'pycontain' has no attribute {name!r}")
