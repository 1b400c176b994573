"""init builds a container in the order the kernel requires (recorded, no root, no kernel).

The rules (docs/DESIGN.md, "The process model") are checked for every set of namespaces init
supports, with and without a hostname, a rootfs, clock offsets, `--init` and the parent's
"created" step, on the calls and messages of one timeline.
"""

from __future__ import annotations

import errno
import itertools
import os

import pytest

from pycontain import init, syscalls
from pycontain.errors import SyscallError
from pycontain.spec import SUPPORTED_NAMESPACES
from pycontain.syscalls import (
    NAMESPACE_FLAGS,
    CapAmbient,
    CloneFlag,
    MountFlag,
    PrctlOption,
    UmountFlag,
)
from pycontain.testing import init_spec, recorded


class Quiet(init.Channel):
    """A channel that writes what init reports into the kernel's timeline, and answers go."""

    def __init__(self, kernel=None) -> None:
        super().__init__(-1, -1)
        self.sent: list[dict[str, object]] = []
        self.kernel = kernel

    def send(self, **message: object) -> None:
        self.sent.append(message)
        if self.kernel is not None:
            self.kernel.calls.append(("message", (message,)))

    def receive(self) -> dict[str, object]:
        return {"go": True}


def spec(**changes: object) -> dict[str, object]:
    return init_spec(**{"namespaces": ["ipc", "mnt", "uts"], "hostname": "box", **changes})


def test_unshare_first_then_private_mounts_then_hostname_then_cwd_then_exec():
    with recorded() as kernel:
        init.setup(spec(), Quiet())
    assert kernel.calls[:5] == [
        ("prctl", (syscalls.PrctlOption.PR_SET_PDEATHSIG, 9, 0)),
        ("unshare", (CloneFlag.CLONE_NEWNS | CloneFlag.CLONE_NEWUTS | CloneFlag.CLONE_NEWIPC,)),
        ("mount", (None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE, None)),
        ("sethostname", ("box",)),
        ("chdir", ("/",)),
    ]
    assert kernel.names()[5:] == ["sigaction", "sigaction", "close_range", "close_range",
                                  "execve"]
    assert kernel.calls[-1] == ("execve", ("/bin/sh", ["sh"], {}))


def test_rootfs_is_bound_mounted_then_pivoted_and_the_old_root_detached(tmp_path):
    with recorded() as kernel:
        init.setup(spec(namespaces=["mnt"], hostname=None, rootfs=str(tmp_path)), Quiet())
    names = kernel.names()
    assert names[:4] == ["prctl", "unshare", "mount", "mount"]  # private first, then the bind
    assert kernel.calls[3] == ("mount", (str(tmp_path), str(tmp_path), None,
                                         MountFlag.MS_BIND | MountFlag.MS_REC, None))
    pivot = names.index("pivot_root")
    assert kernel.calls[pivot - 1:pivot + 3] == [
        ("chdir", (str(tmp_path),)), ("pivot_root", (".", ".")),
        ("umount2", (".", UmountFlag.MNT_DETACH)), ("chdir", ("/",))]
    assert names[pivot + 3] == "chdir"  # then the spec's cwd, inside the new root
    assert ("mount", ("proc", f"{tmp_path}/proc", "proc",
                      MountFlag.MS_NOSUID | MountFlag.MS_NODEV | MountFlag.MS_NOEXEC, None)) \
        not in kernel.calls  # no PID namespace asked for: the host's /proc would be wrong


def test_without_a_mount_namespace_nothing_is_mounted():
    with recorded() as kernel:
        init.setup(spec(namespaces=["uts"]), Quiet())
    assert "mount" not in kernel.names()


def test_a_failing_call_stops_setup_with_a_note():
    with recorded(fail={"unshare": errno.EPERM}) as kernel, pytest.raises(SyscallError) as info:
        init.setup(spec(), Quiet())
    assert kernel.names() == ["prctl", "unshare"]  # nothing after the failure
    assert info.value.__notes__ == ["while creating the namespaces ipc, mnt, uts"]


