"""init builds a container in the order the kernel requires (recorded, no root, no kernel)."""

from __future__ import annotations

import errno

import pytest

from pycontain import init, syscalls
from pycontain.errors import SyscallError
from pycontain.syscalls import CloneFlag, MountFlag, UmountFlag
from pycontain.testing import recorded


class Quiet(init.Channel):
    """A channel that keeps what init reports instead of writing to a pipe."""

    def __init__(self) -> None:
        super().__init__(-1, -1)
        self.sent: list[dict[str, object]] = []

    def send(self, **message: object) -> None:
        self.sent.append(message)


def spec(**changes: object) -> dict[str, object]:
    base = {"argv": ["sh"], "executable": "/bin/sh", "namespaces": ["ipc", "mnt", "uts"],
            "hostname": "box", "rootfs": None, "cwd": "/", "env": {}}
    return {**base, **changes}


def test_unshare_first_then_private_mounts_then_hostname_then_cwd():
    with recorded() as kernel:
        init.setup(spec(), Quiet())
    assert kernel.calls == [
        ("unshare", (CloneFlag.CLONE_NEWNS | CloneFlag.CLONE_NEWUTS | CloneFlag.CLONE_NEWIPC,)),
        ("mount", (None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE, None)),
        ("sethostname", ("box",)),
        ("chdir", ("/",)),
    ]


def test_rootfs_is_bound_mounted_then_pivoted_and_the_old_root_detached(tmp_path):
    with recorded() as kernel:
        init.setup(spec(namespaces=["mnt"], hostname=None, rootfs=str(tmp_path)), Quiet())
    names = kernel.names()
    assert names[:3] == ["unshare", "mount", "mount"]  # private first, then the bind
    assert kernel.calls[2] == ("mount", (str(tmp_path), str(tmp_path), None,
                                         MountFlag.MS_BIND | MountFlag.MS_REC, None))
    pivot = names.index("pivot_root")
    assert kernel.calls[pivot - 1:pivot + 3] == [
        ("chdir", (str(tmp_path),)), ("pivot_root", (".", ".")),
        ("umount2", (".", UmountFlag.MNT_DETACH)), ("chdir", ("/",))]
    assert names[pivot + 3:] == ["chdir"]  # then the spec's cwd, inside the new root
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
    assert kernel.names() == ["unshare"]  # nothing after the failure
    assert info.value.__notes__ == ["while creating the namespaces ipc, mnt, uts"]


def test_the_real_kernel_is_back_after_recording():
    with recorded():
        pass
    assert syscalls.unshare.__self__ is syscalls.LINUX  # type: ignore[attr-defined]
