"""The audit: what isolates a container and what does not, seen from inside it (lesson 23).

`SCRIPT` runs inside the container as its command. It is a POSIX shell script, not Python: the
embedded rootfs has busybox and no interpreter, and a container without a rootfs has the host's
`sh`. It only *looks*: it prints raw evidence in sections (`@@ name`, then what the kernel
said), tries one mknod(2) of a block device in a directory it is given (and removes it), and
never writes anything else. The host side (`parse`, `findings`) reads the sections and compares
them with the host's own view (its namespaces, its /proc paths), line by line:

- each namespace (/proc/self/ns/*) against the host's: the same inode is the same namespace;
- the capability sets (CapBnd, CapEff in /proc/self/status) against Docker's default set,
  NoNewPrivs, and Seccomp (2: a filter);
- runc's masked and read-only paths (security.paths) in the container's mountinfo, and
  whether /proc/sys/kernel/core_pattern may be opened for writing (`: >> FILE`: an open(2)
  with O_WRONLY|O_APPEND and no write(2), so nothing changes);
- the devices in /dev (a block device is a disk), and the mknod(2) of one;
- the open descriptors and the working directory of the shell itself;
- the root and the mount table (a mount the rootfs did not make is the host's);
- the network interfaces and the default route; the System V IPC objects it can see;
- the cgroup limits at /sys/fs/cgroup (memory, pids).

`findings()` gives `Finding`s (name, ok, evidence), `Report` shows them as a green/red table in
a notebook and as text, and `Report.json_lines()` as JSON lines (`pycontain audit --json`).

See also: namespaces(7), capabilities(7), proc(5) (status, mountinfo), seccomp(2), mknod(2),
sysvipc(7), runc's libcontainer/rootfs_linux.go, `docker run --security-opt`; lesson 23.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import namedtuple
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from pycontain import procfs
from pycontain.fs import rootfs
from pycontain.security import capabilities, paths

#: the probe, run as `sh -c SCRIPT probe SCRATCH` inside the container; SCRATCH is a directory
#: where it may try (and undo) a mknod(2)
SCRIPT = r"""
section() { echo "@@ $1"; }
section ns;      for t in cgroup ipc mnt net pid time user uts; do
                   echo "$t $(readlink /proc/self/ns/$t 2>/dev/null)"; done
section status;  cat /proc/self/status
section uid_map; cat /proc/self/uid_map
section mountinfo; cat /proc/self/mountinfo
section writable; for p in /proc/sys/kernel/core_pattern /proc/sysrq-trigger; do
                   if (: >> "$p") 2>/dev/null; then echo "$p yes"; else echo "$p no"; fi; done
section dev;     ls -l /dev
section mknod;   n="$1/.pycontain-audit-blk"
                 if mknod "$n" b 7 0 2>&1; then echo made; rm -f "$n"; else echo refused; fi
section fds;     ls /proc/$$/fd
section cwd;     readlink /proc/$$/cwd; if cd -P .. 2>/dev/null && pwd -P >/dev/null 2>&1
                 then echo reachable; else echo unreachable; fi
section net;     cat /proc/net/dev
section route;   cat /proc/net/route
section ipc;     for k in shm msg sem; do
                   echo "$k $(($(cat /proc/sysvipc/$k 2>/dev/null | wc -l) - 1))"; done
section cgroup;  for f in memory.max pids.max memory/memory.limit_in_bytes pids/pids.max; do
                   [ -r "/sys/fs/cgroup/$f" ] && echo "$f $(cat /sys/fs/cgroup/$f)"; done
