"""The checks of lesson 23, audit your container.

`check_every_line_green` calls the learner's `harden()`, which returns `pycontain.run` options
(the lesson's weak configuration, changed), builds the container's `Spec` from them first
(a misspelt or refused option is named before anything is created), audits a container made
with them on the embedded rootfs (`audit.probe`) and passes when every line is green. A red
line fails with what the probe saw and where the course taught the defence, never with the
option to write.

It recognises the wrong turns seen when the exercise was tried: an option `pycontain.run` does
not have (Docker's `memory`, `pids_limit`), the audit's own `Report` or the command line's
flags returned instead of options, no function result at all (a forgotten `return`), and the
four ways the "cgroup limits" line stays red: no limits (so no cgroup to show), one of the two
caps missing, a cap of "max", memory.high (a throttle, v2 only) instead of memory.max, and
limits the container has but cannot see (/sys/fs/cgroup empty inside). A user namespace whose
map makes root inside the host's root is red on the audit itself ("ns user").

The stretch, `check_privileged_yet_contained`: options that keep `--privileged` (every
capability, no filter, nothing masked or read-only) and root inside, under which three of the
lesson's attacks fail all the same: the host's disk, core_pattern, and Leaky Vessels against
the leaking runtime. Whatever the learner's function starts is stopped when it raises, and
after it returns.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from pycontain.audit import core_pattern, escape, host_disk, leaky_vessels, outcome, probe
from pycontain.checks import CheckFailed, Passed, attempt, expect, release_started
from pycontain.checks.exercise import exercise
from pycontain.errors import PycontainError, SpecError, format_error
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

GREEN_HINTS = (
    "Compare the check's red lines with the two audits above, the weak container's and the "
    "default one's: which lines do pycontain run's defaults (DEFAULTS) turn green, and which "
    "stay red? Each red line in the check's message names the lesson of its defence.",
    "Three lines are left once the defaults are on. Two are namespaces: the audit compares "
    "/proc/self/ns/* inodes with the host's (lessons 09 and 10). The third reads "
    "/sys/fs/cgroup from inside: the container must both *have* limits (lessons 13, 14) and "
    "*see* them (lesson 20, 'a read-only view of its own cgroups').",
    "A user namespace with a rootfs needs a network namespace of its own too (lesson 09), and "
    "its map must not make root inside uid 0 outside. The limits line wants a memory cap "
    "(memory.max; on v1 memory.limit_in_bytes; memory.high only throttles, and v1 has none) "
    "and a cap on processes (pids.max), neither of them 'max'.",
)
PRIVILEGED_HINTS = (
    "Every attack here needs *root's* power over something of the host's: a device, a sysctl, "
    "a directory only its owner may enter. Which lesson made root inside a container "
    "something less than root outside, with every capability still in its sets?",
    "Capabilities count in a user namespace: they act on what that namespace owns (its own "
    "mounts, its network), never on the host's devices, sysctls or files, which the kernel "
    "checks against the uid outside (lesson 09; user_namespaces(7), 'Interaction of user "
    "namespaces and other types of namespaces').",
)

#: the options each stretch attack sets on its container itself
CHOSEN_BY_THE_ATTACKS = ("rootfs", "overlay", "volumes", "cwd")
#: what the kernel says when a wall refuses (EPERM, EACCES, EROFS, in their words)
REFUSED = ("not permitted", "Permission denied", "EACCES", "EPERM", "Read-only file system")


def _why(name: str, evidence: str = "") -> str:
    if name == "ns user" and "uid_map" in evidence:
        return ("the namespace is its own, but the kernel checks files, devices and sysctls "
                "against the uid outside: mapped to 0, root inside is root outside again "
                "(lesson 09, the maps)")
    if name.startswith("ns "):
        kind = name.split()[1]
        return (f"it is in the host's {kind} namespace: the same inode (lesson "
                f"{NAMESPACE_LESSONS.get(kind, '02')} gave a container its own)")
    return WHY.get(name, "see the audit's table above")


def limits_why(limits: Mapping[str, Any], view: bool) -> str:
    """Why the "cgroup limits" line is red, from the container's limits as its Spec holds them
    (`memory_max`, `memory_high`, `pids_max`: bytes, a count, "max", or None) and whether it
    was given the view of its cgroups.

    >>> limits_why({"memory_max": 64 << 20, "pids_max": 20}, view=False)[:46]
    'the container has its limits, but cannot see t'
    >>> limits_why({"memory_high": 64 << 20, "pids_max": 20}, view=True)[:28]
    'memory.high only throttles: '
    """
    memory, high, pids = (limits.get(k) for k in ("memory_max", "memory_high", "pids_max"))
    if memory is None and high is None and pids is None:
        return ("the container has no limits at all, so pycontain made it no cgroup of its "
                "own" + (" and there is nothing for /sys/fs/cgroup to show" if view else "")
                + ": nothing caps its memory or its processes (lessons 13 and 14)")
    if memory is None and high is not None:
        return ("memory.high only throttles: a cgroup over it is slowed and reclaimed, never "
                "stopped, so memory.max still reads 'max'; the audit wants a cap (lesson 14)")
    unlimited = [f"{knob} is 'max', which is no limit" for knob, value in
                 (("memory.max", memory), ("pids.max", pids)) if value == "max"]
    if unlimited:
        return "; ".join(unlimited) + " (lessons 13 and 14)"
    missing = [f"nothing caps {what} ({knob}, lesson {lesson})" for what, knob, lesson, value in
               (("its memory", "memory.max", "14", memory),
                ("the number of its processes", "pids.max", "13", pids)) if value is None]
    if missing:
        return "; ".join(missing)
    if not view:
        return ("the container has its limits, but cannot see them: its /sys/fs/cgroup is "
                "empty, so a program that sizes itself by its limits (a JVM, Go's runtime) "
                "sees the whole machine (lesson 20 gave a container a read-only view of its "
                "own cgroups)")
    return WHY["cgroup limits"]


def _options(value: object, shown: str) -> dict[str, Any]:
    """The learner's return value as options, or a `CheckFailed` that says what it was."""
    if isinstance(value, probe.Report):
        raise CheckFailed(f"{shown} returned the audit's Report: it ran the audit itself. "
                          "Return the options only (a dict); the check runs the audit on them")
    if isinstance(value, list | tuple) and value and all(
            isinstance(v, str) for v in value) and str(value[0]).startswith("-"):
        raise CheckFailed(f"{shown} returned command-line flags ({' '.join(value)}): the "
                          "check wants the same as pycontain.run options, a dict of keyword "
                          "arguments")
    if value is None:
        raise CheckFailed(f"{shown} returned None: it must return the options, a dict "
                          "(is its body still `pass`, or its `return` missing?)")
    if not isinstance(value, Mapping):
        raise CheckFailed(f"{shown} returned {value!r}; return a dict of pycontain.run "
                          "options, the lesson's WEAK dict with what you changed")
    options = dict(value)
    expect("command" not in options and "argv" not in options,
           f"{shown} names a command: the check runs its own; return only options")
    return options


