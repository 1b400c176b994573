"""What one attack saw: whether it reached the host's secret, and the evidence (lesson 23,
coming)."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from pycontain.security import capabilities, paths


class Outcome(namedtuple("Outcome", "attack weakened escaped evidence")):
    """`escaped`: the container read the host's marker; `evidence`: what it printed, or the
    error that stopped it; `weakened`: the attack ran against the weakened container."""

    __slots__ = ()

    def __str__(self) -> str:
        against = "weakened" if self.weakened else "pycontain's defaults"
        verdict = "ESCAPED" if self.escaped else "stayed in"
        return f"{self.attack} against {against}: {verdict}: {self.evidence}"


#: what `pycontain run` gives every container (cli._security_options with no flag; a unit
#: test keeps the two equal): Docker's capabilities without MKNOD, no_new_privs, the default
#: seccomp profile, runc's masked and read-only paths
DEFAULTS: dict[str, Any] = {"capabilities": capabilities.DEFAULT, "no_new_privs": True,
                            "seccomp": "default", "masked_paths": paths.MASKED,
                            "readonly_paths": paths.READ_ONLY}
#: `--privileged`: every capability, no no_new_privs, no filter, nothing masked
PRIVILEGED: dict[str, Any] = {"capabilities": None, "no_new_privs": False, "seccomp": None,
                              "masked_paths": (), "readonly_paths": ()}


def hardened(memory_max: str = "64M", pids_max: int = 20) -> dict[str, Any]:
    """`pycontain.run` options under which every line of the audit is green (add `rootfs`):
    pycontain run's defaults (`DEFAULTS`), and the three things they leave to you.

    >>> sorted(set(hardened()) - set(DEFAULTS))
    ['cgroup_view', 'memory_max', 'namespaces', 'pids_max']
    """
    return {**DEFAULTS,
            # a user namespace (lesson 09): root inside is uid 100000 outside, whose
            # capabilities count only for what the namespace owns; it needs its own net
            # namespace too, for a fresh /sys; and a cgroup namespace (lesson 10)
            "namespaces": "cgroup,ipc,mnt,net,pid,uts,user",
            # limits (lessons 13, 14): memory.max (v1 memory.limit_in_bytes), a cap; not
            # memory.high, which only throttles, and which v1 lacks
            "memory_max": memory_max, "pids_max": pids_max,
            # and a view of them at /sys/fs/cgroup, read-only (lesson 20)
            "cgroup_view": True}
