"""The command's help and its exit-status rules (no root needed)."""

from __future__ import annotations

import errno
import inspect
import subprocess
import sys

import pytest

from pycontain.cli import (
    FLAG_OF,
    RUN_FLAGS,
    RUN_OPTIONS,
    RUN_REPEATED,
    _argparse_args,
    _quick_run_args,
    exit_status,
)
from pycontain.errors import CommandNotFoundError, PreflightError, SpecError, SyscallError
from pycontain.spec import Spec


def help_of(*verb: str) -> str:
    return subprocess.run([sys.executable, "-m", "pycontain", *verb, "--help"],
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("verb", ["run", "rootfs", "doctor", "cleanup"])
def test_every_verb_has_help(verb):
    assert help_of(verb).startswith("usage: pycontain " + verb)


def test_run_help_says_what_the_container_sees_and_the_exit_statuses():
    text = help_of("run")
    assert "keeps the host's filesystem view" in text
    assert "125" in text and "127" in text and "128+N" in text
    assert "--namespaces" in text and "--hostname" in text and "--rootfs" in text


def test_exit_statuses_follow_docker_run():
    assert exit_status(CommandNotFoundError("command", "x", "y")) == 127
    assert exit_status(SyscallError("execve", ("x", ["x"]), errno.ENOENT)) == 127
    assert exit_status(SyscallError("execve", ("x", ["x"]), errno.EACCES)) == 126
    assert exit_status(SyscallError("mount", (), errno.EPERM)) == 125
    assert exit_status(SpecError("hostname", "x", "")) == 125
    assert exit_status(PreflightError("no")) == 125


# --- the flags: two parsers, one answer; errors that name the flag ---------------------------

def _options() -> list[str]:
    return [*RUN_OPTIONS, *RUN_REPEATED.values(), *RUN_FLAGS]


def _words_for(flag: str) -> list[list[str]]:
    """Ways to write `flag`, good and bad, each ending in `-- true`."""
    if flag in RUN_FLAGS:
        return [[flag], [f"{flag}=1"], [flag, flag], [flag, "x"]]
    return [[flag, "v"], [f"{flag}=v"], [f"{flag}="], [flag], [flag, "-3600"], [flag, "-x"],
            [flag, "--init"], [flag, "a", flag, "b"], [flag, "v=w"]]


def _argparse_or_refusal(argv: list[str]) -> dict[str, object] | str:
    try:
        return vars(_argparse_args(argv))
    except SystemExit as e:
        return f"refused with {e.code}"


@pytest.mark.parametrize("flag", _options())
def test_the_fast_parser_gives_argparse_result_or_leaves_it_to_argparse(flag, capsys):
    for words in _words_for(flag):
        argv = ["run", *words, "--", "true"]
        fast, slow = _quick_run_args(argv), _argparse_or_refusal(argv)
        capsys.readouterr()  # argparse's usage and error, not this test's business
        if fast is not None:  # it answered: argparse must agree, and must not have refused
            assert vars(fast) == slow, argv


def test_every_flag_sets_a_parameter_of_spec():
    parameters = set(inspect.signature(Spec).parameters)
    for parameter in FLAG_OF:
        assert parameter.partition("[")[0] in parameters | {"command"}, parameter


def _typo(flag: str) -> str:
    """`--hostname` -> `--hsotname`: two letters swapped, not an abbreviation argparse takes."""
    i = next(i for i in range(3, len(flag) - 1) if flag[i] != flag[i + 1])
    return flag[:i] + flag[i + 1] + flag[i] + flag[i + 2:]


@pytest.mark.parametrize("flag", [*RUN_OPTIONS, *RUN_FLAGS])
def test_a_mistyped_flag_gets_runs_usage_and_the_nearest_flag(flag):
    words = [_typo(flag)] if flag in RUN_FLAGS else [_typo(flag), "1"]
    done = subprocess.run([sys.executable, "-m", "pycontain", "run", *words, "--", "true"],
                          capture_output=True, text=True)
    assert done.returncode == 125 and "Traceback" not in done.stderr
    assert done.stderr.startswith("usage: pycontain run [-h] [--hostname NAME]")
    *_, error, hint = done.stderr.splitlines()
    assert error == f"pycontain: unrecognized arguments: {words[0]}"
    assert hint == f"  hint: did you mean {flag}?"


def test_the_command_line_names_flags_where_python_names_parameters():
    e = SpecError("memory_high", "at most memory_max (32 MiB)", "64M", hint="h")
    assert str(e) == "`memory_high` must be at most memory_max (32 MiB), got '64M'\n  hint: h"
    assert e.worded(FLAG_OF) == "--memory-high must be at most --memory (32 MiB), got '64M'\n" \
                                "  hint: h"
    assert SpecError("hostname", "set only with 'uts' among the namespaces", "box",
                     needs=("namespaces", "uts")).worded(FLAG_OF) == (
        "--hostname box needs uts in --namespaces")
    assert SpecError("read_only", "used only with a rootfs", True,
                     needs=("rootfs", None)).worded(FLAG_OF) == "--read-only needs --rootfs"
    assert SpecError("command", "on PATH", "x").worded(FLAG_OF) == (
        "the command after -- must be on PATH, got 'x'")


def test_both_parsers_take_trace():
    quick = _quick_run_args(["run", "--trace", "--hostname", "box", "--", "true"])
    assert quick is not None and quick.trace is True
    assert _quick_run_args(["run", "--", "true"]).trace is False  # type: ignore[union-attr]
    assert _argparse_args(["run", "--trace", "--", "true"]).trace is True
    help_text = subprocess.run([sys.executable, "-m", "pycontain", "run", "--help"],
                               capture_output=True, text=True).stdout
    assert "--trace" in help_text and "system call" in help_text
