"""The checks of lesson 18, pin to cpus.

The check starts nothing itself: it reads the kernel's own files while the learner's container
runs: the cgroup's `cpuset.cpus.effective` (v1 `cpuset.effective_cpus`) and the container's
process's affinity, `Cpus_allowed_list` in /proc/<pid>/status, then whether the container and
its cgroup are gone after `practice.close()`.
"""

from __future__ import annotations

from collections.abc import Callable

from pycontain import procfs
from pycontain.cgroups.controllers import cpuset
from pycontain.checks import CheckFailed, Passed, abandon, attempt, expect, expect_closed
from pycontain.errors import CgroupError
from pycontain.lab import Lab
from pycontain.runtime import Container


def check_pinned(pin: Callable[[Lab], object]) -> Passed:
    """Call `pin(practice)`: it returns a running container pinned to one CPU (cpuset.cpus),
    whose stopping `practice` has registered."""
    practice = Lab(check=False)
    box: object = None
    try:
        box = attempt("pin(practice)", pin, practice, returns=Container,
                      instead="return the running container that pycontain.spawn(..., "
                              "cpuset_cpus=...) gave you")
        assert isinstance(box, Container)
        expect(box.running, "the container is not running any more: give it something "
                            "that lasts, such as ['sleep', '60']")
        expect(box.cgroup is not None, "the container has no cgroup: pin it with "
                                       "pycontain.spawn(argv, cpuset_cpus='0')")
        assert box.cgroup is not None
        try:
            effective = cpuset.parse_list(box.cgroup.read("cpuset.cpus.effective"),
                                          "cpuset.cpus.effective")
        except CgroupError:  # v1: a container with other limits has no cpuset directory
            raise CheckFailed("the container's cgroup has no cpuset: pin the container to one "
                              "CPU, pycontain.spawn(argv, cpuset_cpus='0')") from None
        expect(len(effective) == 1,
               f"cpuset.cpus.effective reads {cpuset.format_list(effective)}: pin the "
               "container to one CPU, cpuset_cpus='0'")
        with open(f"/proc/{box.pid}/status") as f:
            allowed = procfs.parse_status(f.read())["Cpus_allowed_list"]
        expect(cpuset.parse_list(allowed, "Cpus_allowed_list") == effective,
               f"the container's process may run on CPUs {allowed} (Cpus_allowed_list), not "
               f"only on CPU {effective[0]}, its cgroup's cpuset.cpus.effective")
    except BaseException:
        abandon(practice, box)
        raise
    expect_closed(practice, box, "the container", "stop it")
    return Passed(f"the container's process may run on CPU {effective[0]} only "
                  f"(Cpus_allowed_list {allowed}, cpuset.cpus.effective of its cgroup), and "
                  "practice.close() removed it all")
