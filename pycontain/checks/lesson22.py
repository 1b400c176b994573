"""The checks of lesson 22, assemble a container.

`check_web_server` calls the learner's `start_web_server(name, port)`, which should start a
detached container with the `pycontain` command and return its id. Then it asks what the
machine says, never the learner's code: the state as `pycontain inspect` prints it (running,
that name, a supervisor alive, a rootfs), the container's cgroup files (a memory limit that is
not `max`: memory.max, v1 memory.limit_in_bytes), the published port in the state, and a page
fetched from the host through that port.

The stretch, `check_graceful_stop`, wants a detached container that ends at once, with status
0 and a goodbye, when `stop` sends it SIGTERM. Before stopping it the check reads which signals
its first process catches (SigCgt in /proc/PID/status), so that a SIGTERM it never handles and
a handler that a foreground `sleep` held up are told apart.

Both run the learner's function with a run directory of the check's own ($PYCONTAIN_RUN_DIR,
under the one in use): every container it starts lands there, meets none of the lesson's, and
is removed at the end whatever happened (its cgroup, veth, layer, name and state directory with
it), as are containers it started in this process. It must return within START_LIMIT_S: a
`pycontain run` without -d that waits for its server is interrupted as Ctrl-C does (twice: the
second kills the container, and the command then releases it), not killed, which would leave
its cgroup and port behind.

Wrong turns recognised, each with its own message: no -d (refused with --name, or waiting in
the foreground), options refused (no id, no container), no name or another name, no --rootfs
(the host's own files, and no httpd there), a server gone to the background (no -f), no memory
limit or a memory.high only (v2), not on the bridge, the port pair reversed, another container
port, no index.html (404); for the stretch: SIGTERM not caught, a handler held up by a long
foreground command, a handler that does not end the shell, another exit status, no `ready` or
no `bye`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator
from typing import Any

from pycontain import procfs, runtime, settings, state, supervisor
from pycontain.checks import (
    CheckFailed,
    Passed,
    children,
    expect,
    fetch,
    release_children,
    release_started,
)
from pycontain.checks.exercise import exercise
from pycontain.errors import PycontainError, SpecError, format_error
from pycontain.fs import rootfs

#: how long the learner's function may take: `run -d` returns once the container runs
START_LIMIT_S = 20.0
#: how long the check waits for an ending it saw coming, and for a container to say `ready`
DEADLINE_S = 10.0
#: the stretch: the grace `stop` gives, and what the container says
GRACE_S = 3
READY, BYE = "ready", "bye"

WEB_HINTS = (
    "Every option is on `pycontain run --help` (or `cli('run', '--help').stdout`): which one "
    "detaches, which names, which limits memory (lesson 14), which puts the container on the "
    "bridge and which publishes a port (lesson 08), which gives it the embedded rootfs?",
    "The server is lesson 08's Try-it again: busybox httpd in the foreground (-f), on port 80 "
    "(-p), serving a directory (-h) that holds an index.html; the rootfs is read-only to you, "
    "/tmp is not, and one `sh -c` after `--` can write the page, then exec the server.",
    "What `cli(...)` returns is a CompletedProcess: when the id is empty, its .stderr says "
    "which option was refused and why; `-p` reads HOST:CONTAINER, as docker's does.",
)
GRACEFUL_HINTS = (
    "Look back at \"Stop a container that ignores SIGTERM\": that container said it was ready "
    "with `echo`, and ignored SIGTERM with a shell `trap`. Yours must do the opposite. A PID 1 "
    "gets only the signals it has a handler for (lesson 03).",
    "A shell runs a trap only after the foreground command it waits for has returned: with a "
    "long `sleep` in the foreground, the handler waits as long as the sleep. The handler must "
    "also end the shell, with the status the exercise asks for.",
)


# --- the check's own run directory, and everything in it removed -------------------------------

def _remove_all() -> list[str]:
    """Remove every container in the run directory in use (each killed, waited for, released:
    cgroup, veth, layer, name, state directory), then any stale name or half-made directory;
    say what was removed."""
    removed = []
    for container_id in state.ids():
        try:
            record = state.read(container_id)
        except (OSError, ValueError):
            record = {"name": None}
        try:
            supervisor.rm(container_id, force=True)
        except (PycontainError, OSError):  # a start cut short: remove it from its record
            state.remove(container_id)
        removed.append(record.get("name") or container_id[:12])
    for path in state.leftover_containers():
        state.remove_container(path)
    return removed


@contextlib.contextmanager
def _own_run_dir() -> Iterator[str]:
    """While inside, $PYCONTAIN_RUN_DIR is a directory of the check's own; on the way out
    every container there (and every one started in this process meanwhile) is removed, and a
    failure says so."""
    parent = settings.run_dir()
    os.makedirs(parent, mode=0o700, exist_ok=True)
    mine = tempfile.mkdtemp(prefix="check-lesson22-", dir=parent)
    given = os.environ.get(settings.RUN_DIR_VARIABLE)
    os.environ[settings.RUN_DIR_VARIABLE] = mine
    boxes, processes = set(runtime.unwaited()), children()
    failed: BaseException | None = None
    try:
        yield mine
    except BaseException as e:
        failed = e
        raise
    finally:
        try:
            started = release_started(boxes)  # in this process: through their Containers
            ended = _end_children(processes)
            removed, stopped = _remove_all(), started + ended
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(os.path.join(mine, state.NAMES))
            os.rmdir(mine)
        finally:
            if given is None:
                os.environ.pop(settings.RUN_DIR_VARIABLE, None)
            else:
                os.environ[settings.RUN_DIR_VARIABLE] = given
        if isinstance(failed, CheckFailed) and (removed or stopped):
            gone = (f" (the check removed {', '.join(removed)}, with the cgroup, network "
                    "and state directory)") if removed else ""
            raise CheckFailed(f"{failed}{gone}{stopped}") from failed


def _interrupt(pids: list[int]) -> None:
    """Ctrl-C, twice, to each of `pids` (a pidfd each, so that a reused pid gets nothing): a
    foreground `pycontain run` passes the first to its container and kills it on the second,
    then releases what it had and exits."""
    fds = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            fds.append(os.pidfd_open(pid))
    try:
        for _ in range(2):
            for fd in fds:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(fd, signal.SIGINT)
            time.sleep(0.5)  # two signals at once would arrive as one
    finally:
        for fd in fds:
            os.close(fd)


def _runs(pid: int) -> bool:
    """Whether process `pid` exists and has not ended (a zombie has)."""
    try:
        return not procfs.status(pid).state.startswith("Z")
    except (FileNotFoundError, ProcessLookupError):
        return False


def _end_children(before: set[int]) -> str:
    """End every process this one started since `before` (`children()` then) that still runs:
    a foreground `pycontain run` the learner's function waits for, or left running. Ctrl-C
    first (`_interrupt`), SIGKILL for what has not ended DEADLINE_S later; what was ended, in
    words ('' when nothing was)."""
    late = sorted(pid for pid in children() - before if _runs(pid))
    if not late:
        return ""
    _interrupt(late)
    deadline = time.monotonic() + DEADLINE_S
    while any(_runs(pid) for pid in late) and time.monotonic() < deadline:
        time.sleep(0.1)
    killed = [pid for pid in late if _runs(pid)]
    release_children(before)
    return (f" (the check interrupted the {len(late)} command(s) still running, "
            f"{', '.join(map(str, late))}, with Ctrl-C twice"
            + (f", and killed {', '.join(map(str, killed))}" if killed else "") + ")")


def _call(shown: str, func: Callable[..., Any], *args: Any) -> str:
    """The learner's `func(*args)`, given START_LIMIT_S; its value, stripped, or a
    `CheckFailed` that names what went wrong (raised, another type, too slow)."""
    before = children()
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["value"] = func(*args)
        except BaseException as e:  # handed to the check's own thread below
            outcome["error"] = e

    worker = threading.Thread(target=call, name=shown, daemon=True)
    worker.start()
    worker.join(START_LIMIT_S)
    if worker.is_alive():
        ended = _end_children(before)
        worker.join(DEADLINE_S)
        raise CheckFailed(
            f"{shown} did not return within {START_LIMIT_S:g} s{ended}: without -d, "
            "`pycontain run` waits until its container ends, and yours is meant to last "
            "(\"Containers that outlive their command\")")
    if "error" in outcome:
        e = outcome["error"]
        raise CheckFailed(f"{shown} raised {type(e).__name__}: {e}") from e
    value = outcome.get("value")
    if not isinstance(value, str):
        what = ("a CompletedProcess, what `cli(...)` returns, whose .stdout holds the id"
                if isinstance(value, subprocess.CompletedProcess) else repr(value)[:80])
        raise CheckFailed(f"{shown} returned {what}; return the id that `pycontain run -d` "
                          "prints (its stdout, stripped)")
    return value.strip()


# --- what the machine says about the container -------------------------------------------------

def _inspect(name: str) -> dict[str, Any] | None:
    """The state `pycontain inspect NAME` prints, or None when no container has that name."""
    done = subprocess.run([sys.executable, "-m", "pycontain", "inspect", name],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return None
    [record] = json.loads(done.stdout)
    return dict(record)


def _named(name: str, given: str, function: str) -> dict[str, Any]:
    """The state of the container called `name`; a failure that says what there is instead."""
    record = _inspect(name)
    if record is not None:
        return record
    others = [state.read(i) for i in state.ids()]
    if not others:
        raise CheckFailed(
            f"the command printed no id{f' (it printed {given[:60]!r})' if given else ''} and "
            "made no container: `pycontain run` refused its options before making anything; "
            "what `cli(...)` returns holds its stderr, which names the option and the form it "
            "takes")
    called = ", ".join(f"{o['id'][:12]} ({'called ' + repr(o['name']) if o['name'] else 'no name'})"
                       for o in others)
    raise CheckFailed(f"no container is called {name!r}, but your function started "
                      f"{called}: give it the name {function} gets (`pycontain run "
                      "--help` shows the option; `pycontain ps` finds a container by it)")


def _logs(reference: str) -> tuple[str, str]:
    """What the container wrote: (stdout, stderr)."""
    out: dict[str, str] = {"stdout": "", "stderr": ""}
    with contextlib.suppress(PycontainError, OSError):
        for stream, data in supervisor.logs(reference):
            out[stream] += data.decode(errors="replace")
    return out["stdout"], out["stderr"]


def _running(name: str) -> dict[str, Any]:
    """The state of the container `name`, or a CheckFailed saying how it ended."""
    record = _inspect(name)
    if record is None:
        raise CheckFailed(f"the container {name!r} was removed while the check looked at it: "
                          "start it without --rm")
    if record["status"] in ("running", "paused"):
        return record
    errors = _logs(name)[1].strip()[-300:]
    if record.get("exit_code") == 0:
        why = ("it ended by itself, with status 0: a detached server must stay in the "
               "foreground inside, as the container's first process, and busybox httpd goes "
               "to the background unless told not to (`httpd --help`)")
    elif record.get("oom_kills"):
        why = "the memory limit is too small for it: give it more (lesson 14)"
    else:
        why = "that says why"
    raise CheckFailed(f"the container {name!r} is {record['status']} ({record.get('reason')}); "
                      f"what it wrote to stderr: {errors!r}: {why}")


def _read(record: dict[str, Any], knob: str) -> str | None:
    """A knob of the container's cgroup, or None when it has no such file (v1: memory.high)."""
    cgroup = state.cgroup_of(record)
    try:
        return cgroup.read(knob) if cgroup is not None else None
    except (PycontainError, OSError):
        return None


