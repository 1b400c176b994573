"""Showing the library's own code in a lesson, instead of pasting it (DESIGN §3)."""

from __future__ import annotations

import inspect
from typing import Any


class Source:
    """Source code that renders highlighted in Jupyter and as plain text elsewhere."""

    def __init__(self, code: str, name: str) -> None:
        self.code = code
        self.name = name

    def __repr__(self) -> str:
        return self.code

    def _repr_markdown_(self) -> str:
        return f"`{self.name}`\n```python\n{self.code}\n```"


def show(obj: Any) -> Source:
    """The source of a pycontain function, class or module, ready to display in a notebook.

    >>> print(show(show).code.splitlines()[0])
    def show(obj: Any) -> Source:
    """
    module = inspect.getmodule(obj)
    name = f"{module.__name__}.{obj.__qualname__}" if module and hasattr(obj, "__qualname__") \
        else getattr(obj, "__name__", repr(obj))
    return Source(inspect.getsource(obj).rstrip(), name)
