"""A detached container's state on disk: one run directory per container (the lifecycle).

A container started with `pycontain run -d` outlives the command that started it, so what is
known about it lives in files, not in a process's memory: `/run/pycontain/<id>/` (the root is
`settings.run_dir()`) holds

- `state.json`, rewritten whole for every change (a temporary file, then rename(2): a reader
  sees the old state or the new one, never half of one): id, name, status, the pid of the
  container's first process with its start time, the supervisor's pid with its start time,
  the boot it ran in, the created / started / finished times, the exit status and its reason,
  the spec as given, the rootfs and writable layer, the cgroup directories, the network
  attachment (veth, address, published ports), and what `pycontain exec` takes on of the spec
  (`process`: env, cwd, user, capabilities, no_new_privs, the seccomp filter; `nsenter`);
- `lock`, flock(2)ed by whoever changes the state (the supervisor, `pause`, `rm`);
- `stdout.log` and `stderr.log`, what the container wrote.

The directory is made as `.<id>.new` and renamed to `<id>` once its first state.json is in it,
so a command killed half-way (pycontain.faults) leaves no run directory without a state, only
a `.new` one that `pycontain cleanup` removes.

A name is a symbolic link `names/<name>` -> `<id>`: symlink(2) fails with EEXIST when the name
is taken, so two `run -d --name web` racing each other cannot both get it.

A pid alone does not identify a process: after the process ends the kernel hands its number to
the next one. So every pid is stored with its start time, field 22 of /proc/<pid>/stat (clock
ticks since boot), and the boot's id (/proc/sys/kernel/random/boot_id); a process whose start
time differs is somebody else. `current()` reads the state as it is now: a container whose
supervisor is gone (killed, the machine rebooted) is `exited`, with the reason, never `running`.

runc keeps the same in `/run/runc/<id>/state.json`, podman's conmon writes the exit status
to a file, containerd's shim holds it in memory. See also: proc_pid_stat(5), flock(2),
rename(2), symlink(2), pidfd_open(2).
"""

from __future__ import annotations

import _signal as signal  # without its enums: the command pays for them
import errno
import os
import time

from pycontain import faults, settings
from pycontain.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pycontain.cgroups import Cgroup

    Record = dict[str, Any]

#: a container's statuses, as docker names them
STATUSES = ("created", "running", "paused", "exited")
#: the digits of a container id: 64 of them (runtime.new_id)
HEX_DIGITS = frozenset("0123456789abcdef")
#: what docker accepts as a name
NAME = r"[a-zA-Z0-9][a-zA-Z0-9_.-]+"
STATE_FILE, LOCK_FILE, NAMES = "state.json", "lock", "names"
LOGS = {"stdout": "stdout.log", "stderr": "stderr.log"}


def root() -> str:
    return settings.run_dir()


def directory(container_id: str) -> str:
    return os.path.join(root(), container_id)


def log_path(container_id: str, stream: str) -> str:
    return os.path.join(directory(container_id), LOGS[stream])


# --- who is alive: a pid and its start time --------------------------------------------------

def boot_id() -> str:
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: when `pid` started, in clock ticks since boot; None when
    there is no such process. The command name (field 2) may hold spaces and parentheses, so
    the fields are counted from the last ')'.

    >>> start_time(os.getpid()) == start_time(os.getpid()) is not None
    True
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(text.rpartition(")")[2].split()[19])  # fields 3.. after the name


def process(pid: int) -> dict[str, Any]:
    """How the state names a process: its pid, start time and boot."""
    return {"pid": pid, "start_time": start_time(pid), "boot_id": boot_id()}