def _memory_max(record: dict[str, Any]) -> tuple[str, str]:
    """The container's memory limit as its cgroup says it, and the file's name."""
    cgroup = state.cgroup_of(record)
    expect(cgroup is not None, "the container has no cgroup: start it detached (-d)")
    assert cgroup is not None
    knob = "memory.max" if cgroup.version == 2 else "memory.limit_in_bytes"
    try:
        return cgroup.read("memory.max"), knob
    except (PycontainError, OSError):
        if state.alive(record.get("container")):  # v1: no directory in the memory hierarchy
            return "max", knob
        state.wait_gone(record.get("supervisor"), DEADLINE_S)  # its cgroup went: it has ended
        _running(str(record["name"]))  # the check says how, once its supervisor recorded it
        raise


def _page(url: str, name: str, record: dict[str, Any]) -> str:
    """The page the server answers at `url`; a failure that says why there is none."""
    try:
        page = fetch(url, errors=True)
    except urllib.error.HTTPError as e:
        where = ("there is no index.html in the directory its -h names" if e.code == 404
                 else "its stderr may say why: " + repr(_logs(name)[1].strip()[-200:]))
        raise CheckFailed(f"the server answered {url} with {e.code} {e.reason}: {where}") \
            from None
    if not page:  # a server that ended answers nothing: say so, not "no page"
        if not state.alive(record.get("container")):
            state.wait_gone(record.get("supervisor"), DEADLINE_S)
        _running(name)
    expect(bool(page), f"nothing answered {url}: does the container run busybox's httpd, "
                       "in the foreground, on port 80?")
    return page


