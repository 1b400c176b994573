"""The OCI runtime's verbs: create, start, state, kill, delete, exec, features (lesson 24).

The runtime spec's lifecycle: `create` builds the container around its first process and
leaves the process waiting before its exec, status *created*; `start` lets it exec, *running*;
when it ends it is *stopped*; `delete` releases what create made. Between verbs the state
lives on disk, one directory per container under the runtime's root (`--root`, default
/run/pycontain-oci): `state.json` and, while the container waits, `exec.fifo`.

The wait is runc's exec.fifo: init opens the FIFO for writing, which blocks until `start`
opens it for reading (init.wait_for_start). The status is read from the kernel each time, as
runc does: the FIFO still there and the process alive is *created*, the process alive is
*running*, anything else *stopped*. The process is named by its pid and start time
(`pycontain.state.process`), so a reused pid is never taken for it, and signals go through a
pidfd. `create` exits once the container waits: its first process is then the child of the
nearest subreaper (conmon, for podman), which reaps it and reads its exit status.

See also: the OCI runtime spec (runtime.md: "Lifecycle", "State"), runc(8), fifo(7).
"""

from __future__ import annotations

import os
import time

from pycontain import jsonc
from pycontain import state as records
from pycontain.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: where the containers' states live unless `--root` says otherwise (runc: /run/runc)
DEFAULT_ROOT = "/run/pycontain-oci"
OCI_VERSION = "1.0.2"
STATE_FILE, FIFO = "state.json", "exec.fifo"
START_TIMEOUT_S = 10.0


def check_id(container_id: str) -> str:
    """An id of [A-Za-z0-9_.-], as runc accepts, or a SpecError."""
    ok = container_id and container_id not in (".", "..") and all(
        c.isascii() and (c.isalnum() or c in "_.-") for c in container_id)
    if not ok:
        raise SpecError("id", "one or more of A-Z, a-z, 0-9, '_', '.', '-'", container_id)
    return container_id


def _dir(root: str, container_id: str) -> str:
    return os.path.join(root, check_id(container_id))


def _write(root: str, record: dict[str, Any]) -> None:
    path = os.path.join(_dir(root, record["id"]), STATE_FILE)
    with open(f"{path}.tmp", "w") as f:
        f.write(jsonc.dumps(record))
    os.rename(f"{path}.tmp", path)


def read(root: str, container_id: str) -> dict[str, Any]:
    """The container's record, or a SpecError when there is none."""
    try:
        with open(os.path.join(_dir(root, container_id), STATE_FILE)) as f:
            record: dict[str, Any] = jsonc.loads(f.read())
    except FileNotFoundError:
        if os.path.isdir(_dir(root, container_id)):  # `create` is writing it
            return {"id": container_id, "status": "creating", "bundle": None}
        raise SpecError("id", "the id of a container this runtime created (`list` shows "
                        "them)", container_id) from None
    return record


def status(root: str, record: dict[str, Any]) -> str:
    """creating, created, running or stopped: what the kernel says now."""
    if record.get("status") == "creating":
        return "creating"
    if not records.alive(record.get("container")):
        return "stopped"
    fifo = os.path.join(_dir(root, record["id"]), FIFO)
    return "created" if os.path.exists(fifo) else "running"


def state(root: str, container_id: str) -> dict[str, Any]:
    """The runtime spec's state: ociVersion, id, status, pid, bundle, annotations."""
    record = read(root, container_id)
    now = status(root, record)
    shown = {"ociVersion": OCI_VERSION, "id": container_id, "status": now,
             "pid": record["container"]["pid"] if now in ("created", "running") else 0,
             "bundle": record.get("bundle")}
    if record.get("annotations"):
        shown["annotations"] = record["annotations"]
    return shown