def alive(owner: dict[str, Any] | None) -> bool:
    """Whether the process `owner` names (`process()`) still runs: same boot, same start time.
    A zombie counts as gone: it has ended and waits only to be reaped."""
    if not owner or owner.get("boot_id") != boot_id():
        return False
    if start_time(owner["pid"]) != owner["start_time"]:
        return False
    try:
        with open(f"/proc/{owner['pid']}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def send_signal(owner: dict[str, Any] | None, sig: int) -> bool:
    """Send `sig` to the process `owner` names, only if it is still that process: the pidfd
    (pidfd_open(2)) holds the process, then its start time is checked, so a reused pid never
    gets the signal. Returns whether it was sent."""
    if not owner or owner.get("boot_id") != boot_id():
        return False
    try:
        fd = os.pidfd_open(owner["pid"])
    except ProcessLookupError:
        return False
    try:
        if start_time(owner["pid"]) != owner["start_time"]:
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


def wait_gone(owner: dict[str, Any] | None, timeout_s: float) -> bool:
    """Wait until the process `owner` names has ended (its pidfd becomes readable, poll(2));
    return whether it did within `timeout_s`."""
    import select

    if not alive(owner):
        return True
    assert owner is not None
    try:
        fd = os.pidfd_open(owner["pid"])
    except ProcessLookupError:
        return True
    try:
        if start_time(owner["pid"]) != owner["start_time"]:
            return True
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(max(0.0, timeout_s) * 1000))
    finally:
        os.close(fd)


# --- the record ------------------------------------------------------------------------------

def validate_name(name: str) -> str:
    import re  # here: `pycontain exec` and the verbs that only find a container skip it

    if not re.fullmatch(NAME, name):
        raise SpecError("name", "two or more of a-z, A-Z, 0-9, '_', '.', '-', starting with a "
                                "letter or digit, as docker accepts", name)
    return name