def _require_httpd() -> None:
    try:
        rootfs.require_tools(rootfs.ensure(), "httpd")
    except SpecError as e:
        raise CheckFailed(f"the embedded rootfs cannot serve a page: {format_error(e)}") from e


@exercise(hints=WEB_HINTS, answers=(supervisor.start, supervisor.launch))
def check_web_server(start_web_server: Callable[[str, int], object], name: str = "web22",
                     port: int = 18022) -> Passed:
    """`start_web_server(name, port)` starts a named, memory-limited, detached busybox httpd
    whose port 80 is published on host port `port`, and returns its id."""
    _require_httpd()
    with _own_run_dir():
        given = _call(f"start_web_server({name!r}, {port})", start_web_server, name, port)
        record = _named(name, given, "start_web_server")
        expect(record.get("image") is not None,
               "the container has no rootfs of its own: it sees the host's files (what it "
               "wrote, it wrote there), where there is no busybox httpd; the embedded rootfs, "
               "ROOT, has one (which option of `pycontain run` makes a directory its /?)")
        record = _running(name)
        expect(bool(given) and str(record["id"]).startswith(given),
               f"start_web_server returned {given[:12]!r}, but the container called {name!r} "
               f"is {str(record['id'])[:12]}: return what `pycontain run -d` printed")
        expect(state.alive(record.get("supervisor")),
               "the container has no supervisor: start it detached (-d)")
        memory_max, knob = _memory_max(record)
        expect(memory_max != "max" or _read(record, "memory.high") in ("max", None),
               "the container has a memory.high, which throttles it once crossed but stops "
               "nothing: the exercise asks for the hard limit, memory.max (lesson 14)")
        expect(memory_max != "max", f"nothing limits the container's memory ({knob}: no "
                                    "limit); which option of `pycontain run` sets one? "
                                    "(lesson 14)")
        network = record.get("network")
        expect(isinstance(network, dict) and bool(network.get("veth")),
               "the container has no network but its own loopback: nothing outside can reach "
               "its server (lesson 08)")
        assert isinstance(network, dict)
        published = [tuple(p) for p in network.get("publish") or ()]
        if not any(p[0] == port for p in published):
            reversed_ = any(p[:2] == (80, port) for p in published)
            raise CheckFailed(
                f"host port {port} is not published to the container (its ports, (host, "
                f"container, protocol): {published or 'none'})"
                + (f": the pair is the wrong way round, -p reads HOST:CONTAINER as docker's "
                   f"does, and the host's port is {port}" if reversed_ else
                   "; `pycontain run --help` shows how (lesson 08)"))
        expect((port, 80, "tcp") in published,
               f"host port {port} goes to the container's port "
               f"{next(p[1] for p in published if p[0] == port)} "
               f"({next(p[2] for p in published if p[0] == port)}), but the exercise's server "
               "listens on TCP port 80")
        gateway = next(ipaddress.ip_network(network["subnet"]).hosts())
        page = _page(f"http://{gateway}:{port}/", name, record)
        short = str(record["id"])[:12]
    return Passed(f"{name} ({short}) ran detached with {knob} {memory_max} and answered "
                  f"through host port {port}: {page.strip()[:40]!r}; removed again")