def _accepted() -> list[str]:
    from pycontain.cgroups.limits import FIELDS
    from pycontain.spec import Spec

    return [*(p for p in inspect.signature(Spec.__init__).parameters
              if p not in ("self", "argv", "limit_fields")), *FIELDS]


def spec_of(options: Mapping[str, Any], shown: str, argv: list[str] | None = None,
            **fixed: Any) -> Any:
    """The container's `Spec` from the learner's `options` (and the check's own `fixed`
    ones), built before anything is created: an option pycontain.run does not have, or one it
    refuses, becomes a `CheckFailed` naming it."""
    from pycontain.spec import Spec

    unknown = [k for k in options if k not in _accepted()]
    if unknown:
        close = {k: difflib.get_close_matches(k, _accepted(), n=3, cutoff=0.5) for k in unknown}
        named = "; ".join(f"{k!r}" + (f" (close: {', '.join(close[k])})" if close[k] else "")
                          for k in unknown)
        raise CheckFailed(f"{shown} returned option(s) pycontain.run does not have: {named}. "
                          "Its options are the parameters of pycontain.Spec "
                          "(help(pycontain.Spec)), and the limits are named after their v2 "
                          "files (memory.max is memory_max; lessons 13, 14)")
    try:
        return Spec(argv or probe.argv(), **{**options, **fixed})
    except SpecError as e:
        raise CheckFailed(f"pycontain refuses the options of {shown}, before any container is "
                          f"made: {format_error(e)}") from None


def _limits(spec: Any) -> dict[str, Any]:
    if spec.limits is None:
        return {}
    return {k: getattr(spec.limits, k) for k in ("memory_max", "memory_high", "pids_max")}


@exercise(hints=GREEN_HINTS, answers=(outcome.hardened,))
def check_every_line_green(harden: Callable[[], Mapping[str, Any]]) -> Passed:
    """`harden()` returns options under which every line of the audit is green."""
    from pycontain import runtime

    before = set(runtime.unwaited())
    try:
        options = _options(attempt("harden()", harden), "harden()")
        expect(options.get("rootfs") is not None
               and str(options["rootfs"]) == str(rootfs.ensure()),
               "the audit must look at a container on the embedded rootfs: keep WEAK's "
               "`rootfs`")
        spec = spec_of(options, "harden()")
        try:
            report = probe.audit(spec)
        except PycontainError as e:
            raise CheckFailed(f"the audit's container did not start: {format_error(e)}") from e
    except CheckFailed as e:  # what harden() started and left running, stopped
        stopped = release_started(before)
        raise CheckFailed(f"{e}{stopped}") from e.__cause__
    finally:
        release_started(before)
    red = report.red
    if red:
        lines = "\n".join(
            f"- {f.name}: {f.evidence}\n    why it matters: "
            + (limits_why(_limits(spec), spec.cgroup_view) if f.name == "cgroup limits"
               else _why(f.name, f.evidence)) for f in red)
        raise CheckFailed(f"{len(red)} of {len(report.lines)} lines are still red:\n{lines}")
    grey = [f.name for f in report.lines if f.ok is None]
    return Passed(f"every line of the audit is green ({len(report.lines) - len(grey)} lines"
                  + (f"; grey, not a defence: {', '.join(grey)}" if grey else "") + "). "
                  "On the command line: pycontain audit --rootfs DIR --user-namespace "
                  "--namespaces cgroup,ipc,mnt,net,pid,uts --memory 64M --pids-limit 20")