def create(container_id: str, name: str | None, **fields: Any) -> Record:
    """Make the run directory of a new container (status `created`), its name first: a taken
    name is refused with nothing made. The calling process is its owner until the supervisor
    takes over (`owner` in the state)."""
    os.makedirs(os.path.join(root(), NAMES), mode=0o700, exist_ok=True)
    if name is not None:
        validate_name(name)
        try:
            os.symlink(container_id, os.path.join(root(), NAMES, name))
        except FileExistsError:
            taken = os.readlink(os.path.join(root(), NAMES, name))
            raise SpecError("name", "a name no other container has", name,
                            hint=f"container {taken[:12]} is called {name!r}: pick another "
                                 f"name, or `pycontain rm {name}` first") from None
    faults.point("cli:named")
    # Made under another name and renamed whole: nobody (`ps`, `rm`) ever sees a run
    # directory without its state.json, even if this process is killed half-way.
    staging = os.path.join(root(), f".{container_id}.new")
    try:
        os.mkdir(staging, 0o700)
        for entry in (LOCK_FILE, *LOGS.values()):
            os.close(os.open(os.path.join(staging, entry),
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        faults.point("cli:directory")
        record: Record = {"id": container_id, "name": name, "status": "created",
                          "created": time.time(), "started": None, "finished": None,
                          "exit_code": None, "signal": None, "reason": None,
                          "pid": None, "supervisor": process(os.getpid()), **fields}
        _write(record, staging)
        os.rename(staging, directory(container_id))
    except BaseException:
        remove_files(container_id, name, staging)
        raise
    return record


def _write(record: Record, where: str | None = None) -> None:
    """Write the state atomically: a temporary file beside it, fsync'd, renamed over it."""
    path = os.path.join(where or directory(record["id"]), STATE_FILE)
    temporary = f"{path}.{os.getpid()}.tmp"
    import json  # here, as in `read`: `pycontain exec` finds a container without it (and re)

    with open(temporary, "w") as f:
        json.dump(record, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.rename(temporary, path)


def read(container_id: str) -> Record:
    """The state as last written (see `current()` for what it means now)."""
    import json

    with open(os.path.join(directory(container_id), STATE_FILE)) as f:
        record: Record = json.load(f)
    return record


class Locked:
    """flock(2) on a container's lock file, for a read-modify-write of its state."""

    def __init__(self, container_id: str) -> None:
        self.path = os.path.join(directory(container_id), LOCK_FILE)

    def __enter__(self) -> Locked:
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def update(container_id: str, **changes: Any) -> Record:
    """Change fields of the state under its lock; return the new state."""
    with Locked(container_id):
        record = read(container_id)
        record.update(changes)
        _write(record)
    return record


def claim(container_id: str, parameter: str = "container") -> Record:
    """Make this process the owner of a container `pycontain create` made and nobody started,
    under the lock, so that of two `start`s one starts it and the other is refused."""
    with Locked(container_id):
        record = read(container_id)
        if record["status"] != "created" or record.get("supervisor") is not None:
            raise SpecError(parameter, "a container that `pycontain create` made and nothing "
                            "started yet", container_id[:12],
                            hint=f"it is {current(record)['status']}: `pycontain ps -a` shows "
                                 "it; an ended container is not started again here")
        record["supervisor"] = process(os.getpid())
        _write(record)
    return record


def current(record: Record) -> Record:
    """The state as it is now. A container whose supervisor is gone before it recorded the end
    (SIGKILL, a reboot) is `exited`, with the reason; its resources wait for `rm`/`cleanup`."""
    if record["status"] == "exited" or alive(record.get("supervisor")):
        return record
    if record["status"] == "created" and record.get("supervisor") is None:
        return record  # `pycontain create`: nobody watches it until `start`
    gone = record.get("supervisor") or {}
    rebooted = gone.get("boot_id") not in (None, boot_id())
    starting = record["status"] == "created"  # the command, or the supervisor, in setup
    crashed = ("the machine rebooted" if rebooted else
               "killed while starting it" if starting else "its supervisor was killed")
    why = ("the machine rebooted" if rebooted else
           f"the process starting it (pid {gone.get('pid')}) was killed before it ran"
           if starting else
           f"its supervisor (pid {gone.get('pid')}) ended without recording how the container "
           f"ended: it was killed")
    return {**record, "status": "exited", "crashed": crashed,
            "reason": f"{why}; `pycontain rm` releases what it left", "finished": None}


# --- finding a container ---------------------------------------------------------------------

def is_id(name: str) -> bool:
    """Whether `name` is a container id (a run directory's name).

    >>> is_id("ab" * 32), is_id("AB" * 32), is_id("ab")
    (True, False, False)
    """
    return len(name) == 64 and HEX_DIGITS.issuperset(name)


def staged_id(name: str) -> str | None:
    """The id of the run directory `name` is being made for (`.<id>.new`), or None."""
    return name[1:-4] if name[:1] == "." and name.endswith(".new") and is_id(name[1:-4]) else None


def listed() -> list[str]:
    """Every container's id, in no order (`ids` sorts them: it reads every state)."""
    try:
        return [n for n in os.listdir(root()) if is_id(n)]
    except FileNotFoundError:
        return []


def ids() -> list[str]:
    """Every container's id, oldest first."""
    found = listed()

    def created(container_id: str) -> float:
        try:
            return float(read(container_id)["created"])
        except (OSError, ValueError, KeyError):
            return 0.0

    return sorted(found, key=created)


def find(reference: str, parameter: str = "container") -> str:
    """The id of the container `reference` names: its full id, its name, or a prefix of its id
    no other container's id starts with (docker's order)."""
    known = listed()
    if reference in known:
        return reference
    try:
        target = os.readlink(os.path.join(root(), NAMES, reference))
        if target in known:
            return target
    except (FileNotFoundError, OSError):
        pass
    matches = sorted(i for i in known if reference and i.startswith(reference.lower()))
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise SpecError(parameter, "a prefix that only one container's id starts with",
                        reference, hint=f"{len(matches)} containers' ids start with it ("
                        + ", ".join(m[:12] for m in matches[:5]) + "): give more digits")
    raise SpecError(parameter, "the id, an id prefix or the name of a container "
                               "`pycontain ps -a` lists", reference)


# --- releasing what a container had, and removing it -----------------------------------------

def cgroup_of(record: Record) -> Cgroup | None:
    """The container's cgroup as the state records it (name and directories), or None."""
    cgroup = record.get("cgroup")
    if not cgroup:
        return None
    from pycontain import cgroups
    from pycontain.cgroups import v1, v2

    layout = cgroups.detect()
    manager = v2.V2Cgroup if layout.mode == "v2" else v1.V1Cgroup
    return manager(cgroup["name"], cgroup["dirs"], layout)


def release(record: Record) -> list[str]:
    """Release what the state says the container had, each piece by the concept that made it:
    its cgroup (what is left in it killed), its veth and its place on the bridge, its throw-away
    writable layer. What the supervisor does on exit, done again from the record after a crash;
    each step is idempotent. Returns what it released."""
    done = []
    recorded = (record.get("cgroup") or {}).get("dirs", {})
    if any(os.path.isdir(d) for d in recorded.values()):
        left = _rmdir_empty(recorded)
        if left:  # processes or cgroups in it: killed, waited for, removed depth-first
            cgroup = cgroup_of({**record, "cgroup": {**record["cgroup"], "dirs": left}})
            assert cgroup is not None
            cgroup.remove()
        done.append(f"cgroup {record['cgroup']['name']}")
    network = record.get("network")
    if network and network.get("veth"):
        from pycontain.network import bridge

        attachment = bridge.Attachment(network["subnet"], network["publish"])
        attachment.veth, attachment.ifb = network["veth"], network.get("ifb")
        attachment.address = network["address"]
        if os.path.exists(bridge.STATE / f"{attachment.veth}.json"):
            attachment.release()
            done.append(f"link {network['veth']}")
    layer = record.get("layer")
    if layer and os.path.isdir(layer["path"]):
        from pycontain.fs.layers import WritableLayer

        WritableLayer(layer["path"], layer["upper"], layer["work"], layer["merged"],
                      True).discard()
        done.append(f"dir {layer['path']}")
    return done


def _rmdir_empty(dirs: dict[str, str]) -> dict[str, str]:
    """rmdir(2) each of a cgroup's directories; those that stay (and exist). The kernel removes
    only an empty cgroup (EBUSY while a process or a child cgroup is in it), so a container
    that has ended goes with one rmdir a hierarchy, without the cgroup managers and their
    imports (a few ms of every `pycontain-oci delete`)."""
    left = {}
    for kind, path in dirs.items():
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError:
            left[kind] = path
    return left


def remove_files(container_id: str, name: str | None, path: str | None = None) -> None:
    """Remove the run directory (or `path`, the one `create` was making) and the name; what
    is gone already is no error."""
    path = path or directory(container_id)
    for entry in (*LOGS.values(), STATE_FILE, LOCK_FILE):
        try:
            os.unlink(os.path.join(path, entry))
        except FileNotFoundError:
            pass
    try:
        for stray in os.listdir(path):  # a temporary of a writer killed before its rename
            os.unlink(os.path.join(path, stray))
        os.rmdir(path)
    except FileNotFoundError:  # removed meanwhile (the supervisor of a --rm container)
        pass
    if name is not None:
        link = os.path.join(root(), NAMES, name)
        try:
            if os.readlink(link) == container_id:
                os.unlink(link)
        except FileNotFoundError:
            pass


def kill(record: Record) -> None:
    """SIGKILL the supervisor, then the container: nobody is left to write the state."""
    send_signal(record.get("supervisor"), signal.SIGKILL)
    wait_gone(record.get("supervisor"), 5.0)
    send_signal(record.get("container"), signal.SIGKILL)


def remove(container_id: str) -> list[str]:
    """Kill whatever still runs of the container, release its resources, remove its state."""
    try:
        record = read(container_id)
    except (FileNotFoundError, ValueError):  # a start interrupted before the first write
        record = {"id": container_id, "name": None}
    kill(record)
    faults.point("rm:killed")
    done = release(record)
    faults.point("rm:released")
    remove_files(container_id, record.get("name"))
    return done


# --- leftovers: what `pycontain cleanup` finds and removes -----------------------------------

def leftover_containers() -> list[str]:
    """Every container's run directory (and one a killed `create` was making), and names
    whose container is gone."""
    found = [os.path.join(root(), i) for i in sorted(os.listdir(root()))
             if is_id(i) or staged_id(i)] if os.path.isdir(root()) else []
    names = os.path.join(root(), NAMES)
    if os.path.isdir(names):
        found += [os.path.join(names, n) for n in sorted(os.listdir(names))
                  if os.path.islink(os.path.join(names, n))
                  and not os.path.isdir(directory(os.readlink(os.path.join(names, n))))]
    return found


def remove_container(path: str) -> None:
    """Remove one container (`remove()`), or one stale name."""
    if os.path.dirname(path) == os.path.join(root(), NAMES):
        os.unlink(path)
        return
    if os.path.dirname(path) == root() and (staging := staged_id(os.path.basename(path))):
        remove_files(staging, None, path)  # nothing was started from it
        return
    if os.path.dirname(path) != root() or not is_id(os.path.basename(path)):
        raise ValueError(errno.EINVAL, f"not a container's run directory: {path}")
    remove(os.path.basename(path))