@exercise(hints=GRACEFUL_HINTS, stretch=True)
def check_graceful_stop(start_graceful: Callable[[str], object],
                        name: str = "graceful22") -> Passed:
    """Stretch: `start_graceful(name)` starts a detached container called `name` that says
    `ready` once it handles SIGTERM, and on SIGTERM says `bye` and ends with status 0; the
    check stops it with a grace of GRACE_S and reads how it ended."""
    with _own_run_dir():
        given = _call(f"start_graceful({name!r})", start_graceful, name)
        _named(name, given, "start_graceful")
        record = _running(name)
        deadline = time.monotonic() + DEADLINE_S
        while READY not in _logs(name)[0].split():
            if time.monotonic() > deadline:
                raise CheckFailed(f"the container did not say {READY!r} on its stdout within "
                                  f"{DEADLINE_S:g} s (it said {_logs(name)[0][-80:]!r}): say "
                                  "it once SIGTERM has its handler, so that the check knows "
                                  "when to stop it")
            _running(name)
            time.sleep(0.05)
        with open(f"/proc/{record['pid']}/status") as f:
            caught = int(next(line.split()[1] for line in f if line.startswith("SigCgt:")), 16)
        handles = bool(caught & 1 << (signal.SIGTERM - 1))
        began = time.monotonic()
        ended = supervisor.stop(name, timeout_s=GRACE_S)
        took_s = time.monotonic() - began
        said = _logs(name)[0].split()
        if ended.get("signal") == signal.SIGKILL:
            raise CheckFailed(
                f"stop waited the whole grace ({GRACE_S} s), then SIGKILLed it (exit status "
                f"{ended.get('exit_code')}): "
                + ("its first process catches SIGTERM (bit 15 of SigCgt in /proc/PID/status) "
                   + ("and said bye, but went on: the handler must end the shell" if BYE in said
                      else "but did not run its handler in time: what was the shell waiting "
                           "for in the foreground?") if handles else
                   "its first process has no handler for SIGTERM (SigCgt in /proc/PID/status "
                   "lacks bit 15), and a PID 1 without one ignores it (lesson 03)"))
        expect(ended.get("exit_code") == 0,
               f"it ended on SIGTERM, in {took_s:.1f} s, but with status "
               f"{ended.get('exit_code')} ({ended.get('reason')}): the exercise asks for 0, "
               "which the handler chooses")
        expect(said[-1:] == [BYE], f"it ended with status 0, but its last word on stdout is "
                                   f"{(said or [''])[-1]!r}, not {BYE!r}")
    return Passed(f"{name} caught SIGTERM, said {BYE!r} and ended with status 0, "
                  f"{took_s:.2f} s after stop began (the grace was {GRACE_S} s)")
