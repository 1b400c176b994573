"""An OCI bundle's config.json, read into a `Spec` (lesson 24).

config.json is the OCI runtime spec's description of a container: `process` (what runs, as
whom, with which capabilities and rlimits), `root`, `hostname`, `mounts`, `hooks` and `linux`
(namespaces, id mappings, cgroup resources, seccomp, masked and read-only paths, sysctls).
Nearly every field is one pycontain already knows under another name, taught by an earlier
lesson; `FIELDS` says which. A field pycontain cannot honour is refused by its JSON path
(`linux.resources.hugepageLimits`), never ignored where it would weaken the isolation the
config asks for; a field that only relaxes nothing (an `oomScoreAdj`, a console size) is let
through. Errors are `SpecError`s named by JSON path (`worded(NAMES)`).

Where pycontain is stricter than runc, it says so: it has no device cgroup, so a config that
denies devices (`linux.resources.devices`, every config podman writes) loses CAP_MKNOD rather
than keeping a power nothing would limit; mounts are made private whatever
`rootfsPropagation` asks short of shared.

See also: the OCI runtime spec's config.md and config-linux.md; runc spec.
"""

from __future__ import annotations

import os
from collections import namedtuple

from pycontain import jsonc
from pycontain.errors import SpecError
from pycontain.spec import Spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: each config.json field pycontain reads, and the lesson that taught it
FIELDS = {
    "process.args": 2, "process.env": 2, "process.cwd": 5, "process.user": 20,
    "process.capabilities": 20, "process.noNewPrivileges": 20, "process.rlimits": 24,
    "process.terminal": 22, "process.consoleSize": 22,
    "root.path": 5, "root.readonly": 5, "hostname": 2, "mounts": 5,
    "linux.namespaces": 1, "linux.uidMappings": 9, "linux.gidMappings": 9,
    "linux.resources.memory": 14, "linux.resources.pids": 13, "linux.resources.cpu": 15,
    "linux.resources.blockIO": 16, "linux.resources.devices": 20, "linux.cgroupsPath": 12,
    "linux.seccomp": 21, "linux.maskedPaths": 20, "linux.readonlyPaths": 20,
    "linux.sysctl": 24, "linux.rootfsPropagation": 4, "hooks": 24,
}
#: Spec's parameters as config.json names them, for errors (`SpecError.worded`)
NAMES = {
    "argv": "process.args", "cwd": "process.cwd", "env": "process.env", "user": "process.user",
    "capabilities": "process.capabilities", "no_new_privs": "process.noNewPrivileges",
    "rlimits": "process.rlimits", "hostname": "hostname", "rootfs": "root.path",
    "read_only": "root.readonly", "volumes": "mounts", "namespaces": "linux.namespaces",
    "join": "linux.namespaces[].path", "uid_map": "linux.uidMappings",
    "gid_map": "linux.gidMappings", "seccomp": "linux.seccomp",
    "masked_paths": "linux.maskedPaths", "readonly_paths": "linux.readonlyPaths",
    "sysctl": "linux.sysctl", "cgroup_view": "mounts (/sys/fs/cgroup)",
    "memory_max": "linux.resources.memory.limit", "memory_swap_max": "linux.resources.memory.swap",
    "pids_max": "linux.resources.pids.limit", "cpu_max": "linux.resources.cpu.quota",
    "cpu_shares": "linux.resources.cpu.shares", "cpuset_cpus": "linux.resources.cpu.cpus",
    "cpuset_mems": "linux.resources.cpu.mems",
    **{f"io_max_{k}": f"linux.resources.blockIO.throttle{d}Device" for k, d in (
        ("rbps", "ReadBps"), ("wbps", "WriteBps"), ("riops", "ReadIOPS"),
        ("wiops", "WriteIOPS"))},
}
#: namespace types as config.json spells them -> as /proc/self/ns does
NAMESPACES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
              "user": "user", "cgroup": "cgroup", "time": "time"}
#: mounts init makes itself, by destination: the types config.json may give them
OWN_MOUNTS = {"/proc": ("proc",), "/dev": ("tmpfs",), "/dev/pts": ("devpts",),
              "/dev/shm": ("tmpfs", "bind"), "/dev/mqueue": ("mqueue",), "/sys": ("sysfs",),
              "/sys/fs/cgroup": ("cgroup", "cgroup2"), "/tmp": ("tmpfs",)}