def test_the_real_kernel_is_back_after_recording():
    with recorded():
        pass
    assert syscalls.unshare.__self__ is syscalls.LINUX  # type: ignore[attr-defined]


def test_each_step_names_a_lesson_and_the_list_ends_with_exec():
    names = [step.__name__ for step, _ in init.STEPS]
    assert names[0] == "die_with_parent" and names[-2:] == ["become_init", "execute"]
    assert len(set(names)) == len(names)
    assert all(isinstance(lesson, int) and 2 <= lesson <= 24 for _, lesson in init.STEPS)
    for step, _ in init.STEPS:  # module-level, each shown with its own docstring
        assert getattr(init, step.__name__) is step and step.__doc__


# --- the order rules, for every namespace set ---------------------------------------------------

SETS = [sorted(chosen) for size in range(len(SUPPORTED_NAMESPACES) + 1)
        for chosen in itertools.combinations(sorted(SUPPORTED_NAMESPACES), size)]


def variants(names: list[str], tmp_path) -> list[dict[str, object]]:
    """The specs worth trying for `names`: each option that the namespaces allow, then all.
    A recorded rootfs.enter still makes its directories, so each rootfs is a fresh one."""
    options: dict[str, object] = {"sync_before_exec": True, "no_new_privs": True,
                                  "capabilities": {"keep": KEPT, "last_cap": 40},
                                  "seccomp": FILTER, "user": [1000, 1000]}
    if "uts" in names:
        options["hostname"] = "box"
    if "mnt" in names:
        options["rootfs"] = "ROOT"
        options["volumes"] = [["/srv", "/data", True]]
        options["masked_paths"] = ["/proc/keys", "/sys/firmware", "/proc/no-such-file"]
        options["readonly_paths"] = ["/proc/sys"]
    if "time" in names:
        options["time_offsets"] = {"boottime": 86400.0}
    if "pid" in names:
        options["init"] = True
    chosen = [{}] + [{key: value} for key, value in options.items()] + [options]
    specs = []
    for n, changes in enumerate(chosen):
        if changes.get("rootfs"):
            (tmp_path / str(n)).mkdir()
            changes = {**changes, "rootfs": str(tmp_path / str(n))}
        specs.append(init_spec(namespaces=names, cwd="/srv", **changes))
    return specs


#: the capabilities the variants keep: CAP_CHOWN, CAP_SETPCAP, CAP_NET_RAW
KEPT = [0, 8, 13]
#: a filter as init receives it: one instruction, "allow" (lesson 21)
FILTER = bytes.fromhex("060000000000ff7f")


def timeline(wire: dict[str, object]) -> list[tuple[str, tuple[object, ...]]]:
    with recorded() as kernel:
        init.setup(wire, Quiet(kernel))
    return kernel.calls


def unshared(flags: object) -> CloneFlag:
    return CloneFlag(flags)  # type: ignore[arg-type]


def where(calls, name, test=lambda args: True) -> list[int]:
    return [i for i, (call, args) in enumerate(calls) if call == name and test(args)]


