"""One pycontain function, run in a fresh interpreter, its result or its error handed back.

A notebook's kernel must never change its own namespaces, mounts or threads (DESIGN, "The
process model"). So whatever would change the calling process runs in a new, lean interpreter
instead, and dies with it: `in_fresh_process(func, *args)` calls `func(*args)` there and returns
its result. The request travels as JSON in the helper's argv (so it also works behind a
`prefix` such as `nsenter --target PID --ipc --`, or inside a container: `argv()`); the answer
comes back as one JSON line on stdout, and an error raised there is raised here again with the
same type, call and errno (`errors.to_wire`, as for a container's first process).

`start(func, *args)` does the same but keeps the helper alive after it answered, until `stop()`,
for experiments that need a process to stay in its namespace while the notebook looks (lesson 04).

    >>> argv(in_fresh_process)[:3] == [sys.executable, "-I", "-S"]
    True

See also: subprocess, json; runc and containerd run their CNI plugins the same way.
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pycontain import fresh_python
from pycontain.errors import ProcessError, PycontainError, from_wire, to_wire

_SERVE = "from pycontain.helper import _serve;_serve()"
_DIED = ("it crashed or was killed before it could answer (its last words are above); "
         "`dmesg` says whether the kernel killed it")
_SLOW = ("the machine is very busy, or the step waits on something that never comes; "
         "run it again, and look at `ps -ef` for a stuck pycontain process")


def argv(func: Callable[..., Any], *args: Any, same_path: bool = False,
         hold: bool = False) -> list[str]:
    """The argv of a fresh interpreter that calls the pycontain function `func(*args)` and
    prints the answer. `same_path`: this interpreter's import path (for a dependency such as
    pyroute2); `hold`: stay alive after answering until stdin closes."""
    where = f"{func.__module__}:{func.__qualname__}"
    if not func.__module__.startswith("pycontain"):
        raise ValueError(f"`func` must be a function of the pycontain package, got {where}")
    request = {"func": where, "args": [_plain(a) for a in args], "hold": hold}
    return fresh_python(_SERVE, json.dumps(request), same_path=same_path)


def answer(stdout: str | None, status: int | None, stderr: str | None, what: str) -> Any:
    """The result in a helper's output, or its error raised again; `what` names the helper in
    the error when it printed no answer at all (it crashed, or was killed)."""
    lines = (stdout or "").strip().splitlines()
    try:
        reply = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise ProcessError(f"the fresh process running {what} printed no answer (exit status "
                           f"{status}): {(stderr or '').strip()[-500:]}", hint=_DIED) from None
    if "error" in reply:
        raise from_wire(reply["error"])
    return reply["result"]


def in_fresh_process(func: Callable[..., Any], *args: Any, timeout_s: float = 60.0,
                     prefix: Sequence[str] = (), same_path: bool = False) -> Any:
    """Call the pycontain function `func(*args)` in a new interpreter and return its result.

    Whatever it does to its process (new namespaces, a new hostname, mounts) dies with that
    process. Arguments and result travel as JSON; a `PycontainError` raised there is raised
    here again, with the same type, call and errno. `prefix` runs the interpreter through
    another program first (`nsenter`, `setpriv`).
    """
    try:
        done = subprocess.run([*prefix, *argv(func, *args, same_path=same_path)],
                              capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:  # subprocess.run killed and reaped it
        raise ProcessError(f"the fresh process running {func.__qualname__} did not answer "
                           f"within {timeout_s} s", hint=_SLOW) from None
    return answer(done.stdout, done.returncode, done.stderr, func.__qualname__)


def start(func: Callable[..., Any], *args: Any, timeout_s: float = 60.0,
          prefix: Sequence[str] = ()) -> tuple[subprocess.Popen[str], Any]:
    """Like `in_fresh_process`, but the helper stays alive after `func` returned (in whatever
    namespaces `func` left it, with whatever it started) until `stop(helper)`; it dies with
    the caller, too. Returns (the helper, the result)."""
    process = subprocess.Popen([*prefix, *argv(func, *args, hold=True)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    line = process.stdout.readline() if ready else ""
    try:
        return process, answer(line, process.poll(), "", func.__qualname__)
    except PycontainError:
        stop(process)
        if line:
            raise
        raise ProcessError(f"the fresh process running {func.__qualname__} did not answer "
                           f"within {timeout_s} s (exit status {process.returncode})",
                           hint=_SLOW) from None


def stop(process: subprocess.Popen[str]) -> None:
    """End a helper from `start` and reap it: its namespaces, and what only they held, go too."""
    process.kill()
    process.communicate()


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, int) else value  # a kernel_names flag -> int for JSON


def _serve() -> None:
    """The fresh process: run the request in argv[1], print one JSON line; hold if asked."""
    import importlib

    request = json.loads(sys.argv[1])
    module, _, name = request["func"].partition(":")
    try:
        if request["hold"]:  # die with the caller, not only when it closes our stdin
            from pycontain import syscalls

            syscalls.prctl(syscalls.PrctlOption.PR_SET_PDEATHSIG, signal.SIGKILL)
        func: Any = importlib.import_module(module)
        for part in name.split("."):
            func = getattr(func, part)
        reply = {"result": func(*request["args"])}
    except Exception as exc:  # every failure crosses back to the caller
        reply = {"error": to_wire(exc)}
    print(json.dumps(reply), flush=True)
    if request["hold"] and "result" in reply:
        sys.stdin.read()
    sys.exit(0 if "result" in reply else 1)
