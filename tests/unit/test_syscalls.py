"""Flags carry the kernel's values and names (checked against <linux/sched.h>, <linux/mount.h>)."""

from pycontain import procfs
from pycontain.syscalls import NAMESPACE_FLAGS, CloneFlag, MountFlag, PrctlOption, flag_names


def test_clone_flags_have_the_kernel_values():
    assert CloneFlag.CLONE_NEWNS == 0x00020000
    assert CloneFlag.CLONE_NEWUTS == 0x04000000
    assert CloneFlag.CLONE_NEWIPC == 0x08000000
    assert CloneFlag.CLONE_NEWUSER == 0x10000000
    assert CloneFlag.CLONE_NEWPID == 0x20000000
    assert CloneFlag.CLONE_NEWNET == 0x40000000
    assert CloneFlag.CLONE_NEWCGROUP == 0x02000000
    assert CloneFlag.CLONE_NEWTIME == 0x00000080


def test_mount_flags_and_prctl_options_have_the_kernel_values():
    assert (MountFlag.MS_BIND, MountFlag.MS_REC, MountFlag.MS_PRIVATE) == (4096, 16384, 1 << 18)
    assert PrctlOption.PR_SET_PDEATHSIG == 1 and PrctlOption.PR_SET_NO_NEW_PRIVS == 38
    assert PrctlOption.PR_SET_DUMPABLE == 4


def test_every_namespace_type_has_a_flag():
    assert set(NAMESPACE_FLAGS) == set(procfs.NAMESPACE_TYPES)


def test_flags_render_as_the_headers_spell_them():
    assert flag_names(MountFlag.MS_BIND | MountFlag.MS_REC, MountFlag) == "MS_BIND|MS_REC"
    assert flag_names(CloneFlag.CLONE_NEWPID | CloneFlag.CLONE_NEWUTS, CloneFlag) == (
        "CLONE_NEWUTS|CLONE_NEWPID")