def check_order(wire: dict[str, object], calls: list[tuple[str, tuple[object, ...]]]) -> None:
    names: list[str] = wire["namespaces"]  # type: ignore[assignment]
    rest = CloneFlag(0)
    for name in names:
        if name not in ("user", "cgroup"):
            rest |= NAMESPACE_FLAGS[name]
    unshares = [unshared(args[0]) for call, args in calls if call == "unshare"]
    expected = ([CloneFlag.CLONE_NEWUSER] if "user" in names else []) + ([rest] if rest else []) \
        + ([CloneFlag.CLONE_NEWCGROUP] if "cgroup" in names else [])
    assert unshares == expected  # the user namespace alone first, the cgroup one alone last
    first_unshare = where(calls, "unshare")[0] if unshares else len(calls)
    if "user" in names:
        userns = where(calls, "message", lambda a: a[0].get("sync") == "userns")
        assert len(userns) == 1 and userns[0] == first_unshare + 1  # maps before anything else
        assert calls[userns[0] + 1:userns[0] + 3] == [("setresgid", (0, 0, 0)),
                                                     ("setresuid", (0, 0, 0))]
        if os.geteuid() == 0:
            assert [i for i in where(calls, "setgroups") if i < first_unshare] == [
                    first_unshare - 1]
    mounts = where(calls, "mount")
    if "mnt" in names:
        private = where(calls, "mount", lambda a: a[1] == "/" and a[3] == MountFlag.MS_REC
                        | MountFlag.MS_PRIVATE)
        assert mounts[0] == private[0]  # every mount private before the first mount
        assert mounts[0] > where(calls, "unshare", lambda a: a[0] & CloneFlag.CLONE_NEWNS)[0]
    else:
        assert mounts == [] and "pivot_root" not in [c for c, _ in calls]
    pivots = where(calls, "pivot_root")
    assert len(pivots) == (1 if wire["rootfs"] else 0)
    for pivot in pivots:  # then the old root detached at once
        assert calls[pivot + 1] == ("umount2", (".", UmountFlag.MNT_DETACH))
    forks = where(calls, "fork")
    assert len(forks) == ("pid" in names or "time" in names) + bool(wire["init"])
    offsets = where(calls, "openat", lambda a: a[1] == "/proc/self/timens_offsets")
    if wire["time_offsets"]:  # written before the first child enters the time namespace
        time_unshare = where(calls, "unshare", lambda a: a[0] & CloneFlag.CLONE_NEWTIME)[0]
        assert len(offsets) == 1 and time_unshare < offsets[0] < forks[0]
    else:
        assert offsets == []
    if forks:  # the container is the child: everything it mounts, it mounts in its namespaces
        assert all(m > forks[0] for m in mounts[1:])
        assert all(s > forks[0] for s in where(calls, "sethostname"))
    hostnames = where(calls, "sethostname")
    assert len(hostnames) == (1 if wire["hostname"] else 0)
    for index in hostnames:
        assert index > where(calls, "unshare", lambda a: a[0] & CloneFlag.CLONE_NEWUTS)[0]
    created = where(calls, "message", lambda a: a[0].get("sync") == "created")
    assert len(created) == (1 if wire["sync_before_exec"] else 0)
    cgroup = where(calls, "unshare", lambda a: a[0] == CloneFlag.CLONE_NEWCGROUP)
    if created and cgroup:  # placed in its cgroup before that cgroup becomes its root
        assert created[0] < cgroup[0]
    if created and pivots:
        assert pivots[0] < created[0]
    masked: list[str] = wire["masked_paths"]  # type: ignore[assignment]
    frozen: list[str] = wire["readonly_paths"]  # type: ignore[assignment]
    masks = where(calls, "mount", lambda a: a[1] in masked)
    binds = where(calls, "mount", lambda a: a[1] in frozen)
    # lesson 20: each existing path once (a read-only one: a bind, then its remount), on the
    # /proc the container sees, inside its root, before the parent's hooks and the exec
    assert len(masks) == len([p for p in masked if os.path.lexists(p)])
    assert len(binds) == 2 * len(frozen)
    for index in binds[::2]:
        assert calls[index + 1][0] == "mount" and calls[index + 1][1][1] == calls[index][1][1]
        assert calls[index + 1][1][3] & MountFlag.MS_RDONLY
    if masks or binds:
        procs = where(calls, "mount", lambda a: a[2] == "proc")
        assert min(masks + binds) > max([*pivots, *procs, -1])
        assert max(masks + binds) < min([*created, len(calls)])
        assert max(binds, default=-1) < min(masks, default=len(calls))  # runc: read-only first
    pids = where(calls, "message", lambda a: "pid" in a[0])
    if "pid" in names or "time" in names:
        assert pids == []  # the outer half reports the child's PID; recorded, we are the child
    else:  # the parent knows whom to place before it is asked to
        assert len(pids) == 1 and all(pids[0] < c for c in created)
    execve = where(calls, "execve")
    assert execve == [len(calls) - 1]  # the exec ends it, after everything else
    chdirs = where(calls, "chdir", lambda a: a[0] == "/srv")
    assert chdirs and chdirs[-1] > max([*cgroup, *created, *pivots, *hostnames, -1])
    if wire["init"]:
        assert forks[-1] > chdirs[-1]  # PID 1 stays, the command forks off as PID 2
    assert where(calls, "close_range")[-1] == len(calls) - 2
    check_security_order(wire, calls, max([*chdirs, *created, *pivots, *cgroup, *hostnames]))


