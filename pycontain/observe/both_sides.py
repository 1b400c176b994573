"""A rootless run seen from both sides: what the container says inside, and how the host sees
its processes and maps (lesson 09).

`rootless(command)` becomes an unprivileged user (setpriv(1)) in a helper process
(`pycontain.helper`), which starts a container with a user namespace and `command` by itself,
with no help from root, and holds it while this process reads its ids and maps from /proc.
The rules it runs into are `namespaces.rootless`'s.

See also: user_namespaces(7), setpriv(1).
"""

from __future__ import annotations

import os
from typing import Any

from pycontain.errors import ProcessError
from pycontain.namespaces import user


def rootless(command: str = "id", uid: int = user.OVERFLOW_ID,
             gid: int | None = None) -> dict[str, Any]:
    """A rootless run: as unprivileged `uid` (setpriv(1)), start a container with a user
    namespace and the shell `command`; return what it said and how the host sees it.

    The caller must be root (to become `uid`); the container is made by `uid` alone, in a
    helper (`pycontain.helper`) that holds it while the host looks, with the only maps it may
    write itself: `0 <uid> 1` and `0 <gid> 1`, after `deny` in setgroups.
    """
    from pycontain import helper

    gid = uid if gid is None else gid
    as_uid = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
    try:
        holder, started = helper.start(_hold_container, command, prefix=as_uid)
    except ProcessError as e:
        e.add_note("the rootless run failed in the unprivileged process; `pycontain doctor` "
                   "says whether user namespaces are enabled (lesson 09)")
        raise
    try:
        pid = started["pid"]
        return {"inside": started["said"], "outside (/proc/<pid>/status)": user.outside_ids(pid),
                "uid_map": user.map_text(user.read_map(pid, "uid")).strip(),
                "gid_map": user.map_text(user.read_map(pid, "gid")).strip(), "pid": pid}
    finally:
        helper.stop(holder)  # the container dies with it (PDEATHSIG), and is reaped by init:
        _wait_gone(started["pid"])  # the caller sees it gone, as after Container.wait()


def _wait_gone(pid: int, timeout_s: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.005)


_READY = "pycontain-ready"


def _hold_container(command: str) -> dict[str, Any]:
    """In the unprivileged helper: start the container, read what it says up to the mark that
    it is done, and leave it running for the caller to look at.

    The container is forked, as the `pycontain` command makes it (this helper is
    single-threaded): an unprivileged user may not be able to start the interpreter again from
    here. A fork shares this process's stdout, where the helper's answer goes, so the container
    gets a pipe as its stdout instead, for the time of the fork."""
    from pycontain.runtime import spawn_forked

    read_end, write_end = os.pipe()
    ours = os.dup(1)
    os.dup2(write_end, 1)
    try:
        box = spawn_forked(["sh", "-c", f"exec 2>&1; {command}; echo {_READY}; exec sleep 60"],
                           user_namespace=True)
    finally:
        os.dup2(ours, 1)
        os.close(ours)
        os.close(write_end)
    said = []
    with os.fdopen(read_end) as container_out:
        while (line := container_out.readline()) not in ("", f"{_READY}\n"):
            said.append(line.rstrip("\n"))
    if not line:
        raise ProcessError(f"the rootless container ended before it was done: {said}")
    return {"pid": box.pid, "said": said}
