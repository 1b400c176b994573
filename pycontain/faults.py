"""Dying at a named step of a container's life, for the reliability tests (the lifecycle).

A detached container is built and taken apart by two processes, the `pycontain` command and
the supervisor, and either may be killed at any moment: by a user's `kill -9`, the OOM killer,
a machine going down. Whatever moment it is, what they leave must be something
`pycontain cleanup` removes, and `pycontain ps` must tell the truth about it. To test every
moment, each step calls `point(STEP)`; a process whose `$PYCONTAIN_KILL_AT` names that step
sends itself SIGKILL there, exactly as `kill -9` from outside would end it: no handler runs,
no `finally`, no buffer is flushed. The variable is read only here; nobody sets it but a test.

`STEPS` lists them in the order a container meets them (tests/integration/test_lifecycle.py
drives each). See also: signal(7) (SIGKILL cannot be caught), runc's and containerd's own
"kill at each step" tests.
"""

from __future__ import annotations

import os

#: the environment variable naming the step to die at
VARIABLE = "PYCONTAIN_KILL_AT"

#: `pycontain run -d`: the command, then the supervisor it forks (setup); the supervisor when
#: the container ends, and `pycontain rm -f` (teardown). Step -> what has happened just before.
STEPS = {
    "cli:named": "the command took the name (names/NAME -> ID)",
    "cli:directory": "the command made the run directory, before the first state.json",
    "cli:created": "the command wrote state.json (status created), before it forks",
    "cli:forked": "the supervisor owns the state, before the command hears the container runs",
    "supervisor:owner": "the supervisor recorded itself as the container's owner",
    "supervisor:cgroup": "the supervisor made the container's cgroup and recorded it",
    "supervisor:layer": "the supervisor made the writable layer and recorded it",
    "supervisor:network": "the supervisor wired the veth (init waits to exec) and recorded it",
    "supervisor:spawned": "the container exec'd its command, before `running` is recorded",
    "supervisor:running": "the supervisor recorded `running`, before it tells the command",
    "release:discard-layer": "the container ended; its writable layer is about to go",
    "release:remove-cgroup": "the layer is gone; its cgroup is about to go",
    "release:release-network": "the cgroup is gone; its veth and ports are about to go",
    "supervisor:released": "everything is released, before `exited` is recorded",
    "rm:killed": "`rm -f` killed the supervisor and the container, before releasing",
    "rm:released": "`rm -f` released the resources, before removing the run directory",
    # pycontain.run()/spawn(): the fork server (tests/integration/test_forkserver.py)
    "forkserver:received": "the fork server received a request, before it forks",
    "forkserver:forked": "the fork server forked the container's first process",
}


def point(step: str) -> None:
    """SIGKILL this process if `$PYCONTAIN_KILL_AT` names `step` (module docstring)."""
    if os.environ.get(VARIABLE) == step:
        import signal

        assert step in STEPS, step
        os.kill(os.getpid(), signal.SIGKILL)
