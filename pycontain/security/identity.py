"""Who the command runs as: `-u UID[:GID]` or a user name the container's /etc/passwd knows.

A container's first process is root (of its namespace, lesson 09) while init builds it; the
command may run as another user, as `docker run -u` and `docker exec -u` ask. A name means
what the container's own /etc/passwd (and /etc/group) says, never the host's: the image
decides who `nobody` is. A uid without a group takes the primary group its passwd line gives,
or 0 when there is none, as Docker does.

The switch is setgroups(2) (no supplementary group of root's is kept), setresgid(2), then
setresuid(2) (the group first: after the uid change the process may not change it). A uid
change from 0 clears the permitted capabilities unless PR_SET_KEEPCAPS is set, so init sets it
first, as runc does, and then chooses the sets with capset(2) as for root; the execve(2) that
follows gives a non-root user none of them (capabilities(7), "Transformation of capabilities
during execve()"), the bounding set still caps what a setuid program could get back.

See also: passwd(5), group(5), setresuid(2), setgroups(2), capabilities(7), docker-run(1) (-u).
"""

from __future__ import annotations

import os

from pycontain import syscalls
from pycontain.errors import SpecError
from pycontain.syscalls import PrctlOption

#: the accepted form, as errors say it
FORM = "UID[:GID] as numbers, or a name[:group] the container's /etc/passwd (and /etc/group) knows"


def entries(path: str) -> list[list[str]]:
    """The colon-separated fields of each line of a passwd(5) or group(5) file; none if absent.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = pathlib.Path(d) / "passwd"
    ...     _ = f.write_text("root:x:0:0:root:/root:/bin/sh\\n# a comment\\n\\n")
    ...     entries(str(f))
    [['root', 'x', '0', '0', 'root', '/root', '/bin/sh']]
    """
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    return [line.split(":") for line in lines if line.strip() and not line.startswith("#")]


def resolve(given: str, root: str = "/", parameter: str = "user") -> tuple[int, int]:
    """The (uid, gid) that `given` names inside the root filesystem `root`.

    >>> resolve("1000:1001"), resolve("0")
    ((1000, 1001), (0, 0))
    >>> resolve("ghost", root="/nonexistent")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pycontain.errors.SpecError: `user` must be UID[:GID] as numbers, or a name[:group] ...
      hint: /etc/passwd inside /nonexistent has no user 'ghost' ...
    """
    if not isinstance(given, str) or given.count(":") > 1 or not given.partition(":")[0] \
            or given.endswith(":"):
        raise SpecError(parameter, FORM, given)
    user, _, group = given.partition(":")
    passwd = entries(os.path.join(root, "etc/passwd"))
    if user.isdigit():
        uid = int(user)
        line = next((e for e in passwd if len(e) > 3 and e[2] == user), None)
        gid = int(line[3]) if line and line[3].isdigit() else 0
    else:
        line = next((e for e in passwd if e[0] == user and len(e) > 3), None)
        if line is None or not (line[2].isdigit() and line[3].isdigit()):
            known = ", ".join(e[0] for e in passwd[:8]) or "no users at all"
            raise SpecError(parameter, FORM, given,
                            hint=f"/etc/passwd inside {root} has no user {user!r} (it has "
                                 f"{known}): give a uid, or a name it lists")
        uid, gid = int(line[2]), int(line[3])
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            found = next((e for e in entries(os.path.join(root, "etc/group"))
                          if e[0] == group and len(e) > 2 and e[2].isdigit()), None)
            if found is None:
                raise SpecError(parameter, FORM, given,
                                hint=f"/etc/group inside {root} has no group {group!r}: give "
                                     "a gid, or a name it lists")
            gid = int(found[2])
    for value in (uid, gid):
        if value > 0xFFFFFFFE:  # (uid_t) -1 means "unchanged" to setresuid(2)
            raise SpecError(parameter, "ids from 0 to 4294967294", given)
    return uid, gid


def switch(uid: int, gid: int, *groups: int) -> None:
    """Become `uid`:`gid` with only the supplementary `groups` (none by default: an OCI
    config's additionalGids), keeping the permitted capabilities for the capset(2) that
    follows (PR_SET_KEEPCAPS, cleared again by execve(2))."""
    syscalls.prctl(PrctlOption.PR_SET_KEEPCAPS, 1)
    if _may_set_groups():
        syscalls.setgroups(list(groups))
    syscalls.setresgid(gid, gid, gid)
    syscalls.setresuid(uid, uid, uid)


def _may_set_groups() -> bool:
    """Whether setgroups(2) is allowed here: a user namespace whose maps an unprivileged
    process wrote has `deny` in /proc/self/setgroups (user_namespaces(7)), and no groups."""
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() != "deny"
    except FileNotFoundError:
        return True
