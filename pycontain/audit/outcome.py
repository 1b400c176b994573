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
