"""Kernel names without `enum` (pycontain.kernel_names): flags and options that are the kernel's
ints and print as the headers spell them, and the start path that no longer imports `enum`."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import pytest

from pycontain import errors, launcher, syscalls
from pycontain.kernel_names import Constant, Flag, Option
from pycontain.security.capabilities import NAMES, Capability
from pycontain.syscalls import CloneFlag, MountFlag, OpenFlag, PrctlOption

NEWNS, NEWPID = CloneFlag.CLONE_NEWNS, CloneFlag.CLONE_NEWPID


def test_members_are_instances_that_are_the_kernel_numbers():
    assert type(NEWNS) is CloneFlag and NEWNS == 0x00020000 and int(NEWNS) == 0x00020000
    assert type(int(NEWNS)) is int and NEWNS.value == 0x00020000 and type(NEWNS.value) is int
    assert type(PrctlOption.PR_SET_PDEATHSIG) is PrctlOption and PrctlOption.PR_SET_PDEATHSIG == 1


def test_flags_compose_into_the_same_type():
    both = NEWNS | NEWPID
    assert type(both) is CloneFlag and both == 0x20020000
    for value in (both & NEWPID, both ^ NEWNS, 0x20000000 | NEWNS, 0x20020000 & NEWNS,
                  NEWNS ^ 0, ~NEWNS):
        assert type(value) is CloneFlag, value
    assert both & NEWPID is NEWPID and both ^ NEWNS is NEWPID  # a single bit is the member
    flags = CloneFlag(0)
    flags |= NEWNS
    assert flags is NEWNS
    assert type(NEWNS + 1) is int  # arithmetic is not a flag operation


def test_invert_stays_within_the_bits_the_class_names():
    every = 0
    for member in MountFlag:
        every |= member
    assert ~MountFlag.MS_BIND == every & ~4096 and not ~MountFlag.MS_BIND & MountFlag.MS_BIND
    assert ~MountFlag(every) == 0 and ~MountFlag(0) == every


def test_names_are_spelled_as_the_headers_do():
    assert (NEWNS | NEWPID).name == "CLONE_NEWNS|CLONE_NEWPID"
    assert NEWNS.name == "CLONE_NEWNS" and CloneFlag(0).name == "0"
    assert PrctlOption.PR_CAP_AMBIENT.name == "PR_CAP_AMBIENT"
    assert repr(NEWNS | NEWPID) == "<CloneFlag.CLONE_NEWNS|CLONE_NEWPID: 537001984>"
    assert repr(CloneFlag(0)) == "<CloneFlag: 0>"
    assert repr(PrctlOption.PR_SET_DUMPABLE) == "<PrctlOption.PR_SET_DUMPABLE: 4>"
    assert errors.render_arg(NEWNS | NEWPID) == "CLONE_NEWNS|CLONE_NEWPID"
    assert errors.render_arg(PrctlOption.PR_SET_DUMPABLE) == "PR_SET_DUMPABLE"


def test_bits_without_a_name_are_shown_in_hex():
    odd = MountFlag(MountFlag.MS_BIND | 1 << 25)
    assert odd == 4096 | 1 << 25 and odd.name == "MS_BIND|0x2000000"
    assert repr(MountFlag(1 << 25)) == "<MountFlag.0x2000000: 33554432>"
    assert str(errors.SyscallError("mount", (None, "/m", None, odd, None), 22)).startswith(
        "mount(None, '/m', None, MS_BIND|0x2000000, None) failed: EINVAL")


def test_str_and_format_stay_the_number():
    """As in Python 3.11's IntFlag: a flag written into a file or a message is its number."""
    assert str(NEWNS) == f"{NEWNS}" == "131072" and f"{NEWNS:#x}" == "0x20000"
    assert str(PrctlOption.PR_SET_DUMPABLE) == "4"
    import json

    assert json.dumps([NEWNS | NEWPID, PrctlOption.PR_SET_DUMPABLE]) == "[537001984, 4]"


def test_conversion_gives_the_member_and_refuses_what_is_not_a_value():
    assert CloneFlag(0x00020000) is NEWNS and CloneFlag(NEWNS) is NEWNS
    assert PrctlOption(1) is PrctlOption.PR_SET_PDEATHSIG and Capability(21).name == "CAP_SYS_ADMIN"
    with pytest.raises(ValueError, match="99 is not a valid PrctlOption"):
        PrctlOption(99)
    with pytest.raises(ValueError, match="not a valid CloneFlag"):
        CloneFlag("0x20000")  # type: ignore[arg-type]


