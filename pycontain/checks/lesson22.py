"""The checks of lesson 22, assemble a container.

`check_web_server` calls the learner's `start_web_server(name, port)`, which should start a
detached container with the `pycontain` command and return its id. Then it asks what the
machine says, never the learner's code: the state as `pycontain inspect` prints it (running,
that name, a supervisor alive), the container's cgroup files (a memory.max that is not `max`),
the published port in the state, and a page fetched from the host through that port. The
container is removed at the end, whatever happened, so that the check can run again.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from collections.abc import Callable

from pycontain import state, supervisor
from pycontain.checks import CheckFailed, Passed, attempt, expect, fetch
from pycontain.errors import PycontainError, SpecError, format_error
from pycontain.fs import rootfs

DEADLINE_S = 10.0


def _inspect(name: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "pycontain", "inspect", name],
                          capture_output=True, text=True, timeout=60)
    expect(done.returncode == 0, f"`pycontain inspect {name}` finds no container of that "
                                 f"name: {done.stderr.strip()}; give the container the name "
                                 "start_web_server gets")
    [record] = json.loads(done.stdout)
    return dict(record)


def _running(name: str) -> dict[str, object]:
    """The state of the container `name`, or a CheckFailed saying how it ended."""
    record = _inspect(name)
    if record["status"] != "running":
        errors = "".join(text for stream, text in _logs(name) if stream == "stderr")
        why = ("a detached server must stay in the foreground inside, as the container's "
               "first process: without -f, busybox httpd goes to the background and the "
               "container ends") if record.get("exit_code") == 0 else "that says why"
        raise CheckFailed(f"the container {name!r} is {record['status']} "
                          f"({record.get('reason')}); what it wrote to stderr: "
                          f"{errors.strip()[-300:]!r}: {why}")
    return record


def _remove(name: str) -> None:
    try:
        supervisor.rm(name, force=True)
    except (PycontainError, FileNotFoundError):  # there is none (any more)
        pass


def check_web_server(start_web_server: Callable[[str, int], object], name: str = "web22",
                     port: int = 18022) -> Passed:
    """`start_web_server(name, port)` starts a named, memory-limited, detached busybox httpd
    whose port 80 is published on host port `port`, and returns its id."""
    try:
        rootfs.require_tools(rootfs.ensure(), "httpd")
    except SpecError as e:
        raise CheckFailed(f"the embedded rootfs cannot serve a page: {format_error(e)}") from e
    _remove(name)  # what an earlier attempt of this check left
    given: object = None
    try:
        given = attempt(f"start_web_server({name!r}, {port})", start_web_server, name, port,
                        returns=str, instead="return the id that `pycontain run -d` prints "
                                             "(its stdout, stripped)")
        assert isinstance(given, str)
        expect(bool(given.strip()), "start_web_server returned an empty id: did "
                                    "`pycontain run -d` fail? Its stderr says why")
        record = _running(name)
        expect(str(record["id"]).startswith(given.strip()),
               f"start_web_server returned {given.strip()[:12]!r}, but the container called "
               f"{name!r} is {str(record['id'])[:12]}")
        expect(state.alive(record.get("supervisor")),  # type: ignore[arg-type]
               "the container has no supervisor: start it detached (-d)")
        cgroup = state.cgroup_of(record)
        expect(cgroup is not None, "the container has no cgroup (start it with -d)")
        assert cgroup is not None
        try:
            memory_max = cgroup.read("memory.max")
        except (PycontainError, OSError):  # its cgroup went: the container has just ended
            state.wait_gone(record.get("supervisor"), DEADLINE_S)  # type: ignore[arg-type]
            _running(name)  # until its supervisor has recorded how
            raise
        expect(memory_max != "max", "the container's memory.max is max: nothing limits its "
                                    "memory; which flag of `pycontain run` sets memory.max? "
                                    "(lesson 14)")
        network = record.get("network")
        expect(isinstance(network, dict) and bool(network.get("veth")),
               "the container has no network but its own loopback: nothing outside can reach "
               "its server (lesson 08)")
        assert isinstance(network, dict)
        published = [tuple(p) for p in network.get("publish") or ()]
        expect(any(p[0] == port for p in published),
               f"host port {port} is not published to the container (its ports: "
               f"{published or 'none'}); `pycontain run --help` shows how (lesson 08)")
        expect((port, 80, "tcp") in published,
               f"host port {port} goes to the container's port "
               f"{next(p[1] for p in published if p[0] == port)}, but busybox httpd -p 80 "
               "listens on 80")
        gateway = next(ipaddress.ip_network(network["subnet"]).hosts())
        page = fetch(f"http://{gateway}:{port}/")
        if not page:  # a server that ended answers nothing: say so, not "no page"
            if not state.alive(record.get("container")):  # type: ignore[arg-type]
                state.wait_gone(record.get("supervisor"), DEADLINE_S)  # type: ignore[arg-type]
            _running(name)
        expect(bool(page), f"nothing answered http://{gateway}:{port}/: does the container "
                           "run busybox's `httpd -f -p 80 -h DIR`, with an index.html in DIR?")
    finally:
        _remove(name)
        if isinstance(given, str) and state.ID.fullmatch(given.strip()):
            _remove(given.strip())  # a container without the name: removed by its id
    return Passed(f"{name} ({str(record['id'])[:12]}) ran detached with memory.max "
                  f"{memory_max} and answered through host port {port}: "
                  f"{page.strip()[:40]!r}; removed again")


def _logs(name: str) -> list[tuple[str, str]]:
    try:
        return [(stream, data.decode(errors="replace"))
                for stream, data in supervisor.logs(name)]
    except (PycontainError, OSError):
        return []
