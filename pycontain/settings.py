"""pycontain's names and settings, in one place.

Every object pycontain makes on the host carries one prefix, so that `pycontain cleanup` (and
the tests) can find what pycontain made and nothing else: temporary directories, cgroups, veth
links, the bridge, message queues, overlay layers. The environment variables that change where
things go are read here, at the moment they are needed (a notebook or a test may set one after
import), and nowhere else.

    >>> BRIDGE, QUEUE_PREFIX, LAYER_PREFIX
    ('pycontain-br0', '/pycontain-', 'pycontain-layer-')
"""

from __future__ import annotations

import os

#: the start of the name of everything pycontain creates on the host
PREFIX = "pycontain-"
#: the host's bridge for `network="bridge"` (lesson 08)
BRIDGE = f"{PREFIX}br0"
#: POSIX message queues are named from the root of their filesystem (mq_overview(7))
QUEUE_PREFIX = f"/{PREFIX}"
#: an overlay's writable layer: upper, work and merged directories (lesson 06)
LAYER_PREFIX = f"{PREFIX}layer-"
#: the leaf a v2 caller moves into when its own cgroup must hand out controllers (lesson 12)
SELF_LEAF = f"{PREFIX}self"
#: the IFB device that shapes a bridged container's egress, with 4 hex digits (lesson 17)
IFB_PREFIX = f"{PREFIX}i"
#: bridged containers' records, the saved ip_forward and their lock (lesson 08)
NET_STATE = "/run/pycontain-net"
#: detached containers' run directories, `<root>/<id>/`, and their names, `<root>/names/<name>`
RUN_DIR = "/run/pycontain"
#: the word in a fork server's argv before its owner's pid (`forkserver`, `lab.leftovers()`)
FORK_SERVER_TAG = f"{PREFIX}forkserver"
#: the bridge's subnet when neither `subnet=` nor $PYCONTAIN_SUBNET says otherwise
DEFAULT_SUBNET = "10.207.0.0/24"
#: how long a notebook's live experiment may run at most, in seconds
DEFAULT_DURATION_S = 20.0
#: the last result of every check run on this machine (`pycontain progress`, course.progress)
PROGRESS_FILE = "/var/lib/pycontain/progress.json"

# The environment variables, each with what it changes.
ALLOW_HOST_VARIABLE = "PYCONTAIN_ALLOW_HOST"  # "1": run the lessons outside the lab VM
CGROUP_PARENT_VARIABLE = "PYCONTAIN_CGROUP_PARENT"  # a cgroup path: create cgroups beneath it
ROOTFS_VARIABLE = "PYCONTAIN_ROOTFS"  # a directory: the shared root filesystem lives there
SUBNET_VARIABLE = "PYCONTAIN_SUBNET"  # an IPv4 subnet: the bridge's
DURATION_VARIABLE = "PYCONTAIN_DURATION"  # seconds: the longest live experiment
DEBUG_VARIABLE = "PYCONTAIN_DEBUG"  # "1": the command prints an internal error's traceback
RUN_DIR_VARIABLE = "PYCONTAIN_RUN_DIR"  # a directory: detached containers' state lives there
PROGRESS_VARIABLE = "PYCONTAIN_PROGRESS"  # a file: where check results are recorded
HINTS_VARIABLE = "PYCONTAIN_HINTS_FILE"  # a file: which exercise hints a learner has opened


def host_allowed() -> bool:
    """Whether $PYCONTAIN_ALLOW_HOST=1 lets the lessons run on a machine that is not the lab VM."""
    return os.environ.get(ALLOW_HOST_VARIABLE) == "1"


def cgroup_parent() -> str | None:
    """$PYCONTAIN_CGROUP_PARENT (a path as /proc/self/cgroup shows it), or None."""
    return os.environ.get(CGROUP_PARENT_VARIABLE) or None


def rootfs_dir() -> str | None:
    """$PYCONTAIN_ROOTFS, or None: then the rootfs lives in a system or per-user cache."""
    return os.environ.get(ROOTFS_VARIABLE) or None


def hints_file() -> str:
    """Where the hints a learner opened are counted (`checks.exercise.hints_used()` reads it):
    $PYCONTAIN_HINTS_FILE, else `hints.json` next to the progress file (a test session's or a
    graded submission's own progress file takes its hints along)."""
    return os.environ.get(HINTS_VARIABLE) or os.path.join(os.path.dirname(progress_file()),
                                                          "hints.json")


def run_dir() -> str:
    """$PYCONTAIN_RUN_DIR, or /run/pycontain: where detached containers' state lives."""
    return os.environ.get(RUN_DIR_VARIABLE) or RUN_DIR


def progress_file() -> str:
    """Where the checks record their results: $PYCONTAIN_PROGRESS, else PROGRESS_FILE."""
    return os.environ.get(PROGRESS_VARIABLE) or PROGRESS_FILE


def subnet() -> str:
    """$PYCONTAIN_SUBNET, or the default subnet."""
    return os.environ.get(SUBNET_VARIABLE) or DEFAULT_SUBNET


def debug() -> bool:
    """Whether $PYCONTAIN_DEBUG=1 asks the `pycontain` command for an internal error's traceback."""
    return os.environ.get(DEBUG_VARIABLE) == "1"


def duration_s() -> float:
    """$PYCONTAIN_DURATION, or the default length of a live experiment."""
    return float(os.environ.get(DURATION_VARIABLE) or DEFAULT_DURATION_S)