def _outside(spec: Any) -> int | None:
    """The uid outside that root inside is, when the container has a user namespace."""
    if spec.id_maps is None:
        return None
    return probe.root_outside([" ".join(map(str, m)) for m in spec.id_maps[0]])


@exercise(hints=PRIVILEGED_HINTS, stretch=True)
def check_privileged_yet_contained(contain: Callable[[], Mapping[str, Any]]) -> Passed:
    """Stretch: `contain()` returns options that keep --privileged (`PRIVILEGED`) and root
    inside, under which the host disk, core_pattern and Leaky Vessels attacks all fail."""
    from pycontain import runtime
    from pycontain.lab import Lab

    before = set(runtime.unwaited())
    practice = Lab(check=False)
    try:
        options = _options(attempt("contain()", contain), "contain()")
        given_back = [f"`{k}` is {options.get(k)!r}, not {v!r}"
                      for k, v in outcome.PRIVILEGED.items()
                      if options.get(k, v) != v and not (k == "seccomp"
                                                         and options[k] == "unconfined")]
        expect(not given_back,
               "contain() puts back a default --privileged takes away: "
               + "; ".join(given_back) + ". The exercise keeps every one of PRIVILEGED's "
               "settings: find a wall that is none of them")
        chosen = [k for k in CHOSEN_BY_THE_ATTACKS if k in options]
        expect(not chosen, f"leave out {', '.join(chosen)}: each attack chooses its own "
                           "container's root, layer, volumes and working directory")
        spec = spec_of({**outcome.PRIVILEGED, **options}, "contain()", ["true"],
                       rootfs=rootfs.ensure())
        inside = spec.user[0] if spec.user is not None else 0
        expect(inside == 0, f"the container runs as uid {inside} inside: a user other than "
               "root is a wall of its own (Docker's USER; the uid change clears the effective "
               "capabilities), but this exercise keeps root, uid 0, with every capability: "
               "leave `user` out")
        expect(_outside(spec) != 0,
               "the container has a user namespace, but its uid_map makes uid 0 inside uid 0 "
               "outside: the kernel checks the host's files and sysctls against that uid, so "
               "root inside is the host's root again (lesson 09, the maps)")
        options = {**outcome.PRIVILEGED, **options}
        try:
            seen = [host_disk.attempt(practice.tempdir("disk"), weakened=True, **options),
                    core_pattern.attempt(weakened=True, **options),
                    leaky_vessels.attempt(escape.place_marker(practice.tempdir("marker")),
                                          weakened=True, **options)]
        except PycontainError as e:
            raise CheckFailed(f"an attack's container did not start: {format_error(e)}") from e
    except CheckFailed as e:
        stopped = release_started(before)
        raise CheckFailed(f"{e}{stopped}") from e.__cause__
    finally:
        practice.close()
        release_started(before)
    escaped = [o for o in seen if o.escaped]
    expect(not escaped, f"{len(escaped)} of the {len(seen)} attacks still reach the host, "
           "with root's powers inside:\n" + "\n".join(f"- {o.attack}: {o.evidence}"
                                                      for o in escaped))
    unclear = [o for o in seen if not any(word in o.evidence for word in REFUSED)]
    expect(not unclear, "no attack escaped, but not because the kernel refused it:\n"
           + "\n".join(f"- {o.attack}: {o.evidence}" for o in unclear)
           + "\nthe attack's container must run its command, as root with every capability"
           + (" (a file it needs is missing inside: /proc is mounted fresh only in a PID "
              "namespace of its own, lesson 03)" if any("nonexistent" in o.evidence
                                                          or "No such file" in o.evidence
                                                          for o in unclear) else ""))
    uid = _outside(spec)
    who = ("" if uid is None else f" Root inside is uid {uid} outside: --privileged in a user "
           "namespace is rootless podman's --privileged.")
    return Passed("root with every capability inside, and still no way out: "
                  + "; ".join(f"{o.attack}: {o.evidence.split(' / ')[0][:90]}" for o in seen)
                  + f".{who} Not every attack needs root, though: against a root switched "
                  "with chroot(2) the climb still reaches the host's /, and reads there what "
                  "the world may read")
