"""The checks of lesson 02, give a process its own hostname."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable

from pycontain import procfs
from pycontain.checks import RETURN_RESULT, Passed, attempt, expect, output_lines
from pycontain.runtime import Result

#: what the check asks the container to run: its hostname, then its UTS namespace
REPORT = ["sh", "-c", "hostname; readlink /proc/self/ns/uts"]


def check_run_named(run_named: Callable[[str, list[str]], object], tries: int = 3) -> Passed:
    """Call `run_named(container_id, argv)` with random 64-hex-digit ids, as `docker` makes them,
    and verify from the container's own output that it ran in a new UTS namespace named after
    the first 12 characters of the id, while the host kept its name."""
    host_before = socket.gethostname()
    host_uts = procfs.namespace("self", "uts")
    for _ in range(tries):
        container_id = secrets.token_hex(32)
        short = container_id[:12]
        result = attempt(f"run_named({container_id!r}, {REPORT!r})", run_named, container_id,
                         list(REPORT), returns=Result, instead=RETURN_RESULT)
        inside, uts_link = output_lines(result, REPORT, 2, "pass argv on unchanged")
        expect(procfs.parse_ns_link(uts_link) != host_uts,
               f"the container was in the host's UTS namespace ({uts_link}): ask for "
               "namespaces={'uts'}")
        expect(inside == short,
               f"for id {container_id!r} the container's hostname was {inside!r}; it should be "
               f"the first 12 characters, {short!r} (hostname=container_id[:12])")
    expect(socket.gethostname() == host_before,
           f"the host's hostname changed from {host_before!r} to {socket.gethostname()!r}")
    return Passed(f"{tries} containers each saw their own id as hostname, in their own UTS "
                  f"namespace; the host is still {host_before!r}")