def create(root: str, container_id: str, bundle: str, pid_file: str | None = None,
           console_socket: str | None = None) -> int:
    """Build the container the bundle describes and leave it waiting for `start`; return its
    pid (also written to `pid_file`). With process.terminal its stdio is a new pty, whose
    master goes to `console_socket` (podman's conmon relays it). Bad input is refused before
    anything is made."""
    from pycontain import nsenter, runtime, terminal
    from pycontain.oci import config

    check_id(container_id)
    chosen = config.load(bundle)
    _check_console(chosen.terminal, console_socket, "process.terminal")
    os.makedirs(root, mode=0o700, exist_ok=True)
    where = _dir(root, container_id)
    try:
        os.mkdir(where, 0o700)  # atomic: of two creates of one id, one wins
    except FileExistsError:
        raise SpecError("id", "an id no other container of this runtime has", container_id,
                        hint="`delete` it first, or pick another") from None
    container = None
    pty: tuple[int, int] | None = None
    try:
        fifo = os.path.join(where, FIFO)
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)  # writable by the container's user, whatever our umask
        if chosen.terminal:
            pty = terminal.open_pty()
            if chosen.console_size:
                terminal.resize(pty[0], *chosen.console_size)
        slave = None if pty is None else pty[1]
        container = runtime.spawn_forked(
            chosen.spec, container_id=container_id, start_fifo=fifo,
            in_child=None if slave is None else lambda: terminal.take(slave))
        if pty is not None:
            assert console_socket is not None  # _check_console
            terminal.send(pty[0], console_socket)
        cgroup = container.cgroup
        record = {"id": container_id, "bundle": chosen.bundle, "created": time.time(),
                  "annotations": chosen.annotations, "hooks": chosen.hooks,
                  "container": records.process(container.pid),
                  "cgroup": None if cgroup is None else {"name": cgroup.name,
                                                         "dirs": cgroup.dirs},
                  "process": nsenter.recorded(chosen.spec.to_wire())}
        _write(root, record)
        if pid_file:
            with open(f"{pid_file}.tmp", "w") as f:
                f.write(str(container.pid))
            os.rename(f"{pid_file}.tmp", pid_file)
        for kind in ("createRuntime", "prestart"):
            run_hooks(root, record, kind)
    except BaseException:
        if container is not None:  # it waits at the FIFO: kill it, release its cgroup
            container.kill()
            container.undo.close()
        _remove(root, container_id)
        raise
    finally:
        for fd in pty or ():  # the container and conmon hold theirs
            os.close(fd)
    return container.pid


def _check_console(wanted: bool, console_socket: str | None, parameter: str) -> None:
    """A terminal needs a console socket to send it to, and a console socket a terminal: runc
    refuses either alone."""
    if wanted and not console_socket:
        raise SpecError("--console-socket", f"the path of a unix socket: {parameter} is true",
                        None, hint="podman's conmon passes one with -t")
    if console_socket and not wanted:
        raise SpecError("--console-socket", f"absent: {parameter} is false", console_socket,
                        hint="a terminal is what it would be sent")


def start(root: str, container_id: str) -> None:
    """Let a created container's first process exec its command."""
    import select

    record = read(root, container_id)
    now = status(root, record)
    if now != "created":
        raise SpecError("id", "a created container (`create` made it, nothing started it)",
                        container_id, hint=f"it is {now}: a container starts once")
    fifo = os.path.join(_dir(root, container_id), FIFO)
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:  # another start took it first
        raise SpecError("id", "a created container", container_id,
                        hint="it is running: a container starts once") from None
    try:
        os.unlink(fifo)  # first: a second start is refused from now on
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(START_TIMEOUT_S * 1000) or not os.read(fd, 1):
            raise SpecError("id", "a created container whose process waits", container_id,
                            hint="its first process ended before it could start")
    finally:
        os.close(fd)
    run_hooks(root, record, "poststart")


def signal_number(given: str) -> int:
    """`TERM`, `SIGTERM` or `15` as a signal number.

    >>> signal_number("KILL"), signal_number("SIGTERM"), signal_number("2")
    (9, 15, 2)
    """
    import _signal as signal  # without its enums

    text = given.upper()
    if text.isdigit() and 0 < int(text) < signal.NSIG:
        return int(text)
    name = text if text.startswith("SIG") else f"SIG{text}"
    value = getattr(signal, name, None)
    if not isinstance(value, int) or "_" in name:  # SIG_IGN, SIG_BLOCK are no signals
        raise SpecError("signal", "a signal's name or number: TERM, SIGKILL, 9", given)
    return int(value)


def kill(root: str, container_id: str, sig: int, *, all_processes: bool = False) -> None:
    """Send `sig` to a created or running container's first process (every process of its
    cgroup with `all_processes`)."""
    record = read(root, container_id)
    now = status(root, record)
    if now not in ("created", "running"):
        raise SpecError("id", "a created or running container", container_id,
                        hint=f"it is {now}: nothing is left to signal")
    cgroup = records.cgroup_of(record)
    if all_processes and cgroup is not None:
        for pid in cgroup.procs():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    elif not records.send_signal(record["container"], sig):
        raise SpecError("id", "a running container", container_id, hint="it ended just now")


def delete(root: str, container_id: str, *, force: bool = False) -> None:
    """Release what `create` made. A running container is refused without `force`, which
    SIGKILLs it first; a created one is killed, as runc does."""
    import _signal as signal  # without its enums: every delete pays for them

    record = read(root, container_id)
    now = status(root, record)
    if now == "running" and not force:
        raise SpecError("id", "a stopped or created container, without --force", container_id,
                        hint="it is running: `kill` it first, or `delete --force`")
    if now in ("created", "running"):
        records.send_signal(record["container"], signal.SIGKILL)
        records.wait_gone(record["container"], 5.0)
    if record.get("cgroup"):
        records.release(record)  # its cgroup: what is left in it killed, then removed
    _remove(root, container_id)
    if now != "creating":
        run_hooks(root, record, "poststop")


