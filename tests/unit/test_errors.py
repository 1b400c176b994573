"""The error grammar, every hint in the table, and errors crossing the process boundary."""

from __future__ import annotations

import ast
import errno
import os
import re
from pathlib import Path

import pytest

from pycontain import errors
from pycontain.errors import (
    CgroupError,
    CommandNotFoundError,
    PreflightError,
    ProcessError,
    PycontainError,
    SpecError,
    SyscallError,
    format_error,
    from_wire,
    to_wire,
)
from pycontain.syscalls import CloneFlag, MountFlag, UmountFlag


@pytest.mark.parametrize("call,name", sorted(errors.HINTS))
def test_every_hint_is_shown_with_its_error(call, name):
    number = getattr(errno, name)
    e = SyscallError(call, ("/x",), number)
    first, second = str(e).splitlines()
    assert first == f"{call}('/x') failed: {name} ({os.strerror(number)})"
    assert second == f"  hint: {errors.HINTS[(call, name)]}"
    # each hint says the cause, then the fix after a semicolon, and names its lesson
    assert re.search(r"\(lesson \d\d\)$", second), second


#: a hint's key: the call (a system or library call, or a netlink message), then, when the hint
#: depends on what it acted on, one word for that (the kernel file written, the tree searched)
KEY_GRAMMAR = re.compile(r"(?P<call>RTM_[A-Z]+|[a-z][a-z0-9_]*)( (?P<what>[a-z][a-z0-9_.]*))?")
PACKAGE = Path(errors.__file__).parent


def _literals() -> set[str]:
    """Every string constant in pycontain's code outside errors.py, f-strings' parts included."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


LITERALS = _literals()


@pytest.mark.parametrize("call,name", sorted(errors.HINTS))
def test_every_hint_key_follows_the_grammar_and_is_raised_by_some_code_path(call, name):
    assert isinstance(getattr(errno, name, None), int), f"{name} is no errno"
    key = KEY_GRAMMAR.fullmatch(call)
    assert key, f"{call!r}: a call, then at most one word for what it acted on"
    # raised with this call (`SyscallError("fork", ...)`, `_check(r, "mount", ...)`), or a verb
    # whose object is named where it is called (`f"write {name}"` with "uid_map", cgroup files)
    raised = call in LITERALS or (key["what"] is not None and bool(
        {key["call"], f"{key['call']} "} & LITERALS)
        and any(key["what"] in text for text in LITERALS))
    assert raised, f"no code in pycontain/ raises an error with the call {call!r}"


def test_message_shows_flags_by_name_and_arguments_by_repr():
    e = SyscallError("mount", (None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE, None),
                     errno.EINVAL)
    assert str(e).splitlines()[0] == (
        "mount(None, '/', None, MS_REC|MS_PRIVATE, None) failed: EINVAL (Invalid argument)")
    e = SyscallError("unshare", (CloneFlag.CLONE_NEWUSER | CloneFlag.CLONE_NEWNS,), errno.EINVAL)
    assert str(e).startswith("unshare(CLONE_NEWNS|CLONE_NEWUSER) failed: EINVAL")
    assert str(SyscallError("umount2", ("/m", UmountFlag.MNT_DETACH), errno.EIO)) == (
        "umount2('/m', MNT_DETACH) failed: EIO (Input/output error)")  # no hint: one line


def test_syscall_error_is_an_oserror_with_its_data():
    e = SyscallError("pivot_root", ("/a", "/a/.old"), errno.EINVAL)
    assert isinstance(e, OSError) and isinstance(e, PycontainError)
    assert (e.errno, e.call, e.arguments, e.errno_name) == (
        errno.EINVAL, "pivot_root", ("/a", "/a/.old"), "EINVAL")


def test_notes_follow_the_error():
    e = SyscallError("sethostname", ("x",), errno.EPERM)
    e.add_note("while setting the hostname of container 'demo'")
    lines = format_error(e).splitlines()
    assert lines[0].startswith("sethostname('x') failed: EPERM")
    assert lines[1].startswith("  hint: only root")
    assert lines[2] == "while setting the hostname of container 'demo'"


def test_spec_error_names_the_parameter_and_the_accepted_form():
    e = SpecError("hostname", "1-64 bytes without NUL", "")
    assert str(e) == "`hostname` must be 1-64 bytes without NUL, got ''"
    assert isinstance(e, ValueError)
    assert isinstance(CommandNotFoundError("command", "on PATH", "x"), FileNotFoundError)


def test_unknown_errno_gets_a_symbolic_fallback():
    assert str(SyscallError("mount", (), 9999)).startswith("mount() failed: E9999")


WIRE_SAMPLES = [
    SyscallError("unshare", (CloneFlag.CLONE_NEWUSER,), errno.EINVAL),
    SyscallError("mount", (None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE, None),
                 errno.EPERM),
    SyscallError("execve", ("/bin/x", ["/bin/x", "-a"]), errno.EACCES),
    SpecError("hostname", "1-64 bytes", "x" * 65, hint="shorter"),
    CommandNotFoundError("command", "on PATH", "nosuch"),
    CgroupError("failed to write 'max' to pids.max", errno.EINVAL, hint="h"),
    PreflightError("not the lab VM", hint="vagrant up"),
    ProcessError("nft -f - failed: Error", hint="nft list ruleset"),
]


@pytest.mark.parametrize("original", WIRE_SAMPLES, ids=lambda e: type(e).__name__)
def test_errors_cross_the_process_boundary_unchanged(original):
    import json

    original.add_note("while testing")
    copy = from_wire(json.loads(json.dumps(to_wire(original))))
    assert type(copy) is type(original)
    assert str(copy) == str(original)
    assert copy.__notes__ == ["while testing"]
    if isinstance(original, SyscallError):
        assert (copy.call, copy.arguments, copy.errno) == (
            original.call, tuple(list(a) if isinstance(a, list) else a
                                 for a in original.arguments), original.errno)
        assert [type(a) for a in copy.arguments] == [type(a) for a in original.arguments]


def test_a_bug_in_init_arrives_as_a_pycontain_error_naming_its_type():
    copy = from_wire(to_wire(KeyError("spec")))
    assert type(copy) is PycontainError and str(copy) == "KeyError: 'spec'"


def test_a_command_not_found_says_where_it_was_looked_up(tmp_path):
    from pycontain.fs import rootfs

    with pytest.raises(CommandNotFoundError) as on_host:
        rootfs.resolve_command("no-such-command")
    assert on_host.value.hint == errors.HINTS[("execvp", "ENOENT")]
    assert "host's files" in str(on_host.value)
    (tmp_path / "bin").mkdir()
    with pytest.raises(CommandNotFoundError) as in_rootfs:
        rootfs.resolve_command("no-such-command", str(tmp_path))
    assert in_rootfs.value.hint == errors.HINTS[("execvp rootfs", "ENOENT")]
    assert "inside the rootfs only" in str(in_rootfs.value) and "ls /bin" in str(in_rootfs.value)


def test_what_a_parameter_needs_crosses_the_process_boundary():
    import json

    original = SpecError("publish", "used only with network='bridge'", ["8080:80"],
                         needs=("network", "bridge"))
    copy = from_wire(json.loads(json.dumps(to_wire(original))))
    assert copy.needs == ("network", "bridge")
    assert copy.worded({"publish": "-p", "network": "--network"}) == (
        "-p 8080:80 needs --network bridge")
    assert str(copy) == "`publish` must be used only with network='bridge', got ['8080:80']"