section end
"""

#: the order of the audit's lines, as `findings` makes them
LINES = ("ns cgroup", "ns ipc", "ns mnt", "ns net", "ns pid", "ns time", "ns user", "ns uts",
         "capabilities", "no_new_privs", "seccomp", "masked paths", "read-only paths",
         "devices", "mknod", "descriptors", "working directory", "mounts", "network", "ipc",
         "cgroup limits")
#: the largest value v1 writes for "no memory limit" is near 2**63; anything above this is none
_NO_LIMIT = 1 << 60


class Finding(namedtuple("Finding", "name ok evidence")):
    """One line of the audit: `ok` True (isolated), False (not), and the `evidence`."""

    __slots__ = ()

    def to_json(self) -> str:
        """One JSON line.

        >>> Finding("seccomp", True, "Seccomp: 2").to_json()
        '{"name": "seccomp", "ok": true, "evidence": "Seccomp: 2"}'
        """
        return json.dumps(self._asdict())


def argv(scratch: str = "/tmp") -> list[str]:
    """The probe as a container's command; `scratch` is where it tries a mknod(2) (inside a
    rootfs, its own /tmp; without one, a `pycontain-` temp dir on the host)."""
    return ["sh", "-c", SCRIPT, "probe", scratch]


def parse(output: str) -> dict[str, list[str]]:
    """The probe's output as section -> lines; raises ValueError when it did not reach the end.

    >>> parse("@@ ns\\nnet net:[1]\\n@@ fds\\n0\\n1\\n@@ end\\n")
    {'ns': ['net net:[1]'], 'fds': ['0', '1'], 'end': []}
    >>> parse("@@ ns\\n")
    Traceback (most recent call last):
    ...
    ValueError: the probe stopped before its end (last section: ns)
    """
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    name = ""
    for line in output.splitlines():
        if line.startswith("@@ "):
            name = line[3:].strip()
            current = sections.setdefault(name, [])
        elif current is not None and line.strip():
            current.append(line.rstrip())
    if "end" not in sections:
        raise ValueError(f"the probe stopped before its end (last section: {name or 'none'})")
    return sections


def _some(items: list[str], most: int = 8) -> str:
    """At most `most` of `items`, and how many more.

    >>> _some(["a", "b", "c"], 2)
    'a, b and 1 more'
    """
    shown = ", ".join(items[:most])
    return f"{shown} and {len(items) - most} more" if len(items) > most else shown


def root_outside(uid_map: Sequence[str]) -> int | None:
    """The uid outside that uid 0 inside is, from the lines of /proc/self/uid_map; None when
    root inside is unmapped.

    >>> root_outside(["         0     100000      65536"]), root_outside(["0 0 1"])
    (100000, 0)
    >>> root_outside(["1000 1000 1"]) is None
    True
    """
    for line in uid_map:
        words = line.split()
        if len(words) == 3 and all(w.isdigit() for w in words):
            inside, outside, count = map(int, words)
            if inside <= 0 < inside + count:
                return outside - inside
    return None


def _namespaces(lines: list[str], host: Mapping[str, procfs.NamespaceId],
                uid_map: Sequence[str] = ()) -> list[Finding]:
    inside = {word: rest for word, _, rest in (line.partition(" ") for line in lines)}
    out = []
    for ns_type in procfs.NAMESPACE_TYPES:
        seen = inside.get(ns_type, "")
        theirs = str(host[ns_type]) if ns_type in host else ""
        if not seen:
            out.append(Finding(f"ns {ns_type}", None, "this kernel has none"))
        elif seen == theirs and ns_type == "time":  # it only shifts clocks (lesson 11)
            out.append(Finding(f"ns {ns_type}", None, f"{seen}: the host's; a time namespace "
                                                      "shifts clocks, it isolates nothing"))
        elif seen == theirs:
            out.append(Finding(f"ns {ns_type}", False, f"{seen}: the host's"))
        elif ns_type == "user" and root_outside(uid_map) == 0:
            # its own namespace, but a map that makes root inside the host's root again: the
            # kernel checks files and sysctls against the uid outside (lesson 09)
            out.append(Finding("ns user", False, f"{seen}, but its uid_map makes uid 0 inside "
                                                 "uid 0 outside: root inside is the host's root"))
        else:
            out.append(Finding(f"ns {ns_type}", True, f"{seen}, the host's is {theirs}"))
    return out


def _security(status: Mapping[str, str]) -> list[Finding]:
    bounding = capabilities.names(int(status.get("CapBnd", "0"), 16))
    effective = capabilities.names(int(status.get("CapEff", "0"), 16))
    beyond = sorted(bounding - capabilities.DEFAULT)
    caps = Finding("capabilities", not beyond,
                   f"beyond Docker's default set (without MKNOD): {_some(beyond)}" if beyond
                   else f"{len(effective)} effective, none beyond Docker's default set")
    nnp = status.get("NoNewPrivs", "?")
    mode = status.get("Seccomp", "?")
    return [caps,
            Finding("no_new_privs", nnp == "1", f"NoNewPrivs: {nnp}"),
            Finding("seccomp", mode == "2", f"Seccomp: {mode} (2: a filter, 0: none)")]


def _paths(mounts: list[procfs.Mount], writable: list[str],
           exists: Any = os.path.lexists) -> list[Finding]:
    points = {m.mount_point: m for m in mounts}
    wanted = [p for p in paths.MASKED if exists(p)]
    unmasked = [p for p in wanted if p not in points]
    masked = Finding("masked paths", not unmasked,
                     f"not masked: {', '.join(unmasked)}" if unmasked
                     else f"{len(wanted)} masked: {', '.join(wanted)}")
    frozen = [p for p in paths.READ_ONLY if exists(p)]
    not_ro = [p for p in frozen
              if p not in points or "ro" not in points[p].options.split(",")]
    open_for_write = [line.split()[0] for line in writable if line.endswith(" yes")]
    problems = not_ro + [f"{p} (opened for writing)" for p in open_for_write if p not in not_ro]
    read_only = Finding("read-only paths", not problems,
                        f"writable: {', '.join(problems)}" if problems
                        else f"{len(frozen)} read-only: {', '.join(frozen)}")
    return [masked, read_only]


def _devices(listing: list[str], mknod: list[str]) -> list[Finding]:
    blocks = [line.split()[-1] for line in listing if line.startswith("b")]
    chars = [line.split()[-1] for line in listing if line.startswith("c")]
    extra = sorted(set(chars) - set(rootfs.DEVICES))
    bad = blocks + extra
    made = "made" in mknod
    return [Finding("devices", not bad,
                    f"beyond {', '.join(rootfs.DEVICES)}: {_some(bad)}" if bad
                    else f"only {', '.join(sorted(chars))}"),
            Finding("mknod", not made, "mknod b 7 0 (a loop disk): " +
                    ("made: root inside may make a disk's node" if made
                     else f"refused{': ' + mknod[0] if mknod and mknod[0] != 'refused' else ''}"))]


def _process(fds: list[str], cwd: list[str]) -> list[Finding]:
    extra = [fd for fd in fds if fd not in ("0", "1", "2")]
    where = cwd[0] if cwd else "?"
    reachable = "reachable" in cwd
    return [Finding("descriptors", not extra, f"open: {', '.join(fds)}"),
            Finding("working directory", reachable,
                    f"{where}, {'inside' if reachable else 'OUTSIDE'} the root")]


def _mounts(mounts: list[procfs.Mount], host_root: procfs.Mount | None) -> Finding:
    from pycontain.audit.escape import foreign_mounts

    root = next((m for m in mounts if m.mount_point == "/"), None)
    if root is None:
        return Finding("mounts", False, "no / in mountinfo")
    if host_root is not None and (root.source, root.root) == (host_root.source, host_root.root):
        return Finding("mounts", False, f"/ is the host's ({root.fstype} {root.source}), "
                                        f"{len(mounts)} mounts in sight")
    foreign = [p for p in foreign_mounts(mounts)
               if not p.startswith("/sys/")]  # /sys/fs/cgroup/...: the cgroup view, read-only
    return Finding("mounts", not foreign,
                   f"/ is {root.fstype} {root.source}; {len(mounts)} mounts"
                   + (f"; not the rootfs's: {', '.join(foreign[:6])}" if foreign else ""))


def _network(net: list[str], route: list[str], same_ns: bool) -> Finding:
    names = [line.split(":")[0].strip() for line in net if ":" in line]
    default = [line.split()[0] for line in route[1:] if len(line.split()) > 1
               and line.split()[1] == "00000000"]
    if same_ns:
        return Finding("network", False, f"the host's interfaces ({', '.join(names)}): the host's "
                                         "loopback services are reachable")
    how = f"a default route via {default[0]}" if default else "no route out"
    return Finding("network", True, f"interfaces {', '.join(names)}; {how}")


def _ipc(lines: list[str], same_ns: bool) -> Finding:
    counts = ", ".join(lines)
    return Finding("ipc", not same_ns, f"System V objects in sight: {counts}"
                   + ("; the host's" if same_ns else "; its own namespace's"))


def _cgroup(lines: list[str]) -> Finding:
    values = dict(line.split(" ", 1) for line in lines if " " in line)
    memory = values.get("memory.max", values.get("memory/memory.limit_in_bytes"))
    pids = values.get("pids.max", values.get("pids/pids.max"))
    limited_memory = memory is not None and memory != "max" and int(memory) < _NO_LIMIT
    limited_pids = pids is not None and pids != "max"
    shown = ", ".join(f"{k} = {v}" for k, v in values.items()) or "no cgroup files in sight"
    return Finding("cgroup limits", limited_memory and limited_pids, shown)


def findings(output: str, host: Mapping[str, procfs.NamespaceId] | None = None,
             host_mounts: list[procfs.Mount] | None = None) -> list[Finding]:
    """The audit's lines from the probe's `output`, against the host's namespaces (`host`,
    default: this process's) and mounts (default: this process's)."""
    sections = parse(output)
    host = procfs.namespaces() if host is None else host
    mounts = [procfs.Mount.parse(line) for line in sections.get("mountinfo", [])]
    status = procfs.parse_status("\n".join(sections.get("status", [])))
    host_mounts = procfs.mountinfo() if host_mounts is None else host_mounts
    host_root = next((m for m in host_mounts if m.mount_point == "/"), None)
    ns = _namespaces(sections.get("ns", []), host, sections.get("uid_map", []))
    same = {f.name.split()[1] for f in ns if f.ok is False}
    return [*ns, *_security(status), *_paths(mounts, sections.get("writable", [])),
            *_devices(sections.get("dev", []), sections.get("mknod", [])),
            *_process(sections.get("fds", []), sections.get("cwd", [])),
            _mounts(mounts, host_root),
            _network(sections.get("net", []), sections.get("route", []), "net" in same),
            _ipc(sections.get("ipc", []), "ipc" in same),
            _cgroup(sections.get("cgroup", []))]


class Report:
    """The audit's findings: a green/red table in a notebook, text elsewhere."""

    COLOURS = {True: "#e6f4ea", False: "#fce8e6", None: "#f1f3f4"}

    def __init__(self, lines: Iterable[Finding]) -> None:
        self.lines = list(lines)

    @property
    def red(self) -> list[Finding]:
        """The lines that say something is not isolated."""
        return [f for f in self.lines if f.ok is False]

    @property
    def green(self) -> bool:
        """True when every line is green (a line the kernel cannot have, grey, counts too)."""
        return not self.red

    def __getitem__(self, name: str) -> Finding:
        for f in self.lines:
            if f.name == name:
                return f
        raise KeyError(f"no audit line {name!r}; the lines are: {', '.join(LINES)}")

    def json_lines(self) -> str:
        return "".join(f.to_json() + "\n" for f in self.lines)

    def __repr__(self) -> str:
        width = max((len(f.name) for f in self.lines), default=0)
        mark = {True: "ok ", False: "RED", None: "-  "}
        rows = [f"{mark[f.ok]}  {f.name:<{width}}  {f.evidence}" for f in self.lines]
        verdict = "every line green" if self.green else f"{len(self.red)} red"
        return "\n".join([*rows, verdict])

    def _repr_html_(self) -> str:
        from html import escape

        icon = {True: "✅", False: "❌", None: "➖"}
        rows = "".join(f'<tr style="background:{self.COLOURS[f.ok]};color:#202124">'
                       f"<td>{icon[f.ok]}</td><td>{escape(f.name)}</td>"
                       f"<td>{escape(f.evidence)}</td></tr>" for f in self.lines)
        verdict = "every line green" if self.green else f"{len(self.red)} red lines"
        return (f'<table><caption style="text-align:left">audit: {verdict}</caption>'
                f"<tr><th></th><th>line</th><th>evidence, from inside</th></tr>{rows}</table>")



