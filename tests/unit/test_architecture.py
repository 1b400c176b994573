"""The library's layers hold (docs/DESIGN.md, "The library"): no module imports a higher layer,
and the concept packages do not import each other in a circle.

Every import counts, at the top of a module or inside a function, and so does `pycontain.run`
reached through `import pycontain` (the package's lazy exports name their home module). Code
sent to a fresh interpreter as a string is not an import of this process and is not counted.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

import pycontain

PACKAGE = Path(pycontain.__file__).parent

#: lowest first; a module may import its own layer and the layers below it
LAYERS = {
    "the kernel boundary and the names": {"", "kernel_names", "jsonc", "errors", "syscalls",
                                          "kernfs", "procfs", "settings", "helper", "tracing",
                                          "testing",
                                          "workloads", "sizes", "undo", "terminal",
                                          "faults", "forkserver", "launcher"},
    "one concept per package": {"namespaces", "cgroups", "fs", "network", "security"},
    "safety: preflight, sweep, detached containers' state": {"lab", "state"},
    "the container: spec, first process, runtime, supervisor": {"spec", "init", "runtime",
                                                                "supervisor", "nsenter",
                                                                "exec_socket"},
    "observing and attacking it; the OCI runtime": {"observe", "audit", "oci"},
    "exercises and the front door": {"checks", "course", "cli", "__main__"},
}
LEVEL = {group: n for n, groups in enumerate(LAYERS.values()) for group in groups}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def group(module: str) -> str:
    """The part of pycontain a module belongs to: its package, or itself if it is top-level."""
    return module.split(".")[0] if module in MODULES else ""


def resolve(dotted: str) -> str:
    """The pycontain module `dotted` (below pycontain) names, or its longest module prefix."""
    while dotted and dotted not in MODULES:
        dotted = dotted.rpartition(".")[0]
    return dotted


def imports(module: str, source: str | None = None) -> set[str]:
    """Every pycontain module that `module` (or `source`, as if it were that module) imports,
    anywhere in its code."""
    tree = ast.parse(MODULES[module].read_text() if source is None else source)
    package_names = set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "pycontain":
                    package_names.add(alias.asname or "pycontain")
                elif alias.name.startswith("pycontain."):
                    found.add(resolve(alias.name.removeprefix("pycontain.")))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "pycontain":
            base = node.module.removeprefix("pycontain").lstrip(".")
            for alias in node.names:
                found.add(resolve(f"{base}.{alias.name}".lstrip(".")))
    for node in ast.walk(tree):  # pycontain.run and friends: the lazy exports' home modules
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in package_names and node.attr in pycontain._EXPORTS:
            found.add(pycontain._EXPORTS[node.attr])
    found.discard(module)
    return found


GRAPH = {module: imports(module) for module in MODULES}


def test_every_module_has_a_layer():
    assert sorted({group(m) for m in MODULES} - set(LEVEL)) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_layer(module):
    assert upward(module, GRAPH[module]) == [], \
        "a lower layer imports a higher one (docs/DESIGN.md, 'The library')"


def test_packages_do_not_import_each_other_in_a_circle():
    """Between packages (namespaces, network, cgroups, fs, observe, ...); the flat spine's
    modules are each other's neighbours and not counted here."""
    def package(module: str) -> str:
        return module.split(".")[0] if "." in module else ""

    edges = {(package(a), package(b)) for a, targets in GRAPH.items() for b in targets
             if package(a) != package(b) and "" not in (package(a), package(b))}
    circles = sorted(f"{a} <-> {b}" for a, b in edges if (b, a) in edges and a < b)
    assert circles == []


def test_submodules_of_a_package_do_not_import_each_other_in_a_circle():
    circles = sorted(f"{a} <-> {b}" for a, b in itertools.combinations(sorted(MODULES), 2)
                     if b in GRAPH[a] and a in GRAPH[b] and group(a) == group(b) != "")
    assert circles == []


def upward(module: str, targets: set[str]) -> list[str]:
    return sorted(t for t in targets if LEVEL[group(t)] > LEVEL[group(module)])


@pytest.mark.parametrize(("source", "found"), [
    ("import pycontain\npycontain.run(['true'])", ["runtime"]),
    ("def f():\n    from pycontain.observe.probe import namespace_table", ["observe.probe"]),
    ("from pycontain import lab", ["lab"]),
    ("import pycontain.cli", ["cli"]),
])
def test_an_upward_import_is_seen_however_it_is_written(source, found):
    assert upward("namespaces.uts", imports("namespaces.uts", source)) == found


def test_the_library_has_imports_to_check():
    assert "runtime" in GRAPH["observe.widgets"] and "helper" in GRAPH["namespaces.net"]