def check_security_order(wire: dict[str, object], calls: list[tuple[str, tuple[object, ...]]],
                         last_setup: int) -> None:
    """Lesson 20, last before the exec: the bounding set first, then `-u`'s change of user
    (with keep-caps, so that capset may still choose the sets), then capset and the ambient
    set, then no_new_privs; no other change of uid after them, and `--init`'s PID 1 forks
    only after them, keeping no more than the command."""
    drops = where(calls, "prctl", lambda a: a[0] == PrctlOption.PR_CAPBSET_DROP)
    capsets = where(calls, "capset")
    ambient = where(calls, "prctl", lambda a: a[0] == PrctlOption.PR_CAP_AMBIENT)
    no_new_privs = where(calls, "prctl", lambda a: a[0] == PrctlOption.PR_SET_NO_NEW_PRIVS)
    chosen = wire["capabilities"]
    if chosen is None:
        assert drops == capsets == ambient == []
    else:
        kept = chosen["keep"]  # type: ignore[index]
        assert [calls[i][1][1] for i in drops] == [n for n in range(41) if n not in kept]
        mask = sum(1 << n for n in kept)
        assert [calls[i][1] for i in capsets] == [(mask, mask, 0)]
        assert [calls[i][1] for i in ambient] == [(PrctlOption.PR_CAP_AMBIENT,
                                                   CapAmbient.PR_CAP_AMBIENT_CLEAR_ALL, 0)]
        assert last_setup < drops[0] and drops[-1] < capsets[0] < ambient[0]
        assert drops == list(range(drops[0], drops[-1] + 1))  # nothing in between
        to_root = where(calls, "setresuid", lambda a: a == (0, 0, 0)) + where(
            calls, "setresgid", lambda a: a == (0, 0, 0))
        assert all(change < drops[0] for change in to_root)
        to_user = where(calls, "setresuid", lambda a: a != (0, 0, 0))
        if wire["user"] is None:
            assert to_user == []
        else:
            keepcaps = where(calls, "prctl", lambda a: a[0] == PrctlOption.PR_SET_KEEPCAPS)
            uid, gid = wire["user"]  # type: ignore[misc]
            assert [calls[i][1] for i in to_user] == [(uid, uid, uid)]
            group = where(calls, "setresgid", lambda a: a == (gid, gid, gid))
            assert drops[-1] < keepcaps[0] < group[0] < to_user[0] < capsets[0]
        dumpable = where(calls, "prctl", lambda a: a[0] == PrctlOption.PR_SET_DUMPABLE)
        assert all(i < drops[0] for i in dumpable)
    if wire["no_new_privs"]:
        assert [calls[i][1] for i in no_new_privs] == [(PrctlOption.PR_SET_NO_NEW_PRIVS, 1, 0)]
        assert all(no_new_privs[0] > i for i in [*drops, *capsets, *ambient, last_setup])
    else:
        assert no_new_privs == []
    filters = where(calls, "seccomp")
    if wire["seccomp"] is None:
        assert filters == []
    elif wire["no_new_privs"]:  # lesson 21: the filter last, after no_new_privs
        assert [calls[i][1] for i in filters] == [(1, 0, wire["seccomp"])]
        assert all(filters[0] > i for i in [*drops, *capsets, *ambient, *no_new_privs,
                                            last_setup])
    else:  # without no_new_privs, while CAP_SYS_ADMIN is held: before the capabilities
        assert [calls[i][1] for i in filters] == [(1, 0, wire["seccomp"])]
        assert last_setup < filters[0] and all(filters[0] < i for i in [*drops, *capsets])
    security = [*drops, *capsets, *ambient, *no_new_privs, *filters]
    if security:
        forks = where(calls, "fork")
        if wire["init"]:
            assert forks[-1] > max(security)
        assert max(security) < where(calls, "sigaction")[0]  # then only the exec's own calls


