"""`pycontain-oci`: pycontain with runc's command line, for podman and conmon (lesson 24).

    pycontain-oci [--root DIR] [--log FILE] [--log-format text|json] [--debug]
                  [--systemd-cgroup] COMMAND ...

COMMAND is `create --bundle DIR [--pid-file FILE] ID`, `start ID`, `state ID`,
`kill [--all] ID [SIGNAL]`, `delete [--force] ID`, `exec [--process FILE] [--pid-file FILE]
[--detach] ID [ARGS...]`, `ps [--format table|json] ID`, `list`, `features`, or `--version`.

It is what conmon calls, so its grammar is runc's: global options first, `--opt VALUE` or
`--opt=VALUE`, an error as one line on stderr and, with `--log`, as a JSON line
(`{"level": "error", "msg": ..., "time": ...}`) that conmon copies into podman's own error,
exit status 1; never a traceback. Hand-parsed rather than with argparse, whose import costs
more than the verbs it would parse (bench/lifecycle.py).

See also: runc(8), runc-create(8), conmon(8), podman(1) `--runtime`.
"""

from __future__ import annotations

import os
import sys

from pycontain.errors import PycontainError, SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

VERSION = "0.24"
#: global options and whether each takes a value
GLOBAL = {"--root": True, "--log": True, "--log-format": True, "--debug": False,
          "--systemd-cgroup": False, "--rootless": True, "--criu": True}
#: each command's options: name -> (takes a value, the key it is stored under)
OPTIONS: dict[str, dict[str, tuple[bool, str]]] = {
    "create": {"--bundle": (True, "bundle"), "-b": (True, "bundle"),
               "--pid-file": (True, "pid_file"), "--console-socket": (True, "console"),
               "--no-pivot": (False, "no_pivot"), "--no-new-keyring": (False, "keyring"),
               "--preserve-fds": (True, "preserve")},
    "start": {}, "state": {}, "list": {}, "features": {},
    "kill": {"--all": (False, "all"), "-a": (False, "all")},
    "delete": {"--force": (False, "force"), "-f": (False, "force")},
    "exec": {"--process": (True, "process"), "-p": (True, "process"),
             "--pid-file": (True, "pid_file"), "--detach": (False, "detach"),
             "-d": (False, "detach"), "--console-socket": (True, "console"),
             "--tty": (False, "tty"), "-t": (False, "tty"), "--cwd": (True, "cwd"),
             "--env": (True, "env"), "-e": (True, "env"), "--user": (True, "user"),
             "-u": (True, "user"), "--preserve-fds": (True, "preserve")},
    "ps": {"--format": (True, "format"), "-f": (True, "format")},
}
USAGE = ("usage: pycontain-oci [--root DIR] [--log FILE] [--log-format text|json] COMMAND; "
         "COMMAND one of " + ", ".join(OPTIONS) + " (runc's grammar)")


def parse(argv: list[str]) -> tuple[dict[str, Any], str, dict[str, Any], list[str]]:
    """(global options, command, its options, its words) from `argv`, runc's way.

    >>> parse(["--root", "/r", "create", "--bundle=/b", "c1"])[1:]
    ('create', {'bundle': '/b'}, ['c1'])
    """
    given: dict[str, Any] = {}
    words = list(argv)
    while words and words[0].startswith("-"):
        name, equals, value = words.pop(0).partition("=")
        if name in ("--version", "-v", "--help", "-h"):
            return given, name.lstrip("-")[0] == "v" and "version" or "help", {}, []
        if name not in GLOBAL:
            raise SpecError(name, "a global option: " + ", ".join(GLOBAL), name)
        given[name] = _value(name, equals, value, words) if GLOBAL[name] else True
    if not words:
        raise SpecError("COMMAND", ", ".join(OPTIONS), None, hint=USAGE)
    command = words.pop(0)
    options: dict[str, Any] = {}
    rest: list[str] = []
    if command not in OPTIONS:
        raise SpecError("COMMAND", ", ".join(OPTIONS), command, hint=USAGE)
    known = OPTIONS[command]
    while words:
        word = words.pop(0)
        if word == "--" or (rest and command == "exec"):
            rest += words if word == "--" else [word, *words]
            break
        name, equals, value = word.partition("=")
        if name.startswith("-") and name != "-":
            if name not in known:
                raise SpecError(name, f"an option of `{command}`: " + (
                    ", ".join(known) or "none"), word)
            takes, key = known[name]
            options[key] = _value(name, equals, value, words) if takes else True
            if key == "env":
                options.setdefault("envs", []).append(options.pop("env"))
        else:
            rest.append(word)
    return given, command, options, rest


def _value(name: str, equals: str, value: str, words: list[str]) -> str:
    if equals:
        return value
    if not words:
        raise SpecError(name, "followed by a value", None)
    return words.pop(0)


def _one_id(command: str, rest: list[str], most: int = 1) -> str:
    if not rest or len(rest) > most:
        raise SpecError("ID", f"the container's id after `{command}`", rest or None)
    return rest[0]


