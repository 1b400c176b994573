"""Draw the cgroup tree beneath this process, as indented text, one column per hierarchy.

On v2 there is one tree, and each cgroup lists the controllers it has (`cgroup.controllers`).
On v1 and hybrid machines each hierarchy is its own tree, drawn side by side, so that one
container's cgroup shows up once in each (lesson 12).

    >>> print(side_by_side([["a", "bb"], ["ccc"]], gap=2))
    a   ccc
    bb
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from pycontain.cgroups import Hierarchy, Layout, detect, home, procs
from pycontain.cgroups.files import _read_text
from pycontain.settings import PREFIX


class Tree(str):
    """The drawing: prints as itself in a notebook (no quotes)."""

    def __repr__(self) -> str:
        return str(self)


def side_by_side(columns: list[list[str]], gap: int = 4) -> str:
    widths = [max((len(line) for line in c), default=0) + gap for c in columns]
    height = max((len(c) for c in columns), default=0)
    rows = ["".join((c[i] if i < len(c) else "").ljust(w)
                    for c, w in zip(columns, widths, strict=True)) for i in range(height)]
    return "\n".join(row.rstrip() for row in rows)


def _label(h: Hierarchy, path: str, name: str) -> str:
    if h.version == 2:
        offered = _read_text(os.path.join(path, "cgroup.controllers")).split()
        what = " ".join(offered) or "-"
    else:
        what = ",".join(h.controllers)
    count = len(procs(path))
    return f"{name}  [{what}]  {count} process{'es' if count != 1 else ''}"


def _walk(h: Hierarchy, path: str, depth: int, indent: str = "") -> list[str]:
    if depth == 0:
        return []
    lines = []
    children = sorted(d.name for d in os.scandir(path) if d.is_dir())
    ours = [c for c in children if c.startswith(PREFIX)]
    for i, child in enumerate(ours):
        last = i == len(ours) - 1 and len(ours) == len(children)
        branch, more = ("└── ", "    ") if last else ("├── ", "│   ")
        full = os.path.join(path, child)
        lines.append(indent + branch + _label(h, full, child))
        lines += _walk(h, full, depth - 1, indent + more)
    others = len(children) - len(ours)
    if others:
        lines.append(f"{indent}└── ({others} other cgroup{'s' if others > 1 else ''}, "
                     "not pycontain's)")
    return lines


def draw(layout: Layout, controllers: tuple[str, ...], depth: int) -> Tree:
    """One column per hierarchy holding `controllers` (plus the unified one)."""
    chosen = []
    for h in layout.hierarchies:
        if (set(h.controllers) & set(controllers)) or h.version == 2:
            if h not in chosen:
                chosen.append(h)
    columns = []
    for h in sorted(chosen, key=lambda h: (-h.version, h.mount)):
        head = f"v{h.version} {h.mount}"
        start = home(h)
        shown = "/" + os.path.relpath(start, h.mount).lstrip(".").lstrip("/")
        shown = shown if len(shown) <= 24 else "…/" + shown.rsplit("/", 1)[-1][:12] + "…"
        whose = "this process's own" if start == h.own_dir else "$PYCONTAIN_CGROUP_PARENT"
        top = _label(h, start, f"{shown} ({whose})")
        columns.append([head, top, *_walk(h, start, depth)])
    return Tree(side_by_side(columns))


def tree(layout: Layout | None = None, *, controllers: Iterable[str] = ("memory", "pids"),
         depth: int = 3) -> Tree:
    """The cgroup tree beneath this process's own cgroup, drawn as indented text."""
    return draw(layout or detect(), tuple(controllers), depth)
