"""What to run and how to isolate it: `Spec`, validated on creation (lessons 02-14).

A `Spec` is the container's description: command, namespaces, hostname, root filesystem and its
layers, limits, id maps, clock offsets. Every option is checked here, in userspace, before
anything exists, and a mistake is a `SpecError` naming the parameter and the accepted form.
`runtime` turns a Spec into a running container; `init` receives it as `Spec.to_wire()`.

    >>> spec = Spec(["hostname"], namespaces={"uts"}, hostname="box-1")
    >>> sorted(spec.namespaces), spec.hostname
    (['uts'], 'box-1')
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping

from pycontain.errors import SpecError
from pycontain.fs import rootfs as rootfs_module
from pycontain.namespaces import uts

# Imported by every `pycontain run`: heavy modules are imported where they are used, and the
# wire's types exist for checkers only (annotations are never evaluated at run time, PEP 563).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypedDict

    from pycontain.cgroups.limits import Limits
    from pycontain.fs.layers import OverlayWire
    from pycontain.security.capabilities import CapabilitiesWire

    class InitSpec(TypedDict):
        """The spec as init receives it: `Spec.to_wire()`, every key present, plain values
        only (it crosses a pipe, marshalled). The runtime fills `overlay` and
        `sync_before_exec` once it has made the layer and knows its hooks."""

        argv: list[str]
        executable: str  # argv[0] found on PATH, as a path inside
        namespaces: list[str]
        hostname: str | None
        rootfs: str | None
        cwd: str
        init: bool
        read_only: bool
        root_switch: str | list[list[object]]
        env: dict[str, str]
        parent_pid: int
        time_offsets: dict[str, float]
        overlay: OverlayWire | None
        sync_before_exec: bool  # stop at "created" for the parent's hook (cgroup, network)
        trace: bool
        capabilities: CapabilitiesWire | None  # None: every capability, untouched
        no_new_privs: bool
        seccomp: bytes | None  # the filter's instructions (security.seccomp.assemble)
        masked_paths: list[str]
        readonly_paths: list[str]
        cgroup_view: dict[str, str]  # filled by the runtime: Cgroup.view() when asked for
        volumes: list[list[object]]  # [source, target, read_only] binds (fs.volumes)
        user: list[int] | None  # [uid, gid, *groups] the command runs as; None: root
        join: list[list[str]]  # [name, path]: namespaces joined by setns(2), not made
        sysctl: dict[str, str]  # namespaced kernel parameters (namespaces.sysctl)
        rlimits: list[list[int]]  # [resource, soft, hard] for setrlimit(2)
        start_fifo: int | None  # OCI: wait on this FIFO's fd before exec (runtime.spawn_forked)

#: the namespaces `init` can build so far
SUPPORTED_NAMESPACES = frozenset({"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"})
#: what a container gets unless told otherwise: cgroup and time are opt-in, as in Docker
DEFAULT_NAMESPACES = frozenset({"ipc", "mnt", "net", "pid", "uts"})


def default_environment(hostname: str | None) -> dict[str, str]:
    """The environment a command starts with when none is given (`docker run`'s, which `-e`
    adds to).

    >>> default_environment("box")  # doctest: +NORMALIZE_WHITESPACE
    {'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME': '/root',
     'HOSTNAME': 'box'}
    """
    env = {"PATH": rootfs_module.CONTAINER_PATH, "HOME": "/root"}
    if hostname:
        env["HOSTNAME"] = hostname
    return env


def _user(given: str | tuple[int, ...] | None, root: str | None,
          id_maps: tuple[tuple[tuple[int, int, int], ...], ...] | None) -> tuple[int, ...] | None:
    """Spec's `user` as (uid, gid, *groups), checked against the rootfs and the user
    namespace's map."""
    if given is None:
        return None
    from pycontain.security import identity

    if isinstance(given, tuple) and len(given) >= 2 and all(
            isinstance(i, int) and i >= 0 for i in given):
        ids = tuple(given)
    else:
        ids = identity.resolve(given, root or "/")  # type: ignore[arg-type]
    if id_maps:
        for kind, value, lines in (("uid", ids[0], id_maps[0]), ("gid", ids[1], id_maps[1])):
            if not any(inside <= value < inside + count for inside, _, count in lines):
                raise SpecError("user", f"a {kind} the user namespace maps", given,
                                hint=f"its map covers {lines}: {kind} {value} would be "
                                     "nobody (lesson 09)")
    return ids