@pytest.mark.parametrize("names", SETS, ids=lambda n: ",".join(n) or "none")
def test_the_order_holds_for_every_namespace_set(names, tmp_path):
    for wire in variants(names, tmp_path):
        check_order(wire, timeline(wire))


def test_without_capabilities_or_no_new_privs_nothing_is_dropped():
    calls = timeline(init_spec(namespaces=["uts", "pid"], hostname="box"))
    assert "capset" not in [call for call, _ in calls]
    assert where(calls, "prctl", lambda a: a[0] in (PrctlOption.PR_CAPBSET_DROP,
                                                   PrctlOption.PR_SET_NO_NEW_PRIVS)) == []


def test_without_no_new_privs_the_filter_comes_before_the_capabilities():
    wire = init_spec(namespaces=["uts"], capabilities={"keep": KEPT, "last_cap": 40},
                     seccomp=FILTER, cwd="/srv")
    check_order(wire, timeline(wire))


def test_the_security_rules_can_fail():
    """The checker catches capset before the bounding set is dropped."""
    wire = init_spec(namespaces=["uts"], capabilities={"keep": KEPT, "last_cap": 40},
                     no_new_privs=True)
    calls = timeline(wire)
    capset = calls.pop(where(calls, "capset")[0])
    calls.insert(where(calls, "prctl", lambda a: a[0] == PrctlOption.PR_CAPBSET_DROP)[0], capset)
    with pytest.raises(AssertionError):
        check_order(wire, calls)


def test_the_masking_rules_can_fail(tmp_path):
    """The checker catches a mask made before the root is entered."""
    wire = init_spec(namespaces=["mnt", "pid"], rootfs=str(tmp_path),
                     masked_paths=["/proc/keys"])
    calls = timeline(wire)
    mask = calls.pop(where(calls, "mount", lambda a: a[1] == "/proc/keys")[0])
    calls.insert(where(calls, "pivot_root")[0], mask)
    with pytest.raises(AssertionError):
        check_order(wire, calls)


def test_the_rules_can_fail():
    """The checker catches an order that breaks a rule: mounts before they are private."""
    wire = init_spec(namespaces=["mnt"])
    calls = timeline(wire)
    private = where(calls, "mount")[0]
    calls.insert(private, ("mount", ("tmpfs", "/tmp", "tmpfs", MountFlag(0), None)))
    with pytest.raises(AssertionError):
        check_order(wire, calls)


def test_tracing_does_not_change_the_calls():
    wire = init_spec(namespaces=sorted(SUPPORTED_NAMESPACES), hostname="box",
                     time_offsets={"monotonic": 5.0}, init=True,
                     sync_before_exec=True)
    plain = timeline(wire)
    lines: list[str] = []
    from pycontain import tracing

    with recorded() as kernel:
        channel = Quiet(kernel)
        steps = tracing.start(init.STEPS, channel, write=lines.append)
        try:
            for step, _ in steps:
                step(wire, channel)
        finally:
            syscalls.use(kernel)  # tracing.start routed the calls through its tracer
    assert kernel.calls == plain
    shown = [line for line in lines if line.startswith("  ") and line[2:4] not in ("->", "<-")]
    made = [call for call, _ in plain if call != "message"]
    assert [line.split("(")[0].strip() for line in shown] == made + ["execve"]  # before, after