MOUNT_TYPES = ("bind", "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2")
HOOKS = ("prestart", "createRuntime", "poststart", "poststop")  # all run in the runtime's ns
ID_CHARACTERS = "A-Za-z0-9_.-"

#: `terminal`: process.terminal, a pty whose master goes to the --console-socket (lifecycle),
#: `console_size`: its (rows, columns) from process.consoleSize, or None
Config = namedtuple("Config", "spec bundle annotations hooks version terminal console_size")


def load(bundle: str) -> Config:
    """The bundle's config.json as a Config: its `spec`, `annotations`, `hooks`; SpecError
    before anything is made."""
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        raise SpecError("--bundle", "a directory holding a config.json (`runc spec` writes "
                        "one)", bundle) from None
    try:
        raw = jsonc.loads(text)
    except ValueError as e:  # json's JSONDecodeError: jsonc hands text that does not parse on
        raise SpecError("config.json", "valid JSON", f"line {e.lineno} column {e.colno}: "  # type: ignore[attr-defined]
                        f"{e.msg}") from None  # type: ignore[attr-defined]
    return translate(raw, bundle)


def _object(raw: Any, path: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError(path, "a JSON object", raw)
    return raw


def _only(raw: dict[str, Any], path: str, known: set[str] | tuple[str, ...]) -> None:
    """Refuse any field of `raw` outside `known` that is set (not null, empty or false)."""
    for key, value in raw.items():
        if key not in known and value not in (None, {}, [], "", False, 0):
            where = f"{path}.{key}" if path else key
            raise SpecError(where, "absent: pycontain does not support it", value,
                            hint="refused rather than ignored: the container would be "
                                 "isolated less than the config asks (lesson 24)")


def translate(raw: Any, bundle: str) -> Config:
    """config.json's fields (parsed JSON) -> Config; `bundle` resolves a relative root."""
    raw = _object(raw, "config.json")
    _only(raw, "", {"ociVersion", "process", "root", "hostname", "mounts", "hooks",
                    "annotations", "linux"})
    version = raw.get("ociVersion")
    if not isinstance(version, str) or not version.startswith("1."):
        raise SpecError("ociVersion", "a 1.x version of the OCI runtime spec (1.0.2, 1.1.0)",
                        version)
    linux = _object(raw.get("linux"), "linux")
    _only(linux, "linux", {"namespaces", "uidMappings", "gidMappings", "resources",
                           "cgroupsPath", "seccomp", "maskedPaths", "readonlyPaths", "sysctl",
                           "rootfsPropagation"})
    options: dict[str, Any] = {}
    process = _object(raw.get("process"), "process")
    terminal = process.get("terminal", False)
    if not isinstance(terminal, bool):
        raise SpecError("process.terminal", "true or false", terminal)
    size = _object(process.get("consoleSize"), "process.consoleSize")
    console_size = None
    if size:
        rows, columns = size.get("height"), size.get("width")
        if not all(isinstance(n, int) and 0 <= n < 1 << 16 for n in (rows, columns)):
            raise SpecError("process.consoleSize", "{\"height\": ROWS, \"width\": COLUMNS}, "
                            "each 0-65535", size)
        console_size = (rows, columns)
    options.update(_process(process))
    options.update(_namespaces(linux))
    options["rootfs"] = _root(_object(raw.get("root"), "root"), bundle, options)
    options.update(_mounts(raw.get("mounts") or [], options["namespaces"]))
    options.update(_resources(_object(linux.get("resources"), "linux.resources"), options))
    for key, name in (("maskedPaths", "masked_paths"), ("readonlyPaths", "readonly_paths"),
                      ("sysctl", "sysctl")):
        if linux.get(key):
            options[name] = linux[key]
    if linux.get("seccomp"):
        options["seccomp"] = linux["seccomp"]
    propagation = linux.get("rootfsPropagation") or "private"
    if propagation not in ("private", "rprivate", "slave", "rslave"):
        raise SpecError("linux.rootfsPropagation", "private, rprivate, slave or rslave",
                        propagation,
                        hint="pycontain makes every mount private (lesson 04): a shared root "
                             "would carry the container's mounts to the host")
    if raw.get("hostname"):
        options["hostname"] = raw["hostname"]
    hooks = _hooks(_object(raw.get("hooks"), "hooks"))
    annotations = _object(raw.get("annotations"), "annotations")
    try:
        spec = Spec(**options)
    except SpecError as e:
        e.parameter, e.accepted = NAMES.get(e.parameter, e.parameter), e.accepted
        raise
    return Config(spec, bundle, annotations, hooks, version, terminal, console_size)


def _process(process: dict[str, Any]) -> dict[str, Any]:
    _only(process, "process", {"terminal", "consoleSize", "user", "args", "env", "cwd",
                               "capabilities", "rlimits", "noNewPrivileges", "oomScoreAdj"})
    args = process.get("args")
    if not isinstance(args, list) or not args:
        raise SpecError("process.args", "a non-empty list of strings such as [\"sh\"]", args)
    env = {}
    for item in process.get("env") or []:
        name, equals, value = item.partition("=") if isinstance(item, str) else ("", "", "")
        if not equals or not name:
            raise SpecError("process.env", "strings NAME=VALUE", item)
        env[name] = value
    user = _object(process.get("user"), "process.user")
    _only(user, "process.user", {"uid", "gid", "additionalGids", "umask"})
    if user.get("umask") not in (None, 0o022):
        raise SpecError("process.user.umask", "absent or 18 (0022), the umask init keeps",
                        user["umask"])
    groups = user.get("additionalGids") or []
    ids = (user.get("uid", 0), user.get("gid", 0), *groups)
    options: dict[str, Any] = {"argv": args, "env": env, "cwd": process.get("cwd") or "/",
                               "user": ids, "no_new_privs": bool(process.get("noNewPrivileges"))}
    caps = _object(process.get("capabilities"), "process.capabilities")
    for kept_empty in ("inheritable", "ambient"):
        if caps.get(kept_empty):
            raise SpecError(f"process.capabilities.{kept_empty}", "empty: pycontain keeps no "
                            f"{kept_empty} capabilities", caps[kept_empty],
                            hint="they would carry capabilities across execve(2) to a "
                                 "non-root user (lesson 20)")
    bounding = set(caps.get("bounding") or [])
    for name in ("effective", "permitted"):
        chosen = set(caps.get(name) or [])
        if chosen - bounding or (ids[0] == 0 and chosen != bounding):
            raise SpecError(f"process.capabilities.{name}", "the bounding set (for root; for "
                            "another user a part of it)", sorted(chosen),
                            hint="pycontain keeps one set of capabilities: bounding, permitted "
                                 "and effective alike (lesson 20)")
    options["capabilities"] = sorted(bounding)
    limits = []
    for i, item in enumerate(process.get("rlimits") or []):
        item = _object(item, f"process.rlimits[{i}]")
        limits.append((item.get("type"), item.get("soft"), item.get("hard")))
    if limits:
        options["rlimits"] = limits
    return options


def _namespaces(linux: dict[str, Any]) -> dict[str, Any]:
    chosen, join = set(), {}
    for i, entry in enumerate(linux.get("namespaces") or []):
        entry = _object(entry, f"linux.namespaces[{i}]")
        kind = NAMESPACES.get(entry.get("type"))  # type: ignore[arg-type]
        if kind is None:
            raise SpecError(f"linux.namespaces[{i}].type", "one of " + ", ".join(NAMESPACES),
                            entry.get("type"))
        chosen.add(kind)
        if entry.get("path"):
            join[kind] = entry["path"]
    options: dict[str, Any] = {"namespaces": chosen, "join": join}
    maps = {}
    for key, name in (("uidMappings", "uid_map"), ("gidMappings", "gid_map")):
        lines = linux.get(key)
        if lines:
            maps[name] = [(m.get("containerID"), m.get("hostID"), m.get("size"))
                          for m in lines]
    return options | maps


def _root(root: dict[str, Any], bundle: str, options: dict[str, Any]) -> str:
    path = root.get("path")
    if not isinstance(path, str) or not path:
        raise SpecError("root.path", "the root filesystem's directory, relative to the bundle "
                        "or absolute", path)
    resolved = os.path.realpath(os.path.join(bundle, path))
    if not os.path.isabs(path) and os.path.commonpath([resolved, bundle]) != bundle:
        raise SpecError("root.path", "a directory inside the bundle when relative", path,
                        hint=f"it resolves to {resolved}, outside {bundle}")
    options["read_only"] = bool(root.get("readonly"))
    return resolved


def _mounts(mounts: list[Any], namespaces: set[str]) -> dict[str, Any]:
    volumes, view = [], False
    for i, mount in enumerate(mounts):
        mount = _object(mount, f"mounts[{i}]")
        where, given = f"mounts[{i}]", mount.get("destination")
        flags = mount.get("options") or []
        kind = "bind" if "bind" in flags or "rbind" in flags else mount.get("type") or "bind"
        if kind not in MOUNT_TYPES:
            raise SpecError(f"{where}.type", "one of " + ", ".join(MOUNT_TYPES), kind,
                            hint="pycontain makes these mounts only (lesson 05)")
        if given in OWN_MOUNTS:
            if kind not in OWN_MOUNTS[given]:
                raise SpecError(f"{where}.type", f"{' or '.join(OWN_MOUNTS[given])} at "
                                f"{given}, the mount init makes there", kind)
            if given == "/proc" and "pid" not in namespaces:
                raise SpecError(where, "a /proc mount with a pid namespace", given,
                                hint="pycontain mounts a fresh /proc for a PID namespace of "
                                     "the container's own (lesson 03)")
            view = view or given == "/sys/fs/cgroup"
        elif kind == "bind":
            volumes.append((mount.get("source"), given, "ro" in flags))
        else:
            raise SpecError(f"{where}.destination", f"a bind mount, for a {kind} mount: "
                            "pycontain makes its own only at " + ", ".join(OWN_MOUNTS), given)
    return {"volumes": volumes, "cgroup_view": view}


def _resources(resources: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    _only(resources, "linux.resources", {"memory", "cpu", "pids", "blockIO", "devices"})
    limits: dict[str, Any] = {}
    memory = _object(resources.get("memory"), "linux.resources.memory")
    _only(memory, "linux.resources.memory", {"limit", "swap"})
    limit, swap = memory.get("limit") or 0, memory.get("swap") or 0
    if limit > 0:
        limits["memory_max"] = limit
        if swap > 0:  # the OCI swap is memory + swap, v2's memory.swap.max the swap alone
            limits["memory_swap_max"] = max(swap - limit, 0)
        elif swap == -1:
            limits["memory_swap_max"] = "max"
    pids = _object(resources.get("pids"), "linux.resources.pids")
    if (pids.get("limit") or 0) > 0:
        limits["pids_max"] = pids["limit"]
    cpu = _object(resources.get("cpu"), "linux.resources.cpu")
    _only(cpu, "linux.resources.cpu", {"shares", "quota", "period", "cpus", "mems"})
    if (cpu.get("quota") or 0) > 0:
        limits["cpu_max"] = f"{cpu['quota']} {cpu.get('period') or 100000}"
    for key, name in (("shares", "cpu_shares"), ("cpus", "cpuset_cpus"),
                      ("mems", "cpuset_mems")):
        if cpu.get(key):
            limits[name] = cpu[key]
    block = _object(resources.get("blockIO"), "linux.resources.blockIO")
    keys = {f"throttle{d}Device": k for k, d in (("rbps", "ReadBps"), ("wbps", "WriteBps"),
                                                 ("riops", "ReadIOPS"), ("wiops", "WriteIOPS"))}
    _only(block, "linux.resources.blockIO", set(keys))
    for key, short in keys.items():
        devices = block.get(key) or []
        if len(devices) > 1:
            raise SpecError(f"linux.resources.blockIO.{key}", "one device", devices)
        for device in devices:
            limits[f"io_max_{short}"] = (f"/dev/block/{device.get('major')}:"
                                         f"{device.get('minor')}:{device.get('rate')}")
    if any(not rule.get("allow") for rule in resources.get("devices") or []):
        options["capabilities"] = [c for c in options.get("capabilities", [])
                                   if c != "CAP_MKNOD"]  # see the module's docstring
    return limits


def _hooks(hooks: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    _only(hooks, "hooks", HOOKS)
    checked = {}
    for kind in HOOKS:
        entries = []
        for i, hook in enumerate(hooks.get(kind) or []):
            hook = _object(hook, f"hooks.{kind}[{i}]")
            path = hook.get("path")
            if not isinstance(path, str) or not os.path.isabs(path) or not os.access(
                    path, os.X_OK):
                raise SpecError(f"hooks.{kind}[{i}].path", "an executable's absolute path",
                                path)
            entries.append({"path": path, "args": hook.get("args") or [path],
                            "env": hook.get("env") or [], "timeout": hook.get("timeout")})
        if entries:
            checked[kind] = entries
    return checked
