"""The checks of lesson 10, hide the host cgroups."""

from __future__ import annotations

from collections.abc import Callable

from pycontain import procfs
from pycontain.checks import RETURN_RESULT, Passed, attempt, expect
from pycontain.namespaces import cgroup
from pycontain.runtime import Result

#: what the check asks the container to run: its cgroups, then its cgroup namespace
REPORT = ["sh", "-c", "cat /proc/self/cgroup; readlink /proc/self/ns/cgroup"]


def check_sees_itself_at_root(run_limited: Callable[[list[str]], object]) -> Passed:
    """Call `run_limited(argv)` and verify from the container's own output that it ran in a
    cgroup of its own (with limits), in a new cgroup namespace, and saw that cgroup as `/`."""
    result = attempt(f"run_limited({REPORT!r})", run_limited, list(REPORT), returns=Result,
                     instead=RETURN_RESULT)
    expect(result.status == 0,
           f"the container should run {REPORT!r}, but it {result.reason}: {result.stderr!r}")
    *lines, link = result.stdout.splitlines()
    expect(bool(result.limits), "the container ran without limits, so in the caller's cgroup: "
                                "give it a limit such as pids_max=20")
    expect(procfs.parse_ns_link(link) != procfs.namespace("self", "cgroup"),
           f"the container was in the host's cgroup namespace ({link}): ask for 'cgroup' among "
           "the namespaces")
    seen = cgroup.parse("\n".join(lines))
    expect(bool(seen) and set(seen.values()) == {"/"},
           f"the container saw its cgroups as {seen}; every path should be '/'")
    return Passed(f"the container saw {len(seen)} hierarchies, each at '/', from a cgroup "
                  "namespace of its own, though it ran in a pycontain- cgroup")