@contextlib.contextmanager
def scratch(has_rootfs: object) -> Iterator[str]:
    """Where the probe tries its mknod(2): in a rootfs, the container's own /tmp; without one
    the container works in the host's file system, so a fresh `pycontain-` temp dir, removed
    after."""
    if has_rootfs:
        yield "/tmp"
        return
    import shutil
    import tempfile

    from pycontain.settings import PREFIX

    where = tempfile.mkdtemp(prefix=f"{PREFIX}audit-")
    try:
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


def audit(spec: Any = None, *, timeout_s: float = 30.0, **options: Any) -> Report:
    """Run the probe in a container made with `options` (those of `pycontain.run`), or with
    `spec`, a `Spec` whose command is `argv(...)`, and read its findings against this
    process's own view of namespaces and mounts."""
    from pycontain import runtime
    from pycontain.errors import PycontainError

    with scratch(spec.rootfs if spec is not None else options.get("rootfs")) as where:
        if spec is None:
            spec = runtime.Spec(argv(where), **options)
        result = runtime.run(spec, timeout_s=timeout_s)
    try:
        return Report(findings(result.stdout))
    except ValueError as e:
        raise PycontainError(f"the audit's probe {result.reason}: {e}; it said: "
                             f"{result.stderr.strip()[-300:]}") from None