def test_iteration_gives_the_members_in_declaration_order():
    assert list(OpenFlag) == [OpenFlag.O_WRONLY, OpenFlag.O_RDWR, OpenFlag.O_CREAT,
                              OpenFlag.O_EXCL, OpenFlag.O_CLOEXEC]
    assert [m.name for m in Capability] == list(NAMES) and len(Capability) == len(NAMES)
    assert [type(m) for m in CloneFlag] == [CloneFlag] * len(CloneFlag)


def test_only_public_int_attributes_become_members():
    class Demo(Flag):
        """Not a member."""

        A = 1
        B = 2
        ALSO_A = 1  # a second name for a value: the first one is shown
        _PRIVATE = 4
        LABEL = "x"

    assert [m.name for m in Demo] == ["A", "B"] and Demo._PRIVATE == 4
    assert Demo.ALSO_A is Demo.A and Demo(4).name == "0x4" and Demo.LABEL == "x"


def test_each_class_of_the_kernel_boundary_names_each_value_once():
    """A value named twice would show only its first name: every member keeps its own."""
    kinds = [k for k in vars(syscalls).values()
             if isinstance(k, type) and issubclass(k, Constant) and k not in (Flag, Option)]
    assert len(kinds) >= 11
    for kind in [*kinds, Capability]:
        members = list(kind)
        assert len({int(m) for m in members}) == len(members), kind
        assert all(getattr(kind, m.name) is m for m in members), kind
        if issubclass(kind, Flag):  # each member one bit: the names decompose any word
            assert all(bin(m).count("1") == 1 for m in members), kind


@pytest.mark.parametrize("value", [NEWNS | NEWPID, NEWNS, CloneFlag(0), MountFlag(1 << 25),
                                   PrctlOption.PR_SET_DUMPABLE, Capability(21)],
                         ids=repr)
def test_constants_pickle_and_copy_as_themselves(value):
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(value, protocol))
        assert type(back) is type(value) and back == value and repr(back) == repr(value)
    assert copy.deepcopy(value) == value and type(copy.copy(value)) is type(value)
    if value.name in type(value)._members:
        assert pickle.loads(pickle.dumps(value)) is value  # a member comes back as itself


def test_errors_carry_their_constants_across_the_process_boundary():
    import json

    original = errors.SyscallError("prctl", (PrctlOption.PR_SET_DUMPABLE, 1, 0), 1)
    back = errors.from_wire(json.loads(json.dumps(errors.to_wire(original))))
    assert back.arguments[0] is PrctlOption.PR_SET_DUMPABLE and str(back) == str(original)


def _importers_of(module: str, importtime: str) -> set[str]:
    """The modules that imported `module`, from `python -X importtime`'s tree (each module's
    line comes after its imports' lines, one indentation deeper)."""
    rows = [(len(name) - len(name.lstrip()), name.strip())
            for line in importtime.splitlines() if line.startswith("import time:")
            for name in [line.split("|")[-1]] if name.strip() != "imported package"]
    return {next((n for d, n in rows[i + 1:] if d < depth), "<top>")
            for i, (depth, name) in enumerate(rows) if name == module}


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    """`code` in a lean interpreter of this venv, on the path its console scripts use."""
    setup = f"import sys; sys.path += {launcher.search_path()!r}; "
    return subprocess.run([sys.executable, "-I", "-S", "-X", "importtime", "-c", setup + code],
                          capture_output=True, text=True, timeout=60)


def test_the_start_path_does_not_import_enum():
    """The command, `pycontain exec`'s request and the supervisor's joining, the OCI runtime's
    verbs and a container's first process: the kernel's names are loaded, and `enum` (4-5 ms
    of every start) is not, nor `json`'s `re`, which would bring it (pycontain.jsonc)."""
    done = _fresh("import pycontain.cli, pycontain.exec_socket, pycontain.nsenter, "
                  "pycontain.oci.cli, pycontain.oci.lifecycle, pycontain.init; "
                  "print('enum' in sys.modules, 're' in sys.modules, "
                  "'pycontain.kernel_names' in sys.modules)")
    assert done.stdout.split() == ["False", "False", "True"], (
        _importers_of("enum", done.stderr), _importers_of("re", done.stderr))
