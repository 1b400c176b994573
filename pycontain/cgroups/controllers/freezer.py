"""The freezer: stop every process of a cgroup at once, start them again, kill them all (lesson 19).

Freezing puts every task of the cgroup, and of the cgroups below it, to sleep where it stands,
in the kernel: none of them runs, forks or handles a signal until the cgroup is thawed. Unlike
SIGSTOP it is invisible to the processes and to their parents (no state T, nothing for
waitpid(WUNTRACED)), and nothing inside can undo it: only a write to the cgroup's file can.
Freezing takes a moment (each task must reach a point where it can stop), so both versions
say when it is done:

==================  ===============================  ==========================================
v2 (the lessons)    v1                               translation
==================  ===============================  ==========================================
cgroup.freeze       freezer.state                    write 1 / 0 as FROZEN / THAWED
cgroup.events       freezer.state                    "frozen 1" once all stopped: FROZEN (not
                                                     FREEZING, its reading while in progress)
cgroup.kill         (none)                           freeze, SIGKILL each process, thaw
==================  ===============================  ==========================================

On v2 `cgroup.freeze` and `cgroup.kill` are core files of every cgroup but the root, so a
hybrid host has them in its cgroup2 mount (/sys/fs/cgroup/unified) too; `cgroup.events`
notifies (cgroups.events), `freezer.state` does not. `cgroup.kill` (Linux 5.14) SIGKILLs every
process in the cgroup and below in one write, even those forking at that moment; v1 reaches
the same end in three steps, as runc does: a frozen process cannot fork, so the list of PIDs
cannot grow while each gets its SIGKILL.

    >>> FILES["cgroup.freeze"], to_v1({"cgroup.freeze": "1"}), to_v1({"cgroup.freeze": "0"})
    ('freezer.state', [('freezer.state', 'FROZEN')], [('freezer.state', 'THAWED')])
    >>> read_v1("cgroup.freeze", {"freezer.state": "FREEZING\\n"}.get)  # asked, not done yet
    '1'
    >>> frozen("populated 1\\nfrozen 1\\n", 2), frozen("FREEZING\\n", 1), frozen("FROZEN\\n", 1)
    (True, False, True)

See also: Documentation/admin-guide/cgroup-v2.rst ("cgroup.freeze", "cgroup.kill"),
cgroup-v1/freezer-subsystem.rst; runc's libcontainer/cgroups/fs/freezer.go and signal.go.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: v2 knob -> the v1 file that holds it (None: v1 has no equivalent, see V2_ONLY)
FILES: dict[str, str | None] = {
    "cgroup.freeze": "freezer.state",  # 1/0 on v2; FROZEN/THAWED on v1 (FREEZING in between)
    "cgroup.kill": None,
}

V2_ONLY = {
    "cgroup.kill": (
        "cgroup v1 has no cgroup.kill: freeze the cgroup (freezer.state FROZEN), SIGKILL each "
        "process in it, thaw; Cgroup.kill() does that where cgroup.kill is missing"),
}

#: cgroup.freeze's value -> what v1's freezer.state takes
_STATES = {"1": "FROZEN", "0": "THAWED"}
#: the file that says whether freezing is done, on each version
DONE_FILE = {2: "cgroup.events", 1: "freezer.state"}


def to_v1(settings: Mapping[str, str]) -> list[tuple[str, str]]:
    """The v1 writes for v2 `settings`: cgroup.freeze 1/0 as freezer.state FROZEN/THAWED.

    Raises:
        ValueError: cgroup.kill (no v1 equivalent), or a cgroup.freeze other than 0 or 1.
    """
    writes = []
    for knob, value in settings.items():
        if FILES.get(knob, "") is None:
            raise ValueError(f"{knob} has no cgroup v1 equivalent: {V2_ONLY[knob]}")
        if value.strip() not in _STATES:
            raise ValueError(f"{knob} takes 1 (freeze) or 0 (thaw), not {value!r}")
        writes.append((FILES[knob] or knob, _STATES[value.strip()]))
    return writes


def read_v1(knob: str, read: Callable[[str], str]) -> str:
    """cgroup.freeze as v2 shows it (what was asked: 1 while FREEZING too), from freezer.state."""
    return "0" if read(FILES[knob] or knob).strip() == "THAWED" else "1"


def frozen(text: str, version: int) -> bool:
    """Whether freezing is done, from the text of `DONE_FILE[version]`: `frozen 1` in v2's
    cgroup.events; FROZEN in v1's freezer.state (FREEZING: some tasks still run)."""
    if version == 2:
        return "frozen 1" in text.splitlines()
    return text.strip() == "FROZEN"
