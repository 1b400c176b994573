"""The command's help and its exit-status rules (no root needed)."""

from __future__ import annotations

import errno
import inspect
import subprocess
import sys

import pytest

from pycontain import cli, settings
from pycontain.cgroups.limits import FIELDS
from pycontain.cli import (
    FLAG_OF,
    RUN_FLAGS,
    RUN_OPTIONS,
    RUN_REPEATED,
    RUN_SHORT,
    _argparse_args,
    _quick_run_args,
    _quick_verb_args,
    main,
)
from pycontain.errors import (
    CommandNotFoundError,
    PreflightError,
    SpecError,
    SyscallError,
    exit_status,
)
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
    return [*RUN_OPTIONS, *RUN_SHORT.values(), *RUN_FLAGS]


#: values an option may be given, good and malformed: empty, option-like, negative numbers,
#: the end-of-options marker, another flag, an `=` inside
VALUES = ["v", "", "-x", "-3600", "-1.5", "-", "--", "---", "--init", "--hostname", "-p", "v=w"]


def _words_for(flag: str) -> list[list[str]]:
    """Ways to write `flag`, good and bad, each followed by `-- true` in the tests."""
    if flag in RUN_FLAGS:
        return [[flag], [f"{flag}=1"], [f"{flag}="], [flag, flag], [flag, "x"], [flag, "-x"]]
    return [*([flag, v] for v in VALUES if v != "--"), *([f"{flag}={v}"] for v in VALUES),
            [flag], [flag, "a", flag, "b"], ["--init", flag, "v"], [flag, "v", "--init"]]


def _argparse_or_refusal(argv: list[str]) -> dict[str, object] | str:
    try:
        return vars(_argparse_args(argv))
    except SystemExit as e:
        return f"refused with {e.code}"


def _cases() -> list[list[str]]:
    return [*(["run", *words, "--", "true"] for flag in _options() for words in _words_for(flag)),
            ["run", "-d", "--", "true"], ["run", "-d", "--rm", "--name", "web", "--", "true"]]


@pytest.mark.parametrize("argv", _cases(), ids=" ".join)
def test_the_two_parsers_give_the_same_result_or_the_same_refusal(argv, capsys):
    """The fast parser answers only what argparse answers the same way; all else it leaves to
    argparse (None), which then gives the result or the refusal: the command sees one parser."""
    fast, slow = _quick_run_args(argv), _argparse_or_refusal(argv)
    capsys.readouterr()  # argparse's usage and error, not this test's business
    if fast is not None:  # without a limit's flag it never reads their table: no names then
        absent = set(slow) - set(vars(fast)) if isinstance(slow, dict) else set()
        assert absent <= {name[2:].replace("-", "_") for name in cli.limit_flags()}, argv
        assert all(slow[name] is None for name in absent), argv  # type: ignore[index]
        assert vars(fast) == {k: v for k, v in slow.items() if k not in absent}, argv
    if isinstance(slow, dict):  # accepted: every value is one string, never argparse's []
        for flag in RUN_OPTIONS:
            value = slow[flag[2:].replace("-", "_")]
            values = value if flag in RUN_REPEATED and value is not None else [value]
            assert all(v is None or isinstance(v, str) for v in values), (argv, flag, value)


@pytest.mark.parametrize("argv", [
    ["exec", "web", "true"], ["exec", "web"], ["exec", "-i", "web", "sh", "-c", "echo -i"],
    ["exec", "-e", "A=1", "--env", "B", "--env=C=3", "-w", "/tmp", "-u", "1:1", "web", "ls"],
    ["exec", "--workdir=/srv", "--user", "nobody", "-t", "--interactive", "web", "sh"],
    ["exec", "web", "-e", "A=1", "ls"], ["exec", "web", "--", "ls"], ["exec", "-it", "web", "sh"],
    ["exec", "-e", "-x", "web", "ls"], ["exec", "-eA=1", "web", "ls"], ["exec", "-e"],
    ["exec", "--", "web", "ls"], ["exec", "--help"], ["exec", "-w=/tmp", "web", "ls"],
    ["exec", "--tty=1", "web", "ls"], ["exec"],
    ["rm", "web"], ["rm", "-f", "web", "db"], ["rm", "--force", "web"], ["rm", "web", "-f"],
    ["rm"], ["rm", "-f"], ["rm", "-x", "web"], ["rm", "--", "web"], ["rm", "--force=1", "web"],
])
def test_the_quick_verb_parser_gives_argparse_s_result_or_leaves_it_to_argparse(argv, capsys):
    """`exec` and `rm` skip argparse (its import alone costs more than `runc exec`): the quick
    parser's answer, when it gives one, is argparse's own."""
    fast, slow = _quick_verb_args(argv), _argparse_or_refusal(argv)
    capsys.readouterr()
    if fast is not None:  # without a limit's flag it never reads their table: no names then
        absent = set(slow) - set(vars(fast)) if isinstance(slow, dict) else set()
        assert absent <= {name[2:].replace("-", "_") for name in cli.limit_flags()}, argv
        assert all(slow[name] is None for name in absent), argv  # type: ignore[index]
        assert vars(fast) == {k: v for k, v in slow.items() if k not in absent}, argv
    assert fast is not None or argv in (
        ["exec", "-it", "web", "sh"], ["exec", "-e", "-x", "web", "ls"],
        ["exec", "web", "--", "ls"],
        ["exec", "-eA=1", "web", "ls"], ["exec", "-e"], ["exec", "--", "web", "ls"],
        ["exec", "--help"], ["exec", "-w=/tmp", "web", "ls"], ["exec", "--tty=1", "web", "ls"],
        ["exec"], ["rm", "web", "-f"], ["rm"], ["rm", "-f"], ["rm", "-x", "web"],
        ["rm", "--", "web"], ["rm", "--force=1", "web"]), argv  # the plain forms are quick