def _remove(root: str, container_id: str) -> None:
    where = _dir(root, container_id)
    for entry in (STATE_FILE, FIFO, f"{STATE_FILE}.tmp"):
        try:
            os.unlink(os.path.join(where, entry))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(where)
    except FileNotFoundError:
        pass


def list_ids(root: str) -> list[str]:
    """Every container id under `root`."""
    try:
        return sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
    except FileNotFoundError:
        return []


def pids(root: str, container_id: str) -> list[int]:
    """The host pids of the container's processes: its cgroup's, or else every process in
    its first process's PID namespace."""
    record = read(root, container_id)
    if status(root, record) not in ("created", "running"):
        return []
    cgroup = records.cgroup_of(record)
    if cgroup is not None:
        return sorted(cgroup.procs())
    first = record["container"]["pid"]
    try:
        theirs = os.readlink(f"/proc/{first}/ns/pid")
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == theirs:
                    found.append(int(entry))
            except OSError:
                pass
    return sorted(found)


def run_hooks(root: str, record: dict[str, Any], kind: str) -> None:
    """Run the config's `kind` hooks in the runtime's namespaces, each with the state on its
    stdin, as the runtime spec says; a failing prestart/createRuntime hook fails create."""
    hooks = (record.get("hooks") or {}).get(kind) or []
    if not hooks:
        return
    import subprocess  # only here: every create and start passes by

    for hook in hooks:
        payload = jsonc.dumps(state(root, record["id"]) if kind != "poststop" else
                             {"ociVersion": OCI_VERSION, "id": record["id"],
                              "status": "stopped", "pid": 0, "bundle": record.get("bundle")})
        env = dict(item.partition("=")[::2] for item in hook["env"])
        done = subprocess.run([hook["path"], *hook["args"][1:]], input=payload, text=True,
                              env=env, capture_output=True, timeout=hook.get("timeout"))
        if done.returncode != 0 and kind in ("createRuntime", "prestart"):
            raise SpecError(f"hooks.{kind}", "hooks that succeed", hook["path"],
                            hint=f"it exited {done.returncode}: {done.stderr.strip()[:200]}")


def features() -> dict[str, Any]:
    """What this runtime supports, in the runtime spec's features.md form."""
    from pycontain.oci import config

    return {"ociVersionMin": "1.0.0", "ociVersionMax": "1.1.0",
            "hooks": list(config.HOOKS), "mountOptions": ["ro", "rw", "bind", "rbind"],
            "linux": {"namespaces": list(config.NAMESPACES),
                      "capabilities": sorted(_capabilities()),
                      "cgroup": {"v1": True, "v2": True, "systemd": False},
                      "seccomp": {"enabled": True}},
            "annotations": {"org.pycontain.fields": ",".join(config.FIELDS)}}


def _capabilities() -> list[str]:
    from pycontain.security import capabilities

    return list(capabilities.NUMBERS)


def exec_process(root: str, container_id: str, process: dict[str, Any],
                 console_socket: str | None = None) -> int:
    """Start `process` (an OCI process object: args, env, cwd, user, terminal) in a running
    container; return its pid, a child of this process once it has exec'd (`pycontain.nsenter`).
    With a terminal, the pty's master goes to `console_socket`, as in `create`."""
    from pycontain import nsenter, terminal

    record = read(root, container_id)
    if status(root, record) != "running":
        raise SpecError("id", "a running container", container_id,
                        hint=f"it is {status(root, record)}: exec joins a running one")
    args = process.get("args")
    if not isinstance(args, list) or not args:
        raise SpecError("process.args", "a non-empty list of strings", args)
    env = dict(item.partition("=")[::2] for item in process.get("env") or [])
    user = process.get("user") or {}
    given = f"{user['uid']}:{user.get('gid', 0)}" if "uid" in user else None
    wire = nsenter.prepare(record, args, env=env, cwd=process.get("cwd"), user=given)
    wanted = process.get("terminal", False)
    _check_console(wanted is True, console_socket, "the process's terminal")
    if not wanted:
        return nsenter.start(record, wire)
    master, slave = terminal.open_pty()
    try:
        pid = nsenter.start(record, wire, lambda: terminal.take(slave))
        assert console_socket is not None
        terminal.send(master, console_socket)
    finally:
        os.close(master)
        os.close(slave)
    return pid
