"""The fork server's pure parts: what it imports before its first request, and how the caller's
stdin/stdout/stderr arguments become the child's fds 0, 1, 2 (subprocess's spelling)."""

from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path

import pytest

from pycontain import forkserver, init


def test_the_server_imports_every_module_inits_later_steps_may_need():
    source = Path(init.__file__).read_text()  # the file: a test may have patched the function
    tree = next(node for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.FunctionDef) and node.name == "import_what_follows")
    named = {f"{node.module}.{alias.name}" for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert named == set(init.LATER_MODULES)


def test_stdio_follows_subprocess():
    fds, ours, close = forkserver.stdio(None, subprocess.PIPE, subprocess.STDOUT)
    try:
        assert fds[0] == 0 and fds[1] == fds[2] and fds[1] in close
        assert ours[0] is None and ours[1] is not None and ours[2] is None
        os.write(fds[1], b"line\n")
        os.close(fds[1])
        close.remove(fds[1])
        assert ours[1].readline() == "line\n"
    finally:
        for fd in close:
            os.close(fd)
        ours[1].close()
    fds, ours, close = forkserver.stdio(subprocess.DEVNULL, 1, subprocess.PIPE)
    try:
        assert os.readlink(f"/proc/self/fd/{fds[0]}") == os.devnull and fds[1] == 1
        assert ours[2] is not None and len(close) == 2
    finally:
        for fd in close:
            os.close(fd)
        ours[2].close()


def test_stdio_refuses_what_subprocess_would_not_take():
    with pytest.raises(ValueError, match="stdin, stdout and stderr take None, PIPE"):
        forkserver.stdio(subprocess.STDOUT, None, None)  # STDOUT is for stderr only