@pytest.mark.parametrize(("words", "said"), [
    (["--hostname", "-x"], "argument --hostname: expected one argument"),
    (["--hostname=--"], "argument --hostname: expected one argument"),
    (["-p=--"], "argument -p/--publish: expected one argument"),
    (["--init=1"], "argument --init: ignored explicit argument '1'"),
])
def test_a_malformed_option_is_refused_by_both_parsers_alike(words, said, capsys):
    argv = ["run", *words, "--", "true"]
    assert _quick_run_args(argv) is None
    assert _argparse_or_refusal(argv) == "refused with 125"
    assert capsys.readouterr().err.splitlines()[-1] == f"pycontain: {said}"


def test_a_value_that_starts_with_a_dash_is_taken_after_an_equals_sign(capsys):
    argv = ["run", "--hostname=-x", "--", "true"]
    fast = _quick_run_args(argv)
    assert fast is not None and fast.hostname == "-x" == _argparse_args(argv).hostname


# --- an unexpected exception: one line, what was being done, the traceback only when asked ---

def _main(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    code = info.value.code
    assert isinstance(code, int)
    return code


def test_an_internal_error_is_one_line_with_what_was_done_and_how_to_see_more(monkeypatch,
                                                                              capsys):
    def broken(args):
        raise KeyError("veth")

    monkeypatch.setattr(cli, "_run", broken)
    monkeypatch.delenv(settings.DEBUG_VARIABLE, raising=False)
    assert _main(["run", "--", "true"]) == 125
    error, hint = capsys.readouterr().err.splitlines()
    assert error == "pycontain: internal error while running the container: KeyError: 'veth'"
    assert hint.startswith("  hint: ") and f"{settings.DEBUG_VARIABLE}=1" in hint
    monkeypatch.setenv(settings.DEBUG_VARIABLE, "1")
    assert _main(["run", "--", "true"]) == 125
    said = capsys.readouterr().err
    assert said.startswith("Traceback (most recent call last):") and "in broken" in said
    assert "pycontain: internal error while running the container: KeyError: 'veth'" in said


@pytest.mark.parametrize("error", [
    RuntimeError("nft -f - failed"), TimeoutError("no answer"), ValueError("bad"),
    subprocess.TimeoutExpired(["nft"], 30), OSError(5, "Input/output error")])
def test_no_exception_reaches_the_user_as_a_traceback(error, monkeypatch, capsys):
    def broken(args):
        raise error

    monkeypatch.setattr(cli, "_cleanup", broken)
    monkeypatch.delenv(settings.DEBUG_VARIABLE, raising=False)
    assert _main(["cleanup", "--orphans"]) == 125
    said = capsys.readouterr().err
    assert "Traceback" not in said and len(said.splitlines()) == 2
    assert said.startswith("pycontain: internal error while removing pycontain- leftovers: ")


def test_a_warning_is_one_line_on_the_command_line(monkeypatch, capsys):
    import warnings

    def warns(args):
        warnings.warn("Failed to remove the cgroup pycontain-ctr-1: EBUSY, ignoring",
                      stacklevel=1)
        return 0

    monkeypatch.setattr(cli, "_doctor", warns)
    assert _main(["doctor"]) == 0
    assert capsys.readouterr().err == (
        "pycontain: warning: Failed to remove the cgroup pycontain-ctr-1: EBUSY, ignoring\n")


def test_every_flag_sets_a_parameter_of_spec():
    """A parameter of its signature, or a field of Limits (Spec's `**limit_fields`), or one of
    the lifecycle's (`run -d --name`, `logs --tail`, ...)."""
    parameters = set(inspect.signature(Spec).parameters) - {"limit_fields"} | set(FIELDS)
    for parameter in FLAG_OF:
        assert parameter.partition("[")[0] in parameters | {"command"} | set(
            cli.LIFECYCLE_PARAMETERS), parameter


def _typo(flag: str) -> str:
    """`--hostname` -> `--hsotname`: two letters swapped, not an abbreviation argparse takes."""
    i = next((i for i in range(3, len(flag) - 1) if flag[i] != flag[i + 1]), 2)  # --rm: --mr
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