#: setrlimit(2)'s resources by name, from <sys/resource.h> (an OCI config's `rlimits`)
RLIMITS = {"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3,
           "RLIMIT_CORE": 4, "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7,
           "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11,
           "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15}


def _rlimits(given: Collection[Any]) -> tuple[tuple[int, int, int], ...]:
    """`rlimits` as (resource, soft, hard): names from `RLIMITS`, soft <= hard.

    >>> _rlimits([("RLIMIT_NOFILE", 1024, 4096)])
    ((7, 1024, 4096),)
    """
    checked = []
    for item in given:
        if (not isinstance(item, (tuple, list)) or len(item) != 3 or item[0] not in RLIMITS
                or not all(isinstance(v, int) and v >= 0 for v in item[1:])
                or item[1] > item[2]):
            raise SpecError("rlimits", "(NAME, SOFT, HARD) triples, NAME one of RLIMIT_NOFILE, "
                            "RLIMIT_NPROC, ... and 0 <= SOFT <= HARD", item)
        checked.append((RLIMITS[item[0]], item[1], item[2]))
    return tuple(checked)


def _join(given: Mapping[str, str], chosen: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """`join`: {namespace: path} to setns(2) into, each a namespace of that type (the nsfs
    file's inode is a namespace, and ioctl NS_GET_NSTYPE names its type)."""
    from pycontain import procfs

    joined = []
    for name, path in sorted(given.items()):
        if name not in ("ipc", "net", "uts"):
            raise SpecError("join", "namespaces of type ipc, net or uts to join by path", name,
                            hint="pycontain joins only the namespaces that need no fork or "
                                 "mount of their own once joined (lesson 24)")
        found = procfs.namespace_type(path)
        if found != name:
            raise SpecError("join", f"the path of a {name} namespace (/proc/PID/ns/{name}, "
                            "/run/netns/NAME)", path,
                            hint="it is " + (f"a {found} namespace" if found else
                                             "no namespace at all") + " (lesson 24)")
        joined.append((name, path))
    unwanted = {name for name, _ in joined} - chosen
    if unwanted:
        raise SpecError("join", "namespaces among `namespaces` too", sorted(unwanted))
    return tuple(joined)


def _limits(limits: Limits | Mapping[str, Any] | None, options: dict[str, Any]) -> Limits | None:
    """Limits from `limits=` or the keyword options (memory_max=..., any field of `Limits`),
    checked against this machine's cgroups (lesson 12); None when no limit is asked for."""
    given = {k: v for k, v in options.items() if v is not None}
    if limits is None and not options:
        return None
    from pycontain.cgroups import detect
    from pycontain.cgroups.limits import FIELDS, Limits

    for name in options:
        if name not in FIELDS:
            raise TypeError(f"Spec() got an unexpected keyword argument {name!r}")
    if limits is None and not given:
        return None

    if limits is not None and given:
        raise SpecError("limits", "given either as limits=Limits(...) or as keyword options, "
                        "not both", sorted(given))
    if limits is None or isinstance(limits, Mapping):
        chosen = Limits(**(dict(limits or {}) | given))
    elif isinstance(limits, Limits):
        chosen = limits
    else:
        raise SpecError("limits", "a Limits(...) or a dict of its fields", limits)
    if chosen and os.geteuid() != 0:  # named as the caller gave them: the flag, on the CLI
        first = next(iter(given), "limits")
        raise SpecError(first, "set only when pycontain runs as root",
                        given[first] if given else chosen,
                        hint="limits need a cgroup of the container's own, and only root may "
                             "create one here: a rootless run has none (lessons 09, 12)")
    if chosen:
        chosen.check_host(detect())
    return chosen or None


def namespace_set(namespaces: Collection[str] | str | None) -> frozenset[str]:
    """The namespaces asked for, checked: `"uts,pid"` or `{"uts", "pid"}`; None: the default.

    >>> sorted(namespace_set("uts, pid"))
    ['pid', 'uts']
    """
    if namespaces is None:
        return DEFAULT_NAMESPACES
    if isinstance(namespaces, str):
        namespaces = [n for n in namespaces.replace(" ", "").split(",") if n]
    chosen = frozenset(namespaces)
    accepted = f"a subset of {{{', '.join(sorted(SUPPORTED_NAMESPACES))}}}"
    for name in sorted(chosen):
        if name not in SUPPORTED_NAMESPACES:
            raise SpecError("namespaces", accepted, name,
                            hint="namespace names are those of /proc/self/ns (lesson 01)")
    return chosen


def _time_offsets(offsets: Mapping[str, float] | None, chosen: frozenset[str]
                  ) -> dict[str, float]:
    """Check `time_offsets` (lesson 11); they need the time namespace."""
    if not offsets:
        return {}
    from pycontain.namespaces import time

    checked = time.validate_offsets(offsets)
    if "time" not in chosen:
        raise SpecError("time_offsets", "set only with 'time' among the namespaces", checked,
                        hint="the offsets belong to a time namespace; without one the container "
                             "reads the host's clocks (lesson 11)")
    return checked


def _id_maps(uid_map: Collection[Any] | None, gid_map: Collection[Any] | None,
             chosen: frozenset[str]) -> Any:
    """Check the user namespace's maps (lesson 09); None without a user namespace."""
    if "user" not in chosen:
        for name, given in (("uid_map", uid_map), ("gid_map", gid_map)):
            if given is not None:
                raise SpecError(name, "set only with 'user' among the namespaces", given,
                                hint="the maps belong to a user namespace (lesson 09)")
        return None
    from pycontain.namespaces import user

    if os.geteuid() != 0:  # rootless: only the caller's own ids, one line each
        from pycontain.namespaces import rootless

        uids, gids = rootless.own_maps(uid_map, gid_map)
        return tuple(tuple(m) for m in uids), tuple(tuple(m) for m in gids)
    uids = user.validate_map("uid_map", user.DEFAULT_MAP if uid_map is None else uid_map)
    gids = uids if gid_map is None else user.validate_map("gid_map", gid_map)
    return tuple(tuple(m) for m in uids), tuple(tuple(m) for m in gids)


def _writable_layer(overlay: object, layers: object, root: str | None
                    ) -> tuple[bool | str, tuple[str, ...]]:
    """Check `overlay` and `layers` (lesson 06); return them as a Spec keeps them."""
    if overlay is False and not layers:
        return False, ()
    from pycontain.fs import layers as layers_module

    overlay = layers_module.validate_overlay(overlay)
    if overlay is not False and root is None:
        raise SpecError("overlay", "used only with a rootfs", overlay,
                        hint="the writable layer goes on top of the rootfs, the image "
                             "(lesson 06)")
    lowers = layers_module.validate_lowers(layers)  # type: ignore[arg-type]
    if lowers and overlay is False:
        raise SpecError("layers", "used only with overlay=True or an overlay directory",
                        lowers, hint="overlayfs stacks the layers under a writable layer "
                                     "(lesson 06)")
    return overlay, tuple(lowers)


class Spec:
    """What to run and how to isolate it. Validated on creation: bad input never reaches init.

    Args:
        argv: the command and its arguments; `argv[0]` becomes the container's first process.
        namespaces: namespace names (`{"uts"}` or `"uts,pid"`); default: all supported so far.
        hostname: the container's hostname; needs the uts namespace.
        rootfs: a directory to make the container's `/`; needs the mnt namespace. Without it
            the container keeps the host's filesystem view.
        env: the command's environment; default: PATH, HOME and HOSTNAME only.
        cwd: working directory inside the container.
        user: who the command runs as: "UID[:GID]", a name[:group] the rootfs's /etc/passwd
            knows, or (uid, gid, *supplementary_gids); default root (`docker run -u`;
            security.identity).
        join: {namespace: path} of existing ipc, net or uts namespaces to join with setns(2)
            instead of making new ones (an OCI config's namespace `path`, lesson 24).
        sysctl: namespaced kernel parameters to set inside, `{"net.ipv4.ip_forward": "1"}`
            (`docker run --sysctl`; namespaces.sysctl, lesson 24).
        rlimits: (NAME, SOFT, HARD) resource limits, `[("RLIMIT_NOFILE", 1024, 1024)]`
            (`docker run --ulimit`; setrlimit(2), lesson 24).
        volumes: bind mounts of host paths, `["/srv/data:/data:ro"]` (`docker run -v`;
            fs.volumes): the host path absolute and existing, the container path absolute,
            inside the rootfs, not over /proc, /sys or /dev. Need a rootfs.
        init: put a minimal init in front of the command, like `docker run --init`: PID 1 then
            reaps orphans and forwards signals, and the command runs as PID 2; needs pid.
        read_only: make the rootfs read-only, like `docker run --read-only` (/tmp stays
            writable); needs rootfs.
        root_switch: how the rootfs becomes `/`: "pivot_root" (always, except in lesson 05),
            "chroot" (only to show why not), or calls recorded by `rootfs.record()`.
        overlay: give the container a writable layer over its rootfs, so that it never changes
            the image (lesson 06): True for a throw-away one in a `/tmp/pycontain-layer-…` dir,
            removed when the container is waited for; or a directory that keeps it (`upper/`,
            `work/`) for the caller. Needs rootfs.
        layers: read-only directories stacked above the rootfs, topmost first (overlay lower
            dirs, lesson 06). Needs overlay.
        limits: resource limits, `Limits(memory_max="64M", pids_max=20)` (lessons 12-14); the
            container then runs in a `pycontain-…` cgroup of its own, removed when it is
            waited for. Or give its fields as keyword options: `memory_max="64M"`,
            `pids_max=20`, every field the controllers declare (`cgroups.limits.FIELDS`).
        user_namespace: add the user namespace (lesson 09): root inside is an unprivileged
            uid outside; the same as "user" among the namespaces.
        uid_map, gid_map: `[(inside, outside, count)]` lines for the user namespace, written
            by this process before the container goes on; default: `[(0, 100000, 65536)]`,
            and gid_map defaults to uid_map. Need the user namespace.
        time_offsets: shift the container's clocks, `{"boottime": 86400}` for a container
            that booted a day ago (lesson 11): seconds for "monotonic" and "boottime", at most
            ten years either way; needs the time namespace. The wall clock is never shifted.
        time_namespace: add the time namespace (lesson 11) to the others; the same as "time"
            among the namespaces.
        network: "none" (the default with 'net' among the namespaces: its own network
            namespace, only `lo`, down), "bridge" (eth0 on the pycontain-br0 bridge, with an
            address, a default route and outbound NAT) or "host" (the host's network, no net
            namespace); lesson 08.
        publish: host ports forwarded to the container, `["8080:80", (5353, 53, "udp")]`
            (DNAT, like `docker run -p`); needs network="bridge".
        subnet: the bridge's private IPv4 subnet (default $PYCONTAIN_SUBNET or 10.207.0.0/24);
            refused when a route of the host overlaps it. Needs network="bridge".
        egress_rate, ingress_rate: shape what the container sends and receives to a rate in
            tc's units, `"10mbit"` (a tbf on its veth, egress through an IFB; lesson 17).
            Need network="bridge".
        trace: print to the container's stderr each step init takes and each system call it
            makes, with its arguments, result and time, and the lesson that explains it
            (`pycontain run --trace`; lesson 02).
        capabilities: the capabilities the container keeps, names such as "CHOWN" or
            "CAP_NET_RAW" (any case, or "ALL"), in its bounding, permitted and effective sets;
            none inheritable or ambient (lesson 20). Default None: every capability this
            process has, as the lessons build containers piece by piece with root's powers.
            `pycontain run` keeps Docker's default set instead (`security.capabilities.DEFAULT`).
        no_new_privs: set PR_SET_NO_NEW_PRIVS, so that no setuid program or file capability
            inside grants more (lesson 20); default False here, on in `pycontain run`.
        seccomp: a filter on the container's system calls (lesson 21): "default"
            (`security.seccomp.DEFAULT`: what Docker's default profile denies fails with
            EPERM), a profile in Docker's JSON format (a dict, the JSON text or a file's path),
            or None / "unconfined" (no filter, the default here; `pycontain run` uses
            "default").
    """

    __slots__ = ("argv", "namespaces", "hostname", "rootfs", "env", "cwd", "init", "read_only",
                 "root_switch", "overlay", "layers", "limits", "time_offsets", "id_maps",
                 "network", "publish", "subnet", "rates", "trace", "capabilities",
                 "no_new_privs", "seccomp", "masked_paths", "readonly_paths", "cgroup_view",
                 "volumes", "user", "join", "sysctl", "rlimits", "executable")
    argv: tuple[str, ...]
    namespaces: frozenset[str]
    hostname: str | None
    rootfs: str | None
    env: Mapping[str, str] | None
    cwd: str
    init: bool
    read_only: bool
    root_switch: str | list[list[object]]
    overlay: bool | str
    layers: tuple[str, ...]
    limits: Limits | None
    time_offsets: dict[str, float]
    id_maps: tuple[tuple[tuple[int, int, int], ...], tuple[tuple[int, int, int], ...]] | None
    network: str | None
    publish: tuple[tuple[int, int, str], ...]
    subnet: str | None
    rates: tuple[int | None, int | None]  # egress, ingress in bits per second (lesson 17)
    trace: bool
    capabilities: frozenset[str] | None
    no_new_privs: bool
    seccomp: bytes | None
    masked_paths: tuple[str, ...]
    readonly_paths: tuple[str, ...]
    cgroup_view: bool
    volumes: tuple[tuple[str, str, bool], ...]
    user: tuple[int, ...] | None
    join: tuple[tuple[str, str], ...]
    sysctl: dict[str, str]
    rlimits: tuple[tuple[int, int, int], ...]
    executable: str

    def __init__(self, argv: Collection[str], *, namespaces: Collection[str] | str | None = None,
                 hostname: str | None = None, rootfs: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None, cwd: str = "/",
                 init: bool = False, read_only: bool = False,
                 root_switch: str | Collection[Any] = "pivot_root",
                 overlay: bool | str | os.PathLike[str] = False,
                 layers: Collection[str | os.PathLike[str]] = (),
                 limits: Limits | Mapping[str, Any] | None = None,
                 time_offsets: Mapping[str, float] | None = None, time_namespace: bool = False,
                 user_namespace: bool = False, uid_map: Collection[Any] | None = None,
                 gid_map: Collection[Any] | None = None, network: str | None = None,
                 publish: Collection[Any] = (), subnet: str | None = None,
                 egress_rate: str | None = None, ingress_rate: str | None = None,
                 trace: bool = False, capabilities: Collection[str] | str | None = None,
                 no_new_privs: bool = False, seccomp: object = None,
                 masked_paths: Collection[str] = (), readonly_paths: Collection[str] = (),
                 cgroup_view: bool = False, volumes: Collection[Any] = (),
                 user: str | tuple[int, ...] | None = None,
                 join: Mapping[str, str] | None = None, sysctl: Mapping[str, str] | None = None,
                 rlimits: Collection[Any] = (),
                 **limit_fields: str | float | None) -> None:
        if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
            raise SpecError("argv", "a non-empty list of strings such as ['hostname']", argv)
        chosen = namespace_set(namespaces)
        ports: tuple[tuple[int, int, str], ...] = ()
        rates: tuple[int | None, int | None] = (None, None)
        if (network is not None or publish or subnet is not None  # lesson 08; else stay cheap
                or egress_rate is not None or ingress_rate is not None):
            from pycontain.network import options

            chosen, network, ports, subnet = options.validate(network, publish, subnet, chosen,
                                                              namespaces is not None)
            rates = options.validate_rates(network, egress_rate, ingress_rate)
        for name, wanted, kind in (("user_namespace", user_namespace, "user"),
                                   ("time_namespace", time_namespace, "time")):
            if not isinstance(wanted, bool):
                raise SpecError(name, "True or False", wanted)
            if wanted:
                chosen |= {kind}
        id_maps = _id_maps(uid_map, gid_map, chosen)
        if hostname is not None:
            uts.validate_hostname(hostname)
            if "uts" not in chosen:
                raise SpecError("hostname", "set only with 'uts' among the namespaces", hostname,
                                needs=("namespaces", "uts"),
                                hint="without its own UTS namespace the container would "
                                     "rename the host (lesson 02)")
        if not isinstance(init, bool):
            raise SpecError("init", "True or False", init)
        if init and "pid" not in chosen:
            raise SpecError("init", "used only with 'pid' among the namespaces", init,
                            needs=("namespaces", "pid"),
                            hint="a process is PID 1, with PID 1's duties, only in a new PID "
                                 "namespace (lesson 03)")
        root = None
        if rootfs is not None:
            if "mnt" not in chosen:
                raise SpecError("rootfs", "used only with 'mnt' among the namespaces",
                                str(rootfs), needs=("namespaces", "mnt"),
                                hint="changing the root needs a private mount "
                                                  "namespace (lesson 05)")
            root = rootfs_module.validate(os.fspath(rootfs))
        if root is not None and "user" in chosen and "net" not in chosen:
            raise SpecError("namespaces", "a set with 'net' in it, when it has 'user' and a rootfs",
                            ",".join(sorted(chosen)),
                            hint="in a user namespace the host's /sys cannot be bound alone, "
                                 "and a fresh sysfs needs a network namespace of its own: "
                                 "add 'net' (lesson 09)")
        switch = rootfs_module.validate_switch(root_switch)
        for name, flag in (("read_only", read_only), ("trace", trace),
                           ("no_new_privs", no_new_privs), ("cgroup_view", cgroup_view)):
            if not isinstance(flag, bool):
                raise SpecError(name, "True or False", flag)
        for name, value, given in (("read_only", read_only, read_only),
                                   ("root_switch", switch != "pivot_root", root_switch),
                                   ("cgroup_view", cgroup_view, cgroup_view)):
            if value and root is None:
                raise SpecError(name, "used only with a rootfs", given, needs=("rootfs", None),
                                hint="it changes how the rootfs is entered (lesson 05)")
        offsets = _time_offsets(time_offsets, chosen)
        hidden: tuple[str, ...] = ()
        frozen: tuple[str, ...] = ()
        if masked_paths or readonly_paths:  # lesson 20; else stay cheap
            from pycontain.security import paths

            hidden = paths.validate("masked_paths", masked_paths)
            frozen = paths.validate("readonly_paths", readonly_paths)
            if "mnt" not in chosen:
                raise SpecError("masked_paths" if hidden else "readonly_paths",
                                "set only with 'mnt' among the namespaces", hidden or frozen,
                                needs=("namespaces", "mnt"),
                                hint="the masks are mounts, made in the container's own mount "
                                     "namespace; without one they would cover the host's "
                                     "files (lesson 20)")
        kept = None
        if capabilities is not None:  # lesson 20; else stay cheap
            from pycontain.security import capabilities as capabilities_module

            kept = capabilities_module.validate(capabilities, "user" in chosen)
        program = None
        if seccomp == "default":  # lesson 21: the same bytes every time, compiled once
            from pycontain.security import compiled

            program = compiled.default_filter(kept)
        elif seccomp is not None:
            from pycontain.security import seccomp as seccomp_module

            program = seccomp_module.choose(seccomp, kept)
        binds: tuple[tuple[str, str, bool], ...] = ()
        if volumes:  # else stay cheap
            from pycontain.fs import volumes as volumes_module

            binds = tuple(tuple(v) for v in volumes_module.validate(volumes, root))  # type: ignore[misc]
        ids = _user(user, root, id_maps)
        joined = _join(join, chosen) if join else ()
        parameters: dict[str, str] = {}
        if sysctl:  # lesson 24; else stay cheap
            from pycontain.namespaces import sysctl as sysctl_module

            parameters = sysctl_module.validate(sysctl, chosen)
        limited = _rlimits(rlimits) if rlimits else ()
        search = (env or {}).get("PATH", rootfs_module.CONTAINER_PATH)
        overlay, lowers = _writable_layer(overlay, layers, root)
        chosen_limits = _limits(limits, limit_fields)
        if lowers and root:  # the command may come from any layer
            from pycontain.fs import layers as layers_module

            executable = layers_module.resolve_command(list(argv)[0], [*lowers, root], search)
        else:
            executable = rootfs_module.resolve_command(list(argv)[0], root, search)
        set_ = object.__setattr__
        set_(self, "argv", tuple(argv))
        set_(self, "namespaces", chosen)
        set_(self, "hostname", hostname)
        set_(self, "rootfs", root)
        set_(self, "env", dict(env) if env is not None else None)
        set_(self, "cwd", cwd)
        set_(self, "init", init)
        set_(self, "read_only", read_only)
        set_(self, "root_switch", switch)
        set_(self, "overlay", overlay)
        set_(self, "layers", lowers)
        set_(self, "limits", chosen_limits)
        set_(self, "time_offsets", offsets)
        set_(self, "id_maps", id_maps)
        set_(self, "network", network)  # None: as the namespaces say ("none" with net)
        set_(self, "publish", ports)
        set_(self, "subnet", subnet)
        set_(self, "rates", rates)
        set_(self, "trace", trace)
        set_(self, "capabilities", kept)
        set_(self, "no_new_privs", no_new_privs)
        set_(self, "seccomp", program)
        set_(self, "masked_paths", hidden)
        set_(self, "readonly_paths", frozen)
        set_(self, "cgroup_view", cgroup_view)
        set_(self, "volumes", binds)
        set_(self, "user", ids)
        set_(self, "join", joined)
        set_(self, "sysctl", parameters)
        set_(self, "rlimits", limited)
        set_(self, "executable", executable)  # argv[0] found on PATH, as a path inside

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Spec is read-only; make a new one to change `{name}`")

    def __eq__(self, other: object) -> bool:
        return type(other) is Spec and all(
            getattr(self, f) == getattr(other, f) for f in self.__slots__)

    def __hash__(self) -> int:
        return hash((self.argv, self.namespaces, self.hostname, self.rootfs, self.cwd))

    def __repr__(self) -> str:
        def value(f: str) -> str:  # a filter by its length: its bytes say nothing to a reader
            given = getattr(self, f)
            return f"<{len(given) // 8} instructions>" if f == "seccomp" else repr(given)

        shown = ", ".join(f"{f}={value(f)}" for f in self.__slots__[:-1]
                          if f == "argv"
                          or getattr(self, f) not in (None, "/", False, "pivot_root", (), {},
                                                      (None, None)))
        return f"Spec({shown})"

    def environment(self) -> dict[str, str]:
        """The environment the command starts with."""
        if self.env is not None:
            return dict(self.env)
        return default_environment(self.hostname)

    def to_wire(self) -> InitSpec:
        """What init receives (`init.setup`): every key present, so init never guesses."""
        return {"argv": list(self.argv), "executable": self.executable,
                "namespaces": sorted(self.namespaces), "hostname": self.hostname,
                "rootfs": self.rootfs, "cwd": self.cwd, "init": self.init,
                "read_only": self.read_only, "root_switch": self.root_switch,
                "env": self.environment(), "parent_pid": os.getpid(),
                "time_offsets": dict(self.time_offsets), "overlay": None,
                "sync_before_exec": False, "trace": self.trace,
                "capabilities": self._capabilities_wire(), "no_new_privs": self.no_new_privs,
                "seccomp": self.seccomp, "masked_paths": list(self.masked_paths),
                "readonly_paths": list(self.readonly_paths), "cgroup_view": {},
                "volumes": [list(v) for v in self.volumes],
                "user": None if self.user is None else list(self.user),
                "join": [list(j) for j in self.join], "sysctl": dict(self.sysctl),
                "rlimits": [list(r) for r in self.rlimits], "start_fifo": None}

    def _capabilities_wire(self) -> CapabilitiesWire | None:
        if self.capabilities is None:
            return None
        from pycontain.security import capabilities

        return capabilities.wire(self.capabilities)
