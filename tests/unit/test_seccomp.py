"""security.seccomp as translation: profiles in Docker's format become classic-BPF programs
that decide as the profile says. The programs run here in a small interpreter of the five
instructions they use (the kernel runs them in tests/integration/test_seccomp.py); the numbers
are checked against the kernel's headers.
"""

from __future__ import annotations

import itertools
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from pycontain.errors import SpecError
from pycontain.security import seccomp
from pycontain.security.syscall_numbers import NUMBERS

ROOT = Path(__file__).resolve().parents[2]
PODMAN_PROFILE = Path("/usr/share/containers/seccomp.json")
X86_64, AARCH64 = seccomp.AUDIT_ARCH["x86_64"], seccomp.AUDIT_ARCH["aarch64"]
ALLOW, KILL = seccomp.ACTIONS["SCMP_ACT_ALLOW"], seccomp.ACTIONS["SCMP_ACT_KILL_PROCESS"]


def errno(n: int) -> int:
    return seccomp.ACTIONS["SCMP_ACT_ERRNO"] | n


def run(program: list[seccomp.Instruction], nr: int, args: tuple[int, ...] = (),
        arch: int = X86_64) -> int:
    """What the program returns for one call: `struct seccomp_data` packed as the kernel does,
    and the instructions interpreted one by one. The program is assembled and read back, so
    what runs is what the kernel would get."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, *(list(args) + [0] * 6)[:6])
    code = seccomp.assemble(program)
    pc, a = 0, 0
    for _ in range(len(program) + 1):
        op, jt, jf, k = struct.unpack_from("=HBBI", code, 8 * pc)
        pc += 1
        if op == seccomp.LD_ABS:
            a = struct.unpack_from("=I", data, k)[0]
        elif op == seccomp.AND:
            a &= k
        elif op == seccomp.RET:
            return k
        else:
            taken = {seccomp.JEQ: a == k, seccomp.JGT: a > k, seccomp.JGE: a >= k}[op]
            pc += jt if taken else jf
    raise AssertionError("the program ran off its end")


def nr(name: str, machine: str = "x86_64") -> int:
    return NUMBERS[machine][name]


DEFAULT_NONE = seccomp.compile(seccomp.DEFAULT, frozenset(), machine="x86_64")


@pytest.mark.parametrize(("call", "args", "expected"), [
    ("unshare", (0x10000000,), errno(1)), ("setns", (3, 0), errno(1)),
    ("mount", (), errno(1)), ("keyctl", (), errno(1)), ("bpf", (), errno(1)),
    ("clone3", (), errno(38)),  # ENOSYS: the C library falls back to clone
    ("clone", (0x01200011,), ALLOW),  # fork(): CLONE_CHILD_SETTID|CLEARTID|SIGCHLD
    ("clone", (0x10000000 | 17,), errno(1)),  # CLONE_NEWUSER
    ("clone", (1 << 63 | 17,), ALLOW),  # a high bit is no namespace flag
    ("personality", (0,), ALLOW), ("personality", (0xFFFFFFFF,), ALLOW),
    ("personality", (0x0040000,), errno(1)),  # ADDR_NO_RANDOMIZE: turns off ASLR
    ("personality", (1 << 32,), errno(1)),  # equal low half, other high half
    ("getpid", (), ALLOW), ("read", (), ALLOW), ("execve", (), ALLOW),
])
def test_the_default_profile_denies_what_docker_denies(call, args, expected):
    assert run(DEFAULT_NONE, nr(call), args) == expected


def test_a_capability_gives_back_the_calls_it_guards_as_docker_does():
    with_admin = seccomp.compile(seccomp.DEFAULT, frozenset({"CAP_SYS_ADMIN"}), machine="x86_64")
    assert run(with_admin, nr("unshare")) == run(with_admin, nr("mount")) == ALLOW
    assert run(with_admin, nr("clone"), (0x10000000,)) == ALLOW
    assert run(with_admin, nr("init_module")) == errno(1)  # CAP_SYS_MODULE's, not admin's


def test_another_abi_is_killed_and_x32_too():
    assert run(DEFAULT_NONE, nr("getpid"), arch=0x40000003) == KILL  # i386 (int 0x80)
    assert run(DEFAULT_NONE, nr("getpid") | seccomp.X32_SYSCALL_BIT) == KILL
    arm = seccomp.compile(seccomp.DEFAULT, frozenset(), machine="aarch64")
    assert run(arm, nr("unshare", "aarch64"), arch=AARCH64) == errno(1)
    assert run(arm, nr("unshare", "aarch64"), arch=X86_64) == KILL
    assert run(arm, nr("getpid", "aarch64"), arch=AARCH64) == ALLOW


VALUES = [0, 1, 7, 0xFFFFFFFF, 1 << 32, (1 << 32) + 7, 0xFFFFFFFF_FFFFFFFF, 5 << 32]
COMPARISONS = {"SCMP_CMP_EQ": lambda a, v: a == v, "SCMP_CMP_NE": lambda a, v: a != v,
               "SCMP_CMP_LT": lambda a, v: a < v, "SCMP_CMP_LE": lambda a, v: a <= v,
               "SCMP_CMP_GT": lambda a, v: a > v, "SCMP_CMP_GE": lambda a, v: a >= v}


@pytest.mark.parametrize("op", sorted(COMPARISONS))
def test_each_comparison_is_a_64_bit_comparison(op):
    for value, argument in itertools.product(VALUES, VALUES):
        program = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3,
             "args": [{"index": 1, "value": value, "op": op}]}]}, machine="x86_64")
        expected = errno(3) if COMPARISONS[op](argument, value) else ALLOW
        assert run(program, nr("kill"), (0, argument)) == expected, (hex(argument), op,
                                                                     hex(value))


def test_masked_eq_and_several_arguments_all_must_hold_and_rules_go_in_order():
    program = seccomp.compile({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
         "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
                  {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mmap"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 2, "value": 0x4, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
    ]}, machine="x86_64")
    assert run(program, nr("socket"), (16, 3, 9)) == errno(22)  # netlink audit
    assert run(program, nr("socket"), (16, 3, 0)) == ALLOW
    assert run(program, nr("socket"), (2, 1, 9)) == ALLOW
    assert run(program, nr("mmap"), (0, 4096, 0x3)) == ALLOW  # no PROT_EXEC
    assert run(program, nr("mmap"), (0, 4096, 0x7)) == errno(1)  # default: EPERM
    assert run(program, nr("getpid")) == errno(1)


@pytest.mark.skipif(not PODMAN_PROFILE.exists(), reason="no podman profile (make debs)")
@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_podmans_published_profile_loads_and_decides_as_it_says(machine):
    arch = seccomp.AUDIT_ARCH[machine]
    program = seccomp.compile(PODMAN_PROFILE, frozenset({"CAP_CHOWN"}), machine=machine)
    assert len(program) < seccomp.MAX_INSTRUCTIONS
    assert run(program, nr("read", machine), arch=arch) == ALLOW
    assert run(program, nr("kexec_load", machine), arch=arch) == errno(1)
    assert run(program, nr("open_by_handle_at", machine), arch=arch) == errno(1)
    assert run(program, nr("socket", machine), (16, 3, 9), arch=arch) == errno(22)
    assert run(program, 449, arch=arch) == errno(38)  # futex_waitv: unknown to it, ENOSYS
    with_search = seccomp.compile(PODMAN_PROFILE, frozenset({"CAP_DAC_READ_SEARCH"}),
                                  machine=machine)
    assert run(with_search, nr("open_by_handle_at", machine), arch=arch) == ALLOW


def test_the_listing_shows_each_instruction():
    text = seccomp.listing(DEFAULT_NONE)
    assert text.splitlines()[0].split() == ["0", "ld", "[4]", ";", "arch"]
    assert "; unshare" in text and "ret ERRNO(38)" in text and text.endswith("ret ALLOW")


@pytest.mark.parametrize(("profile", "says"), [
    ('{"defaultAction": "SCMP_ACT_ALLOW",\n "syscalls": [}', "line 2 column"),
    ({"defaultAction": "SCMP_ACT_ALOW"}, "an action: SCMP_ACT_KILL_PROCESS"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "needs a supervisor"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscals": []}, "got 'syscals'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdri"],
      "action": "SCMP_ACT_ERRNO"}]}, "did you mean mkdir"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"],
      "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "index 0-5"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"],
      "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}, "errnoRet of 0-65535"),
    ({"syscalls": []}, "a defaultAction"),
    ("/nonexistent/profile.json", "No such file"),
])
def test_a_bad_profile_is_refused_naming_the_parameter_and_where(profile, says):
    with pytest.raises(SpecError) as refused:
        seccomp.compile(profile)
    assert refused.value.parameter == "seccomp"
    assert says in str(refused.value)


def test_names_of_other_abis_are_accepted_and_never_filtered():
    program = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["chown32", "arm_fadvise64_64", "_llseek"], "action": "SCMP_ACT_ERRNO"}]},
        machine="x86_64")
    assert len(program) == len(seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW"},
                                               machine="x86_64"))


@pytest.mark.skipif(shutil.which("cpp") is None
                    or not Path("/usr/include/asm-generic/unistd.h").exists(),
                    reason="needs cpp and the kernel's headers (linux-libc-dev)")
def test_the_numbers_are_the_kernel_headers_numbers():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "syscall_numbers.py"),
                           "--check"], capture_output=True, text=True)
    assert done.returncode == 0, ("pycontain/security/syscall_numbers.py differs from the "
                                  "headers: run tools/syscall_numbers.py")


def test_the_numbers_agree_where_every_architecture_shares_them():
    for name, number in NUMBERS["aarch64"].items():
        if number >= 424:  # since 5.1 a new call has one number everywhere
            assert NUMBERS["x86_64"].get(name) == number, name
    assert json.dumps(seccomp.DEFAULT)  # the default is data in Docker's format


def test_the_cached_default_filter_is_the_compiled_one_and_a_new_key_compiles_again(tmp_path):
    """security.compiled: what a start reads from the cache is what compiling gives, for each
    set of capabilities; a stale entry (another key) is never used."""
    from pycontain.security import capabilities, compiled

    kept = capabilities.resolve((), ())
    first = compiled.default_filter(kept, str(tmp_path))
    assert first == seccomp.choose("default", kept)
    assert (tmp_path / compiled.FILE).read_bytes() == compiled.key(kept) + first
    assert compiled.default_filter(kept, str(tmp_path)) == first  # from the file
    everything = compiled.default_filter(None, str(tmp_path))  # another key: compiled again
    assert everything == seccomp.choose("default", None) != first
    (tmp_path / compiled.FILE).write_bytes(compiled.key(kept).replace(b" ", b"  ") + b"junk")
    assert compiled.default_filter(kept, str(tmp_path)) == first
