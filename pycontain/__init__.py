"""pycontain: learn how Linux containers work by building one.

The everyday API, loaded on first use so that a container's first process (`pycontain.init`)
imports nothing it does not need::

    import pycontain
    result = pycontain.run(["hostname"], namespaces={"uts"}, hostname="box-1")

`run`, `spawn`, `Spec`, `Result`, `Container` come from `runtime`; `Lab` and `preflight` from
`lab`; `show` from `display`; the errors from `errors`.
"""

from __future__ import annotations

# `typing` costs milliseconds in a fresh interpreter, and every container's first process imports
# this module; annotations are never evaluated at run time (PEP 563), so only checkers need it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "run": "runtime", "spawn": "runtime", "Spec": "runtime", "Result": "runtime",
    "Container": "runtime", "Limits": "cgroups.limits",
    "Lab": "lab", "preflight": "lab",
    "show": "display",
    "PycontainError": "errors", "SyscallError": "errors", "SpecError": "errors",
    "CgroupError": "errors", "PreflightError": "errors", "CommandNotFoundError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from importlib import import_module  # here: init, which imports this package, needs none

        return getattr(import_module(f"pycontain.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'pycontain' has no attribute {name!r}")
