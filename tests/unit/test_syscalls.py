"""Flags carry the kernel's values and names (checked against <linux/sched.h>, <linux/mount.h>)."""

from pycontain import procfs, syscalls
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


# --- the seam is whole: every kernel call is in KERNEL_CALLS, recorded by the double -----------

def kernel_methods() -> set[str]:
    """The system calls `Syscalls` makes: its public methods."""
    import inspect

    return {name for name, member in inspect.getmembers(syscalls.Syscalls, inspect.isfunction)
            if not name.startswith("_")}


def test_kernel_calls_lists_every_system_call_of_the_module():
    assert kernel_methods() == set(syscalls.KERNEL_CALLS)
    assert len(set(syscalls.KERNEL_CALLS)) == len(syscalls.KERNEL_CALLS)
    for name in syscalls.KERNEL_CALLS:  # each a module function, bound to the real kernel
        assert getattr(syscalls, name).__self__ is syscalls.LINUX, name


def test_the_recording_double_overrides_every_kernel_call():
    from pycontain.testing import RecordingSyscalls

    missing = [name for name in kernel_methods() if name not in RecordingSyscalls.__dict__]
    assert missing == [], "a recorded run would reach the real kernel through these"


def test_a_recorded_run_never_reaches_the_kernel():
    from pycontain.testing import recorded

    with recorded() as kernel:
        assert syscalls.fork() == 0  # the recorded caller goes on as the child
        syscalls.setresuid(0, 0, 0)
        fd = syscalls.openat(syscalls.AT_FDCWD, "/proc/sys/net/ipv4/ip_forward",
                             syscalls.OpenFlag.O_WRONLY)
        assert syscalls.write(fd, b"1\n") == 2
        syscalls.close(fd)
    assert kernel.names() == ["fork", "setresuid", "openat", "write", "close"]
    assert kernel.calls[2][1] == (syscalls.AT_FDCWD, "/proc/sys/net/ipv4/ip_forward",
                                  syscalls.OpenFlag.O_WRONLY, 0)


#: os functions that are system calls pycontain makes to build or enter a container; only
#: syscalls.py may call them (the fork bomb's and the lessons' own programs are strings)
BYPASSES = {"fork", "setuid", "setgid", "setgroups", "setresuid", "setresgid", "setsid",
            "unshare", "setns", "chroot", "execve", "execv", "execvpe", "closerange"}


def test_no_module_but_syscalls_calls_the_kernel_through_os():
    import ast
    from pathlib import Path

    import pycontain

    root = Path(pycontain.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "syscalls.py" and path.parent == root:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "os" and node.attr in BYPASSES:
                found.append(f"{path.relative_to(root)}:{node.lineno}: os.{node.attr}")
    assert found == [], "go through pycontain.syscalls (DESIGN, 'The library')"


def test_ip_forward_is_written_as_a_kernel_file():
    from pycontain.network import nft
    from pycontain.testing import recorded

    with recorded() as kernel:
        nft.write_once(str(nft.IP_FORWARD), "1\n")
    assert kernel.calls[:2] == [
        ("openat", (syscalls.AT_FDCWD, "/proc/sys/net/ipv4/ip_forward",
                    syscalls.OpenFlag.O_WRONLY | syscalls.OpenFlag.O_CLOEXEC, 0)),
        ("write", (1 << 20, b"1\n"))]