def run(parsed: tuple[dict[str, Any], str, dict[str, Any], list[str]]) -> int:
    """Do what `parse` read; return the exit status. Errors propagate (see `main`)."""
    from pycontain.oci import lifecycle

    given, command, options, rest = parsed
    if command == "version":
        print(f"pycontain-oci version {VERSION}\nspec: {lifecycle.OCI_VERSION}")
        return 0
    if command == "help":
        print(USAGE)
        return 0
    os.environ.setdefault("PYCONTAIN_ALLOW_HOST", "1")  # called as an OCI runtime, not a lab
    root = given.get("--root") or lifecycle.DEFAULT_ROOT
    if command == "create":
        lifecycle.create(root, _one_id(command, rest), options.get("bundle") or ".",
                         options.get("pid_file"), options.get("console"))
    elif command == "start":
        lifecycle.start(root, _one_id(command, rest))
    elif command == "state":
        import json  # here: create, start and delete, the verbs of every container, skip it

        print(json.dumps(lifecycle.state(root, _one_id(command, rest)), indent=2))
    elif command == "kill":
        container_id = _one_id(command, rest, 2)
        sig = lifecycle.signal_number(rest[1] if len(rest) > 1 else "TERM")
        lifecycle.kill(root, container_id, sig, all_processes=bool(options.get("all")))
    elif command == "delete":
        lifecycle.delete(root, _one_id(command, rest), force=bool(options.get("force")))
    elif command == "list":
        for container_id in lifecycle.list_ids(root):
            shown = lifecycle.state(root, container_id)
            print(f"{container_id}\t{shown['pid']}\t{shown['status']}\t{shown['bundle']}")
    elif command == "features":
        import json

        print(json.dumps(lifecycle.features(), indent=2))
    elif command == "ps":
        from pycontain import jsonc

        pids = lifecycle.pids(root, _one_id(command, rest))
        print(jsonc.dumps(pids) if options.get("format") == "json" else
              "PID\n" + "\n".join(map(str, pids)))
    elif command == "exec":
        return _exec(root, options, rest)
    return 0


def _exec(root: str, options: dict[str, Any], rest: list[str]) -> int:
    from pycontain import jsonc, nsenter
    from pycontain.oci import lifecycle

    if not rest:
        raise SpecError("ID", "the container's id after `exec`", None)
    container_id, args = rest[0], rest[1:]
    if options.get("process"):
        try:
            with open(options["process"]) as f:
                process = jsonc.loads(f.read())
        except (OSError, ValueError) as e:
            raise SpecError("--process", "a readable JSON file with an OCI process object",
                            options["process"], hint=str(e)) from None
        if not isinstance(process, dict):
            raise SpecError("--process", "a JSON object", process)
    else:
        process = {"args": args, "env": options.get("envs", []), "cwd": options.get("cwd"),
                   "terminal": bool(options.get("tty"))}
        if options.get("user"):
            uid, _, gid = options["user"].partition(":")
            process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    pid = lifecycle.exec_process(root, container_id, process, options.get("console"))
    if options.get("pid_file"):
        with open(f"{options['pid_file']}.tmp", "w") as f:
            f.write(str(pid))
        os.rename(f"{options['pid_file']}.tmp", options["pid_file"])
    if options.get("detach"):
        return 0
    return nsenter.wait(pid)


def log_error(given: dict[str, Any], message: str) -> None:
    """One line on stderr; with --log, the JSON line conmon reads (runc's logrus format)."""
    print(f"pycontain-oci: {message}", file=sys.stderr)
    path = given.get("--log")
    if not path:
        return
    import json
    import time

    line = json.dumps({"level": "error", "msg": message,
                       "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    if given.get("--log-format", "text") != "json":
        line = f"time=\"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\" " \
               f"level=error msg={json.dumps(message)}"
    try:
        with open(path, "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


def main(argv: list[str] | None = None) -> None:
    """The console script: `run`, its errors as one line (and a JSON log line), status 1."""
    args = sys.argv[1:] if argv is None else argv
    given: dict[str, Any] = {}
    if "--log" in args[:-1]:  # for an error of parse itself
        given["--log"] = args[args.index("--log") + 1]
    try:
        parsed = parse(args)
        given = parsed[0]
        code = run(parsed)
    except SpecError as e:
        from pycontain.oci.config import NAMES

        log_error(given, e.worded(NAMES).replace("\n  hint:", "; hint:"))
        code = 1
    except PycontainError as e:
        log_error(given, str(e).replace("\n  hint:", "; hint:"))
        code = 1
    except OSError as e:
        log_error(given, f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
        code = 1
    except KeyboardInterrupt:
        code = 130
    except Exception as e:  # a bug of ours: still one line, never a traceback
        log_error(given, f"internal error: {type(e).__name__}: {e}")
        code = 1
    sys.stdout.flush()
    os._exit(code)
