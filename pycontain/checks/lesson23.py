"""The checks of lesson 23, audit your container.

`check_every_line_green` calls the learner's `harden()`, which returns `pycontain.run` options
(the lesson's weak configuration, changed), audits a container made with them on the embedded
rootfs (`audit.probe`) and passes when every line is green. A red line fails with what the
probe saw and where the course taught the defence, never with the option to write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pycontain.audit import probe
from pycontain.checks import CheckFailed, Passed, attempt, expect
from pycontain.errors import PycontainError, format_error
from pycontain.fs import rootfs

#: namespace -> the lesson that gave a container its own
NAMESPACE_LESSONS = {"uts": "02", "pid": "03", "mnt": "04", "ipc": "07", "net": "08",
                     "user": "09", "cgroup": "10", "time": "11"}

#: a red line -> why it matters and where to look (the evidence comes with it)
WHY = {
    "capabilities": "root inside keeps capabilities Docker never gives a container, each a way "
                    "past a defence (lesson 20 chose the set a container keeps)",
    "no_new_privs": "a setuid program inside could still gain privileges, and the seccomp "
                    "filter would need CAP_SYS_ADMIN to install (lesson 20)",
    "seccomp": "no filter stands between the container and the kernel's 400-odd calls "
               "(lesson 21)",
    "masked paths": "the host's kernel files are readable: the keyrings, its timers "
                    "(lesson 20, 'What else every runtime hides')",
    "read-only paths": "a sysctl such as core_pattern, which the host runs as root, is open to "
                       "writing (this lesson's core_pattern attack; lesson 20)",
    "devices": "a device beyond the six a container needs is in /dev (lesson 05 made /dev)",
    "mknod": "root inside may make the node of a disk and mount the host's disk (this "
             "lesson's host disk attack; lesson 20's capabilities)",
    "descriptors": "a descriptor of the host's leaked into the container (this lesson's Leaky "
                   "Vessels)",
    "working directory": "the working directory lies outside the root (this lesson's Leaky "
                         "Vessels)",
    "mounts": "mounts of the host's are in sight, or its root (lesson 05: how the root is "
              "switched; lesson 04)",
    "network": "the host's interfaces, and the services on its loopback, are in reach "
               "(lesson 08)",
    "ipc": "the host's shared memory and queues are in sight (lesson 07)",
    "cgroup limits": "nothing caps the memory or the processes it may use, or it cannot see "
                     "its limits (lessons 13 and 14; lesson 20 showed a container its cgroup)",
}


def _why(name: str) -> str:
    if name.startswith("ns "):
        kind = name.split()[1]
        return (f"it is in the host's {kind} namespace: the same inode (lesson "
                f"{NAMESPACE_LESSONS.get(kind, '02')} gave a container its own)")
    return WHY.get(name, "see the audit's table above")


def check_every_line_green(harden: Callable[[], Mapping[str, Any]]) -> Passed:
    """`harden()` returns options under which every line of the audit is green."""
    options = attempt("harden()", harden, returns=Mapping,
                      instead="return a dict of pycontain.run options, the lesson's WEAK "
                              "dict with what you changed")
    options = dict(options)
    expect("command" not in options and "argv" not in options,
           "harden() names a command: the audit runs its own probe; return only options")
    expect(options.get("rootfs") is not None
           and str(options["rootfs"]) == str(rootfs.ensure()),
           "the audit must look at a container on the embedded rootfs: keep WEAK's `rootfs`")
    try:
        report = probe.audit(**options)
    except PycontainError as e:
        raise CheckFailed(f"the audit's container did not start: {format_error(e)}") from e
    red = report.red
    if red:
        lines = "\n".join(f"- {f.name}: {f.evidence}\n    why it matters: {_why(f.name)}"
                          for f in red)
        raise CheckFailed(f"{len(red)} of {len(report.lines)} lines are still red:\n{lines}")
    grey = [f.name for f in report.lines if f.ok is None]
    return Passed(f"every line of the audit is green ({len(report.lines) - len(grey)} lines"
                  + (f"; grey, not a defence: {', '.join(grey)}" if grey else "") + ")")
