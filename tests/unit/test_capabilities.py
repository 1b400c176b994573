"""Capability names, sets and the CLI's choice of them (lesson 20): parsing, no root needed.

What the kernel does with them is proven in tests/integration/test_capabilities.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from pycontain import syscalls
from pycontain.cli import FLAG_OF, _security_options
from pycontain.errors import SpecError
from pycontain.security import capabilities, paths
from pycontain.security.capabilities import DEFAULT, NAMES, NUMBERS
from pycontain.spec import Spec


def test_the_names_have_the_numbers_of_linux_capability_h():
    assert (NUMBERS["CAP_CHOWN"], NUMBERS["CAP_SETPCAP"], NUMBERS["CAP_NET_RAW"]) == (0, 8, 13)
    assert (NUMBERS["CAP_SYS_ADMIN"], NUMBERS["CAP_MKNOD"], NUMBERS["CAP_SETFCAP"]) == (21, 27, 31)
    assert (NUMBERS["CAP_BPF"], NUMBERS["CAP_CHECKPOINT_RESTORE"]) == (39, 40)
    assert len(set(NAMES)) == len(NAMES) == 41
    assert capabilities.known() == NAMES[:capabilities.last_cap() + 1]


def test_the_default_is_dockers_without_mknod():
    docker = {"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
              "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
              "AUDIT_WRITE"}
    assert DEFAULT == {f"CAP_{name}" for name in docker - {"MKNOD"}}
    assert capabilities.mask(DEFAULT) == 0xa00425fb  # docker's 0xa80425fb less bit 27


@pytest.mark.parametrize(("given", "names"), [
    (["chown"], {"CAP_CHOWN"}), (["CAP_CHOWN"], {"CAP_CHOWN"}), (["Cap_Chown"], {"CAP_CHOWN"}),
    (["net_raw,kill", "SETUID"], {"CAP_NET_RAW", "CAP_KILL", "CAP_SETUID"}),
    ("sys_admin, mknod", {"CAP_SYS_ADMIN", "CAP_MKNOD"}), ([], set()),
    (["all"], set(NAMES)), (["CAP_ALL"], set(NAMES)),
])
def test_names_are_taken_with_or_without_cap_in_any_case(given, names):
    assert capabilities.parse("capabilities", given, last=40) == names


@pytest.mark.parametrize("word", ["MAKE_COFFEE", "", "CAP_", "27", "CAP_CHOWN_"])
def test_an_unknown_name_is_refused_with_the_accepted_form(word):
    with pytest.raises(SpecError) as caught:
        capabilities.parse("capabilities", [word], last=40)
    assert caught.value.parameter == "capabilities" and caught.value.got == word
    assert "CHOWN or CAP_NET_RAW" in str(caught.value) and "ALL" in str(caught.value)


@pytest.mark.parametrize(("word", "nearest"), [
    ("CAP_SYS_ADMINN", "CAP_SYS_ADMIN"), ("net_bind_servce", "CAP_NET_BIND_SERVICE"),
    ("CAP_CHOWN_", "CAP_CHOWN")])
def test_a_misspelt_name_is_refused_with_the_nearest_one(word, nearest):
    with pytest.raises(SpecError) as caught:
        Spec(["true"], namespaces={"uts", "user"}, capabilities=["KILL", word])
    assert caught.value.parameter == "capabilities" and caught.value.got == word
    assert f"did you mean {nearest}?" in (caught.value.hint or "")


def test_a_name_like_none_suggests_none():
    with pytest.raises(SpecError) as caught:
        capabilities.parse("capabilities", ["MAKE_COFFEE"], last=40)
    assert "did you mean" not in str(caught.value)
    assert "names from CAP_CHOWN to CAP_CHECKPOINT_RESTORE" in str(caught.value)


def test_a_name_newer_than_the_kernel_says_so():
    with pytest.raises(SpecError, match=r"newer than this kernel \(cap_last_cap 37\)"):
        capabilities.parse("capabilities", ["CAP_BPF"], last=37)
    assert "CAP_BPF" not in capabilities.parse("capabilities", ["ALL"], last=37)


@pytest.mark.parametrize(("add", "drop", "kept"), [
    ([], [], DEFAULT),
    (["SYS_ADMIN"], [], DEFAULT | {"CAP_SYS_ADMIN"}),
    ([], ["chown", "kill"], DEFAULT - {"CAP_CHOWN", "CAP_KILL"}),
    (["net_admin"], ["ALL"], {"CAP_NET_ADMIN"}),
    (["ALL"], ["MKNOD"], set(NAMES) - {"CAP_MKNOD"}),
    (["chown"], ["chown"], DEFAULT),  # as Docker: the drops first, then the adds
    ([], ["ALL"], set()),
])
def test_add_and_drop_change_the_default_as_docker_does(add, drop, kept):
    assert capabilities.resolve(add, drop, last=40) == kept


def test_status_masks_are_named():
    status = ("CapInh:\t0000000000000000\nCapPrm:\t00000000a00425fb\nCapEff:\t00000000a00425fb\n"
              "CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n")
    sets = capabilities.parse_status(status)
    assert sets.permitted == sets.effective == DEFAULT
    assert sets.bounding == frozenset(NAMES) and sets.inheritable == sets.ambient == frozenset()


def test_capget_agrees_with_proc_status():
    """capget(2) on this process, the real kernel, against what /proc/self/status says."""
    effective, permitted, inheritable = syscalls.capget()
    sets = capabilities.read()
    assert (capabilities.names(effective), capabilities.names(permitted),
            capabilities.names(inheritable)) == (sets.effective, sets.permitted, sets.inheritable)


# --- the command line: the default, --privileged, --cap-add/--cap-drop, --security-opt --------

def test_the_cli_default_is_the_default_set_no_new_privs_and_the_seccomp_profile():
    assert _security_options(False, None, None, None, True) == {
        "capabilities": DEFAULT, "no_new_privs": True, "seccomp": "default",
        "masked_paths": paths.MASKED, "readonly_paths": paths.READ_ONLY}
    assert _security_options(True, None, None, None, True) == {
        "capabilities": None, "no_new_privs": False, "seccomp": None, "masked_paths": (),
        "readonly_paths": ()}


@pytest.mark.parametrize(("privileged", "mounts", "opts", "masked"), [
    (False, True, None, True), (False, False, None, False), (True, True, None, False),
    (False, True, ["systempaths=unconfined"], False)])
def test_the_paths_are_masked_with_a_mount_namespace_unless_unconfined(privileged, mounts, opts,
                                                                       masked):
    chosen = _security_options(privileged, None, None, opts, mounts)
    assert chosen["masked_paths"] == (paths.MASKED if masked else ())
    assert chosen["readonly_paths"] == (paths.READ_ONLY if masked else ())


@pytest.mark.parametrize(("privileged", "opts", "no_new_privs"), [
    (False, ["no-new-privileges=false"], False), (False, ["no-new-privileges"], True),
    (False, ["no-new-privileges=true"], True), (True, ["no-new-privileges=true"], True),
    (False, ["no-new-privileges=false", "no-new-privileges=true"], True),  # the last one wins
])
def test_security_opt_turns_no_new_privs_on_or_off(privileged, opts, no_new_privs):
    assert _security_options(privileged, None, None, opts, True)["no_new_privs"] is no_new_privs


@pytest.mark.parametrize("opt", ["seccomp", "seccomp=", "apparmor=unconfined",
                                 "no-new-privileges=no",
                                 "no-new-privileges:true", "no-new-privileges=", ""])
def test_an_unknown_security_opt_is_refused_naming_the_flag(opt):
    with pytest.raises(SpecError) as caught:
        _security_options(False, None, None, [opt], True)
    assert caught.value.worded(FLAG_OF).startswith(
        "--security-opt must be no-new-privileges, no-new-privileges=true, "
        "no-new-privileges=false, seccomp=unconfined, seccomp=FILE (a profile in Docker's "
        f"JSON format) or systempaths=unconfined, got {opt!r}")


UNKNOWN = "must be capability names such as CHOWN or CAP_NET_RAW (any case), or ALL"


@pytest.mark.parametrize(("privileged", "add", "drop", "says"), [
    (False, ["KILLER"], None, f"--cap-add {UNKNOWN}"),
    (False, None, ["nope"], f"--cap-drop {UNKNOWN}"),
    (True, ["SYS_ADMIN"], None, "--cap-add must be left out with --privileged"),
    (True, None, ["CHOWN"], "--cap-drop must be left out with --privileged")])
def test_a_capability_flag_that_cannot_be_taken_is_refused_naming_it(privileged, add, drop,
                                                                      says):
    with pytest.raises(SpecError) as caught:
        _security_options(privileged, add, drop, None, True)
    assert caught.value.worded(FLAG_OF).startswith(says)


# --- the Python API: today's behaviour unless asked ------------------------------------------

def test_the_api_keeps_every_capability_unless_asked():
    spec = Spec(["true"], namespaces={"uts"})
    assert spec.capabilities is None and spec.no_new_privs is False
    wire = spec.to_wire()
    assert wire["capabilities"] is None and wire["no_new_privs"] is False


def test_the_api_takes_names_and_sends_numbers():
    spec = Spec(["true"], namespaces={"uts", "user"}, capabilities=["chown", "CAP_KILL"],
                no_new_privs=True)
    assert spec.capabilities == {"CAP_CHOWN", "CAP_KILL"}
    assert spec.to_wire()["capabilities"] == {"keep": [0, 5], "last_cap": capabilities.last_cap()}


def test_a_capability_this_process_lacks_is_refused_without_a_user_namespace(monkeypatch):
    monkeypatch.setattr(capabilities, "read", lambda pid="self": capabilities.Sets(
        *[frozenset({"CAP_CHOWN"})] * 2, frozenset(), frozenset({"CAP_CHOWN"}), frozenset()))
    with pytest.raises(SpecError) as caught:
        Spec(["true"], namespaces={"uts"}, capabilities=["CHOWN", "SYS_ADMIN"])
    assert caught.value.parameter == "capabilities" and caught.value.got == "CAP_SYS_ADMIN"
    assert "user namespace" in (caught.value.hint or "")
    # in a user namespace the container's root has them all
    Spec(["true"], namespaces={"uts", "user"}, capabilities=["CHOWN", "SYS_ADMIN"])


@pytest.mark.parametrize(("options", "parameter"), [
    ({"capabilities": ["MAKE_COFFEE"]}, "capabilities"), ({"capabilities": [1]}, "capabilities"),
    ({"no_new_privs": "yes"}, "no_new_privs")])
def test_bad_api_input_names_the_parameter(options, parameter):
    with pytest.raises(SpecError) as caught:
        Spec(["true"], namespaces={"uts"}, **options)
    assert caught.value.parameter == parameter


# --- file capabilities: the security.capability attribute ------------------------------------

def test_file_capability_bytes_are_setcaps_vfs_cap_data_v2():
    """The bytes `setcap cap_net_raw+ep` and `setcap cap_sys_admin,cap_bpf+p` write (read back
    with getfattr -e hex on this machine's libcap 2.66)."""
    assert capabilities.file_capability(["CAP_NET_RAW"]).hex() == (
        "0100000200200000000000000000000000000000")
    assert capabilities.file_capability(["sys_admin", "bpf"], effective=False).hex() == (
        "0000000200002000000000008000000000000000")


@pytest.mark.parametrize("kept", [{"CAP_NET_RAW"}, {"CAP_CHOWN", "CAP_CHECKPOINT_RESTORE"},
                                  set()])
@pytest.mark.parametrize("effective", [True, False])
def test_file_capability_reads_back(kept, effective):
    data = capabilities.file_capability(kept, effective)
    assert capabilities.parse_file_capability(data) == (kept, effective)


def test_a_file_capability_name_is_checked():
    with pytest.raises(SpecError) as caught:
        capabilities.file_capability(["NET_RAWW"])
    assert caught.value.parameter == "permitted"
    assert "did you mean CAP_NET_RAW?" in str(caught.value)


def test_set_file_capability_writes_the_attribute_on_a_copy(tmp_path):
    """On a file of our own (setxattr of security.* needs CAP_SETFCAP: root only)."""
    if os.geteuid() != 0:
        pytest.skip("setting security.capability needs CAP_SETFCAP")
    program = tmp_path / "ping"
    program.write_bytes(b"#!/bin/sh\n")
    capabilities.set_file_capability(program, ["NET_RAW"])
    assert os.getxattr(program, capabilities.XATTR) == capabilities.file_capability(["NET_RAW"])
    getcap = shutil.which("getcap")
    if getcap:  # libcap's own reading, where it is installed
        shown = subprocess.run([getcap, str(program)], capture_output=True, text=True).stdout
        assert shown.split()[-1] == "cap_net_raw=ep"
